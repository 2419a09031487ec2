#!/bin/sh
# The GPU tests (tests/gpu/test_*.c): CPU/GPU parity of every layer and
# short training runs on the device.
#   tests/gpu/run.sh            build with GPU=1 CUDNN=1 in $GPU_BUILD
#                               (default build/gpu) and run them all
#   tests/gpu/run.sh --if-gpu   the same when this machine has an NVIDIA GPU;
#                               otherwise --emu
#   tests/gpu/run.sh --emu      run them on the CUDA emulator (tests/gpu/emu:
#                               every kernel of the backend, cuBLAS through
#                               OpenBLAS, cuDNN and NCCL by reference code,
#                               two emulated devices; not speed), built twice:
#                               without cuDNN (build/emu, or build/emu-mpi
#                               with MPI=1 where mpicc and mpirun exist), each
#                               program run with blocks and threads in order,
#                               then in reverse; with cuDNN, AddressSanitizer
#                               and UBSan (build/emu-cudnn), in order;
#                               test_gpu_networks (minutes there) only with
#                               DN_EMU_NETWORKS=1, once
# Each test binary itself skips (exit 0) when CUDA reports no device.
# Where mpicc and mpirun exist, one build is made with MPI=1 (and its
# bin/darknet), and test_gpu_mpi runs that darknet on 2 ranks, one GPU each
# (DARKNET_GPU_MPI); elsewhere it says it was skipped.
set -e
cd "$(dirname "$0")/../.."
CUDA_DIR=${CUDA_DIR:-/usr/local/cuda}
mode=gpu
if [ "$1" = "--if-gpu" ]; then
    if ! { nvidia-smi -L 2>/dev/null | grep -q '^GPU'; } && [ ! -e /dev/nvidia0 ]; then
        echo "no GPU here (nvidia-smi -L lists none, no /dev/nvidia0): the GPU tests run on the CUDA emulator"
        mode=emu
    elif [ ! -x "$CUDA_DIR/bin/nvcc" ]; then
        echo "GPU tests skipped: a GPU is present but no CUDA toolkit at $CUDA_DIR"
        exit 0
    fi
elif [ "$1" = "--emu" ]; then
    mode=emu
fi
# a make of its own (run from make test: not a sub-make of that one)
unset MAKEFLAGS MFLAGS MAKELEVEL
JOBS=$(nproc 2>/dev/null || echo 2)
mpi=0
command -v "${MPICC:-mpicc}" > /dev/null && command -v mpirun > /dev/null && mpi=1
# what a build with MPI makes too: the darknet test_gpu_mpi runs
mpi_goal() { [ "$1" = 1 ] && echo "$2/bin/darknet"; true; }
if [ $mode = emu ]; then
    # build:CUDNN:EMU_SAN:orders:MPI (a build of other switches, another
    # folder: make does not rebuild objects when switches change)
    plain=build/emu
    [ $mpi = 1 ] && plain=build/emu-mpi
    builds="$plain:0:0:forward,reverse:$mpi build/emu-cudnn:1:1:forward:0"
    for b in $builds; do
        set -- $(echo "$b" | tr ':' ' ')
        mkdir -p "$1"
        make -j"$JOBS" --no-print-directory GPU=1 EMU=1 CUDNN=$2 EMU_SAN=$3 \
            MPI=$5 BUILD="$1" BIN="$1/bin" gpu-tests $(mpi_goal "$5" "$1") \
            > "$1/make.log" 2>&1 || { cat "$1/make.log"; exit 1; }
    done
    export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
    export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
else
    B=${GPU_BUILD:-build/gpu}
    [ $mpi = 1 ] && B=${GPU_BUILD:-build/gpu-mpi}
    builds="$B:1:0:forward:$mpi"
    make -j"$JOBS" --no-print-directory GPU=1 CUDNN=1 MPI=$mpi BUILD="$B" \
        BIN="$B/bin" gpu-tests $(mpi_goal "$mpi" "$B")
fi
# strict fp32 everywhere: TF32 off in cuBLAS and cuDNN whatever the cfg says
export NVIDIA_TF32_OVERRIDE=0
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
failed=""
n=0
for b in $builds; do
    set -- $(echo "$b" | tr ':' ' ')
    for t in "$1"/tests/gpu/test_*; do
        [ -x "$t" ] || continue
        for order in $(echo "$4" | tr ',' ' '); do
            # the paper networks take minutes on the emulator: there, once
            # (plain build, in order) and only when asked
            if [ $mode = emu ] && [ "${t##*/}" = test_gpu_networks ] &&
                { [ "${DN_EMU_NETWORKS:-0}" != 1 ] || [ "$3" = 1 ] ||
                  [ "$order" != forward ]; }; then
                continue
            fi
            n=$((n + 1))
            if [ $mode = emu ]; then
                san=""; [ "$3" = 1 ] && san=", ASan+UBSan"
                echo "=== $t (emulator, $order order$san)"
            else
                echo "=== $t"
            fi
            gpu_mpi=""
            [ "$5" = 1 ] && gpu_mpi="$1/bin/darknet"
            if ! DN_EMU_ORDER=$order DARKNET_GPU_MPI=$gpu_mpi "$t"; then
                failed="$failed $t($order)"
            fi
        done
    done
done
nfail=$(echo $failed | wc -w)
echo
[ -n "$failed" ] && echo "FAILED GPU test programs:$failed"
echo "GPU test programs ($mode): $((n - nfail)) passed, $nfail failed"
[ -z "$failed" ]
