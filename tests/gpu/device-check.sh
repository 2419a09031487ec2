#!/bin/bash
# One prepared check of the CUDA backend on a machine with a GPU:
#   1. build with GPU=1 CUDNN=1 (all cores) in build/gpu
#   2. run the GPU tests: CPU/GPU parity of every layer, training on the
#      device (tests/gpu/test_*.c), in strict fp32; where nvidia-smi lists
#      2 or more GPUs and mpirun exists, 2 ranks under mpirun with 1 GPU
#      each (test_gpu_mpi, NCCL over MPI; built with MPI=1 where mpicc is)
#   3. benchmark training of ResNet-18-CIFAR and ResNet-34-CIFAR at batch
#      128 on GPU 0 (bench/train_bench -gpus 0: median of 20 timed batches
#      after 5 warm-up ones, TF32 allowed), and PyTorch's images/s for the
#      same networks on the same GPU when python3 has torch with CUDA
#
#   tests/gpu/device-check.sh [OUTDIR]     (default results/gpu)
#
# BATCH, TIMED, WARMUP (environment) change the benchmark's batch size and
# batch counts. EMU=1 rehearses the whole script without a GPU on the CUDA
# emulator (tests/gpu/emu, cuDNN left out: its reference convolutions are
# too slow for ResNets), e.g.
#   EMU=1 BATCH=2 TIMED=2 WARMUP=1 tests/gpu/device-check.sh /tmp/rehearsal
# which checks the script and the code paths it drives, not the device.
#
# It finds CUDA (CUDA_DIR, else where nvcc is), cuDNN and NCCL (CUDNN_DIR,
# NCCL_DIR, else CUDA_DIR, /usr, or the Python wheels of nvidia-cudnn and
# nvidia-nccl; without cuDNN it builds CUDNN=0, without NCCL NCCL=0) and
# takes OpenBLAS, cmocka, zlib and make from .deb/ when the machine lacks
# them (tests/gpu/device-deps.sh fetch, where apt-get works, then carry
# .deb with the tree; FORCE_DEPS=1 uses .deb/ anyway).
#
# Writes OUTDIR/device-check.log (everything) and OUTDIR/summary.md (the
# table). Every step is printed and time-limited; a failing test step does
# not stop the benchmark (the exit status reports it). Meant to finish in
# well under 5 minutes on an H200.
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=${1:-results/gpu}
EMU=${EMU:-0}
if [ "$EMU" = 1 ]; then
    B=${GPU_BUILD:-build/emu-check}
    MAKE_GPU=(GPU=1 EMU=1 CUDNN=0)
else
    B=${GPU_BUILD:-build/gpu}
    MAKE_GPU=(GPU=1 CUDNN=1)
fi
JOBS=$(nproc 2>/dev/null || echo 4)
BATCH=${BATCH:-128}
TIMED=${TIMED:-20}
WARMUP=${WARMUP:-5}
mkdir -p "$OUT"
LOG="$OUT/device-check.log"
: > "$LOG"
failed=()
T0=$(date +%s)

say() { echo "$*" | tee -a "$LOG"; }
# step NAME SECONDS CMD...: run with a time limit, log, remember failures
step() {
    local name=$1 limit=$2
    shift 2
    say ""
    say "== [$(( $(date +%s) - T0 ))s] $name (limit ${limit}s): $*"
    local rc=0
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$LOG" || rc=${PIPESTATUS[0]}
    if [ "$rc" -ne 0 ]; then
        local why=""
        [ "$rc" -eq 124 ] && why=", timed out"
        say "== $name: FAILED (exit $rc$why)"
        failed+=("$name")
    fi
    return 0
}
field() { sed -n "s|.*$1 \([0-9.]*\).*|\1|p" | tail -1; }

say "# device check, $(date -u '+%Y-%m-%d %H:%M UTC'), $(hostname)"
# what the machine is (information only: a failure here fails nothing)
if command -v nvidia-smi >/dev/null; then
    say "$(nvidia-smi -L 2>&1 || true)"
    say "$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || true)"
else
    say "(no nvidia-smi)"
fi

