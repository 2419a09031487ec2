#!/bin/sh
# The GPU tests (tests/gpu/test_*.c): CPU/GPU parity of every layer and
# short training runs on the device.
#   tests/gpu/run.sh            build with GPU=1 CUDNN=1 in $GPU_BUILD
#                               (default build/gpu) and run them all
#   tests/gpu/run.sh --if-gpu   the same, only when this machine has an
#                               NVIDIA GPU; otherwise one line says skipped
# Each test binary itself skips (exit 0) when CUDA reports no device.
set -e
cd "$(dirname "$0")/../.."
CUDA_DIR=${CUDA_DIR:-/usr/local/cuda}
if [ "$1" = "--if-gpu" ]; then
    if ! { nvidia-smi -L 2>/dev/null | grep -q '^GPU'; } && [ ! -e /dev/nvidia0 ]; then
        echo "GPU tests skipped: no GPU (nvidia-smi -L lists none, no /dev/nvidia0)"
        exit 0
    fi
    if [ ! -x "$CUDA_DIR/bin/nvcc" ]; then
        echo "GPU tests skipped: a GPU is present but no CUDA toolkit at $CUDA_DIR"
        exit 0
    fi
fi
B=${GPU_BUILD:-build/gpu}
# a make of its own (run from make test: not a sub-make of that one)
unset MAKEFLAGS MFLAGS MAKELEVEL
JOBS=$(nproc 2>/dev/null || echo 2)
make -j"$JOBS" --no-print-directory GPU=1 CUDNN=1 BUILD="$B" BIN="$B/bin" gpu-tests
# strict fp32 everywhere: TF32 off in cuBLAS and cuDNN whatever the cfg says
export NVIDIA_TF32_OVERRIDE=0
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
failed=""
n=0
for t in "$B"/tests/gpu/test_*; do
    [ -x "$t" ] || continue
    n=$((n + 1))
    echo "=== $t"
    if ! "$t"; then
        failed="$failed $(basename "$t")"
    fi
done
nfail=$(echo $failed | wc -w)
echo
[ -n "$failed" ] && echo "FAILED GPU test programs:$failed"
echo "GPU test programs: $((n - nfail)) passed, $nfail failed"
[ -z "$failed" ]
