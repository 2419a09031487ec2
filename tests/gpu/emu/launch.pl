#!/usr/bin/perl
# launch.pl - turns a .cu file into C++ for the CUDA emulator: every
#     kernel<<<grid, block[, shared[, stream]]>>>(args)
# becomes
#     dn_emu_launch(kernel, dn_emu_cfg(grid, block, ...), "kernel")(args)
# (tests/gpu/emu/cuda_runtime.h). Reads the file named first, writes stdout;
# a #line directive keeps the compiler's messages pointing into the .cu.
use strict;
use warnings;
my $path = shift or die "usage: launch.pl file.cu\n";
open(my $in, '<', $path) or die "$path: $!\n";
local $/;
my $text = <$in>;
close $in;
# (a configuration over several lines keeps its line breaks)
$text =~ s{([A-Za-z_]\w*(?:\s*<[^<>;]*>)?)\s*<<<(.*?)>>>}
          {my ($k, $c) = ($1, $2); my $nl = ($c =~ tr/\n/ /);
           "dn_emu_launch($k, dn_emu_cfg($c), \"$k\")" . ("\n" x $nl)}gse;
print "#line 1 \"$path\"\n", $text;