# ---- what the build takes from where. A machine made for CUDA work may
# lack OpenBLAS, cmocka or make and have no package manager that works,
# and may hold cuDNN and NCCL only inside Python wheels: find them, or use
# the Debian packages carried in .deb/ (tests/gpu/device-deps.sh).
DEPS=${DEPS:-/tmp/dn-deps}
LIBPATH=""
addlib() { LIBPATH="${LIBPATH:+$LIBPATH:}$1"; }
# the first file named $1 under the Python packages (cuDNN's and NCCL's wheels)
in_wheels() {
    local site
    site=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null) || return 0
    find "$site" -path "*nvidia*" -name "$1" 2>/dev/null | sort | head -1
}
# a folder DIR/{include,lib} for a library found as header $2 and .so $3
wheel_dir() {
    local name=$1 header library dir
    header=$(in_wheels "$2")
    library=$(in_wheels "$3")
    [ -n "$header" ] && [ -n "$library" ] || return 1
    dir="$DEPS/$name"
    mkdir -p "$dir/lib"
    ln -sfn "$(dirname "$header")" "$dir/include"
    ln -sf "$library" "$dir/lib/${3%%.so*}.so"
    echo "$dir"
}
# the folder of the library DIR/lib/NAME.so links to
lib_of() { dirname "$(readlink -f "$1/lib/$2.so")"; }

if [ "$EMU" != 1 ]; then
    CUDA_DIR=${CUDA_DIR:-/usr/local/cuda}
    if [ ! -x "$CUDA_DIR/bin/nvcc" ] && command -v nvcc >/dev/null; then
        CUDA_DIR=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
    fi
    addlib "$CUDA_DIR/lib64"
    cudnn=1
    if [ -n "${CUDNN_DIR:-}" ]; then :
    elif [ -e "$CUDA_DIR/include/cudnn.h" ]; then CUDNN_DIR=$CUDA_DIR
    elif [ -e /usr/include/cudnn.h ] || [ -e /usr/include/x86_64-linux-gnu/cudnn.h ]; then CUDNN_DIR=/usr
    elif CUDNN_DIR=$(wheel_dir cudnn cudnn.h libcudnn.so.9); then
        addlib "$(lib_of "$CUDNN_DIR" libcudnn)"
    else cudnn=0; CUDNN_DIR=$CUDA_DIR
    fi
    nccl=1
    if [ -n "${NCCL_DIR:-}" ]; then :
    elif [ -e "$CUDA_DIR/include/nccl.h" ]; then NCCL_DIR=$CUDA_DIR
    elif [ -e /usr/include/nccl.h ]; then NCCL_DIR=/usr
    elif NCCL_DIR=$(wheel_dir nccl nccl.h libnccl.so.2); then
        addlib "$(lib_of "$NCCL_DIR" libnccl)"
    else nccl=0; NCCL_DIR=$CUDA_DIR
    fi
    MAKE_GPU=(GPU=1 CUDNN=$cudnn NCCL=$nccl CUDA_DIR="$CUDA_DIR" CUDNN_DIR="$CUDNN_DIR" NCCL_DIR="$NCCL_DIR")
    say "CUDA $CUDA_DIR: $("$CUDA_DIR/bin/nvcc" --version 2>&1 | tail -1 || echo 'no nvcc')"
    say "cuDNN: $([ $cudnn = 1 ] && echo "$CUDNN_DIR" || echo 'not found: building without it (im2col + cuBLAS, own batch norm)')"
    say "NCCL: $([ $nccl = 1 ] && echo "$NCCL_DIR" || echo 'not found: NCCL=0 (one GPU per run)')"
fi
if [ "${FORCE_DEPS:-0}" = 1 ] || ! command -v make >/dev/null ||
    [ ! -e /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h ] ||
    [ ! -e /usr/include/cmocka.h ]; then
    if tests/gpu/device-deps.sh unpack "$DEPS/root" >> "$LOG" 2>&1; then
        say "OpenBLAS, cmocka, zlib, make: the packages carried in .deb/, unpacked into $DEPS/root"
        MAKE_GPU+=(DEPS_ROOT="$DEPS/root")
        PATH="$PATH:$DEPS/root/usr/bin"
        addlib "$DEPS/root/usr/lib/x86_64-linux-gnu/openblas-pthread"
        addlib "$DEPS/root/usr/lib/x86_64-linux-gnu"
        addlib "$DEPS/root/lib/x86_64-linux-gnu"
    else
        say "OpenBLAS, cmocka or make is missing and no .deb/ was carried"
        say "(run tests/gpu/device-deps.sh fetch where apt-get works, and carry .deb)"
    fi
fi
export LD_LIBRARY_PATH="$LIBPATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
say "gcc: $(gcc --version 2>&1 | head -1); make: $(make --version 2>&1 | head -1)"
# MPI (Open MPI's mpicc and mpirun): GPU ranks, one GPU each
mpi=0
if command -v mpicc >/dev/null && command -v mpirun >/dev/null; then
    mpi=1
    MAKE_GPU+=(MPI=1)
    say "MPI: $(mpirun --version 2>&1 | head -1)"
