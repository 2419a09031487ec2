#!/bin/sh
# tests/fuzz/run.sh - make fuzz: runs each libFuzzer target given for
# FUZZ_SECONDS (default 60), from its seeds in tests/fuzz/corpus/TARGET/;
# new inputs go to build/fuzz/work/TARGET/, anything that crashes, hangs,
# leaks or runs out of memory to build/fuzz/artifacts/TARGET/. Prints a
# table (target, executions, corpus, findings) and exits non-zero when
# there is a finding. Fix it, then commit the input under
# tests/fuzz/regress/TARGET/: make test replays it from then on.
set -u
SECONDS_EACH=${FUZZ_SECONDS:-60}
out=build/fuzz
status=0
printf '%-10s %12s %8s %9s\n' target executions corpus findings
for bin in "$@"; do
    t=${bin##*/fuzz_}
    work=$out/work/$t
    art=$out/artifacts/$t
    mkdir -p "$work" "$art"
    before=$(ls "$art" | wc -l)
    # -close_fd_mask=1: what the commands print goes nowhere
    "$bin" -max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=2048 \
        -close_fd_mask=1 -print_final_stats=1 -artifact_prefix="$art/" \
        "$work" "tests/fuzz/corpus/$t" > "$out/$t.log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t.log")
    corpus=$(ls "$work" | wc -l)
    found=$(( $(ls "$art" | wc -l) - before ))
    printf '%-10s %12s %8s %9s\n' "$t" "${execs:-?}" "$corpus" "$found"
    if [ "$rc" -ne 0 ] || [ "$found" -gt 0 ]; then
        status=1
        echo "  $t: see $out/$t.log and $art/" >&2
        grep -m3 -E 'ERROR|SUMMARY|timeout|out-of-memory' "$out/$t.log" | sed 's/^/  /' >&2
    fi
done
exit $status
