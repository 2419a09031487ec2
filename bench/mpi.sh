#!/bin/sh
# make bench-mpi: data-parallel training across processes. Images/s of
# ResNet-18-CIFAR (cfg/resnet18-cifar.cfg) at batch 128 on 1 process x 2
# threads against mpirun -np 2 x 1 thread, the all-reduce's share of a step
# (timed inside darknet/src/distributed.c, printed by rank 0 at the end),
# and the bytes one step all-reduces for every network in cfg/. Writes
# results/bench/mpi.md. Run it on a quiet machine: the figures of a busy
# one say nothing.
#   MPI_BENCH_BATCHES (default 8) batches per run; the first one is left
#   out of the rate (warm-up).
set -e
DARKNET_MPI=${DARKNET_MPI:-build/mpi/bin/darknet}
BATCHES=${MPI_BENCH_BATCHES:-8}
CFG=cfg/resnet18-cifar.cfg
OUT=results/bench
ROOT=$(pwd)
case $DARKNET_MPI in /*) ;; *) DARKNET_MPI=$ROOT/$DARKNET_MPI ;; esac
[ -x "$DARKNET_MPI" ] || { echo "bench-mpi: $DARKNET_MPI is not built (make MPI=1)"; exit 1; }
command -v mpirun > /dev/null || { echo "bench-mpi: no mpirun (make deps MPI=1)"; exit 1; }
mkdir -p "$OUT"
work=$(mktemp -d /tmp/dnmpibench.XXXXXX)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_WAIT_POLICY=passive OPENBLAS_NUM_THREADS=1

# CIFAR-10 binary records of random pixels: BATCHES batches of 128
python3 - "$work/train.bin" $((BATCHES * 128)) <<'EOF'
import os, sys
with open(sys.argv[1], "wb") as f:
    for i in range(int(sys.argv[2])):
        f.write(bytes([i % 10]) + os.urandom(3072))
EOF
printf 'classes=10\ntrain=%s/train.bin\nbackup=%s/backup\n' "$work" "$work" > "$work/b.data"

# seconds per batch after the first, from the batch lines rank 0 prints
rate() {
    sed -n 's/^\([0-9]*\), [0-9.]*: .*, \([0-9.]*\) seconds, .*/\1 \2/p' "$1" |
        awk '$1 > 1 { s += $2; n++ } END { if (n) printf "%.1f", 128 * n / s; else print "?" }'
}
train() { # ranks threads log
    if [ "$1" -gt 1 ]; then launch="mpirun --oversubscribe --bind-to none -np $1"; else launch=""; fi
    OMP_NUM_THREADS=$2 $launch "$DARKNET_MPI" classifier train "$work/b.data" "$ROOT/$CFG" \
        -set batch=128 -set subdivisions=1 -set max_batches=$BATCHES -set epochs=0 \
        -backup "$work/backup" > "$3" 2>&1
}

echo "bench-mpi: $CFG, batch 128, $BATCHES batches per run"
train 1 2 "$work/one.txt"
ONE=$(rate "$work/one.txt")
echo "1 process x 2 threads: $ONE images/s"
train 2 1 "$work/two.txt"
TWO=$(rate "$work/two.txt")
SHARE=$(sed -n 's/^all-reduce: \(.*\)$/\1/p' "$work/two.txt")
echo "2 ranks x 1 thread: $TWO images/s; all-reduce: $SHARE"

# "name parameters" of every cfg of cfg/ that builds; bytes per step: every
# gradient, plus the loss and top-1 count
for c in cfg/*.cfg; do
    n=$("$DARKNET_MPI" summary "$c" 2>/dev/null | sed -n 's/^total: \([0-9]*\) parameters.*/\1/p')
    if [ -n "$n" ]; then echo "$(basename "$c" .cfg) $n"; fi
done > "$work/params"

{
    echo "# make bench-mpi, $(date -u +%Y-%m-%d), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo
    echo "ResNet-18-CIFAR ($CFG), batch 128, random CIFAR-format records, $BATCHES batches per run (the first left out)."
    echo
    echo "| run | images/s | ratio |"
    echo "|---|---:|---:|"
    echo "| 1 process x 2 threads | $ONE | 1.00 |"
    echo "| mpirun -np 2 x 1 thread | $TWO | $(awk -v a="$TWO" -v b="$ONE" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }') |"
    echo
    echo "All-reduce (2 ranks): $SHARE."
    echo
    echo "## Bytes one step all-reduces (every gradient, plus the loss and top-1 count)"
    echo
    echo "| network | parameters | bytes per step |"
    echo "|---|---:|---:|"
    awk '{ b = 4 * ($2 + 3); printf "| %s | %d | %d (%.1f MiB) |\n", $1, $2, b, b / 1048576 }' "$work/params"
    echo
    echo "## Expected all-reduce time per step on 2 nodes x 8 GPUs (N = 16)"
    echo
    echo "A ring all-reduce moves 2(N-1)/N x bytes through the slowest link: the"
    echo "time below is that over 25 GB/s and 200 GB/s between the nodes, a lower"
    echo "bound (no latency, no overlap with the backward pass). Set it against a"
    echo "measured single-GPU step time, which this machine cannot give (no GPU):"
    echo "the scaling efficiency is step / (step + all-reduce)."
    echo
    echo "| network | bytes per step | at 25 GB/s | at 200 GB/s |"
    echo "|---|---:|---:|---:|"
    awk '{ b = 4 * ($2 + 3); m = 2 * 15 / 16 * b
           printf "| %s | %.1f MB | %.2f ms | %.2f ms |\n", $1, b / 1e6, m / 25e9 * 1e3, m / 200e9 * 1e3 }' "$work/params"
} > "$OUT/mpi.md"
cat "$OUT/mpi.md"
