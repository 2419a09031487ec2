#!/bin/sh
# Runs every test program given, adds up cmocka's counts, and ends with one
# line "tests: N passed, M failed, K skipped". Exits non-zero if any test or
# program failed (a program that dies before its summary counts as one
# failure).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$(dirname "$0")/lsan.supp:print_suppressions=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
passed=0 failed=0 skipped=0 bad=""
for t in "$@"; do
    echo "=== $t"
    "$t" > "$log" 2>&1
    rc=$?
    cat "$log"
    # a program may run several cmocka groups: add up every summary line
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    passed=$((passed + ${p:-0}))
    skipped=$((skipped + ${s:-0}))
    f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1 # died, or leaked, after its tests passed
    fi
    failed=$((failed + f))
    [ "$rc" -ne 0 ] && bad="$bad $(basename "$t")"
done
echo
[ -n "$bad" ] && echo "failing test programs:$bad"
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ -z "$bad" ]
