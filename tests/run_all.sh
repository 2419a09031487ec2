#!/bin/sh
# Runs every test binary given; exits non-zero if any failed, and ends with
# one summary line.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$(dirname "$0")/lsan.supp:print_suppressions=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
failed=""
for t in "$@"; do
    echo "=== $t"
    if ! "$t"; then
        failed="$failed $(basename "$t")"
    fi
done
total=$#
nfail=$(echo $failed | wc -w)
echo
if [ -n "$failed" ]; then
    echo "FAILED test programs:$failed"
fi
echo "test programs: $((total - nfail)) passed, $nfail failed"
[ -z "$failed" ]