else
    say "MPI: no mpicc or mpirun: built without MPI"
fi

[ "$EMU" = 1 ] && say "(EMU=1: a rehearsal on the CUDA emulator, not a GPU: its figures mean nothing)"
step "build" 300 make -j"$JOBS" --no-print-directory "${MAKE_GPU[@]}" \
    BUILD="$B" BIN="$B/bin" "$B/bin/darknet" gpu-tests "$B/bench/train_bench"
if [ ${#failed[@]} -gt 0 ]; then
    say "build failed: nothing to run"
    exit 1
fi

export NVIDIA_TF32_OVERRIDE=0 # the tests compare fp32 with fp32
export DN_REQUIRE_GPU=1        # no device is a failure here, not a skip
for t in "$B"/tests/gpu/test_*; do
    [ -x "$t" ] && [ "${t%.d}" = "$t" ] || continue
    [ "${t##*/}" = test_gpu_mpi ] && continue # below, where it can run
    step "$(basename "$t")" 150 "$t"
done
# 2 ranks, 1 GPU each, against 1 process on 1 GPU (NCCL over MPI)
if [ "$EMU" = 1 ]; then
    gpus=${DN_EMU_DEVICES:-2}
else
    gpus=$( (nvidia-smi -L 2>/dev/null || true) | grep -c '^GPU' || true)
fi
if [ "$mpi" = 1 ] && [ "${gpus:-0}" -ge 2 ]; then
    step "test_gpu_mpi (2 ranks, 1 GPU each)" 240 \
        env DARKNET_GPU_MPI="$B/bin/darknet" "$B/tests/gpu/test_gpu_mpi"
else
    why="nvidia-smi lists ${gpus:-0} GPU(s), 2 ranks need 2"
    [ "$mpi" = 1 ] || why="no mpicc or mpirun (Open MPI)"
    say ""
    say "== test_gpu_mpi (2 ranks, 1 GPU each) skipped: $why"
fi
unset NVIDIA_TF32_OVERRIDE

declare -A ours torch
for net in resnet18 resnet34; do
    out="$OUT/bench-$net.txt"
    step "darknet $net batch $BATCH" 120 \
        bash -c "set -o pipefail; '$B/bench/train_bench' cfg/$net-cifar.cfg $BATCH $TIMED $WARMUP -gpus 0 | tee '$out'"
    ours[$net]=$(field "images/s" < "$out" || true)
done
if [ "$EMU" != 1 ] &&
    python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' \
        >/dev/null 2>&1; then
    for net in resnet18 resnet34; do
        out="$OUT/torch-$net.txt"
        step "pytorch $net batch $BATCH" 150 \
            bash -c "set -o pipefail; python3 bench/torch_peer.py $BATCH $TIMED $WARMUP 4 --arch $net --device cuda | tee '$out'"
        torch[$net]=$(field "images/s" < "$out" || true)
    done
else
    say ""
    say "== PyTorch peer skipped: python3 has no torch with CUDA"
fi

SUMMARY="$OUT/summary.md"
{
    gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)
    echo "# Training throughput on ${gpu:-an unnamed device (no nvidia-smi)}"
    echo
    [ "$EMU" = 1 ] && echo "EMU=1: a rehearsal on the CUDA emulator, without cuDNN; the figures mean nothing." && echo
    echo "Batch $BATCH, 32x32x3 CIFAR shapes, median of $TIMED timed batches after"
    echo "$WARMUP warm-up ones. This framework: bench/train_bench -gpus 0 (cuDNN, TF32"
    echo "allowed, the input copied up every batch). PyTorch: bench/torch_peer.py"
    echo "--device cuda (eager, NCHW, cudnn.benchmark, TF32 allowed, the input"
    echo "resident on the device)."
    echo
    echo "| network | this framework img/s | PyTorch img/s | ratio |"
    echo "|---|---|---|---|"
    for net in resnet18 resnet34; do
        o=${ours[$net]:-}
        p=${torch[$net]:-}
        r=$(awk -v o="$o" -v p="$p" 'BEGIN { if (o > 0 && p > 0) printf "%.2fx", o / p; else print "-" }')
        echo "| $net | ${o:--} | ${p:--} | $r |"
    done
    echo
    if [ ${#failed[@]} -eq 0 ]; then
        echo "All steps passed in $(( $(date +%s) - T0 )) s."
    else
        echo "FAILED steps: ${failed[*]} ($(( $(date +%s) - T0 )) s; see device-check.log)."
    fi
} > "$SUMMARY"
say ""
cat "$SUMMARY" | tee -a "$LOG"
[ ${#failed[@]} -eq 0 ]
