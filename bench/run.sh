#!/bin/sh
# make bench: training throughput of ResNet-18-CIFAR (cfg/resnet18-cifar.cfg)
# here, next to the machine's SGEMM ceiling, Debian's darknet and PyTorch,
# measured in the same run. Our figure is the default build's (convolutions
# through oneDNN where the build has it); the im2col + GEMM path is timed
# beside it. Writes results/bench/bench.md.
#   BENCH_TIMED (default 20) timed batches after BENCH_WARMUP (default 3).
set -e
B=${BUILD:-build}/bench
TIMED=${BENCH_TIMED:-20}
WARMUP=${BENCH_WARMUP:-3}
CFG=cfg/resnet18-cifar.cfg
OUT=results/bench
mkdir -p "$OUT"
LOG="$OUT/bench.log"
: > "$LOG"
say() { echo "$*" | tee -a "$LOG"; }
field() { sed -n "s|.*$1 \([0-9.]*\).*|\1|p"; }

say "# make bench, $(date -u +%Y-%m-%d), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
say "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}, oneDNN $(dpkg-query -W -f='${Version}' libdnnl2 2>/dev/null || echo 'not installed')"
say ""
say "## SGEMM through the linked BLAS"
"$B/gemm_bench" | tee -a "$LOG"
CEIL=$(tail -1 "$LOG" | field "ceiling (best of the above):")

run_ours() { "$B/train_bench" $CFG "$1" "$TIMED" "$WARMUP"; }
run_im2col() { "$B/train_bench" $CFG "$1" "$TIMED" "$WARMUP" -set conv_backend=im2col; }
run_debian() {
    if [ -x "$B/darknet_peer" ]; then
        "$B/darknet_peer" $CFG "$1" 2 1 2>/dev/null
    else
        echo "skipped (Debian's darknet not installed)"
    fi
}
run_torch() { # $1 batch, $2 "tuned" for glibc settings that keep memory mapped
    if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
        echo "skipped (python3-torch not installed)"
    elif [ "$2" = tuned ]; then
        MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 MALLOC_TOP_PAD_=1000000000 \
            /usr/bin/python3 bench/torch_peer.py "$1" "$TIMED" "$WARMUP" 2
    else
        /usr/bin/python3 bench/torch_peer.py "$1" "$TIMED" "$WARMUP" 2
    fi
}

TABLE="$OUT/bench.md.tmp" # renamed to bench.md when complete
{
    echo "# Training throughput, ResNet-18-CIFAR (32x32x3, 10 classes)"
    echo
    head -2 "$LOG" | sed "s/^# //"
    echo
    echo "Medians of $TIMED timed batches after $WARMUP warm-up (Debian's darknet: 2 after 1);"
    echo "GFLOP/s counts training as 3x the forward FLOPs of direct convolution, so it"
    echo "is an effective rate: oneDNN runs 3x3 stride-1 layers with Winograd's"
    echo "F(4x4,3x3), which needs fewer multiplications, and its direct kernels also"
    echo "outrun OpenBLAS; either can take the figure past the SGEMM ceiling ($CEIL"
    echo "GFLOP/s, OpenBLAS). \"im2col\" is this framework with conv_backend=im2col:"
    echo "im2col + OpenBLAS SGEMM, no oneDNN. PyTorch uses the same oneDNN (direct)."
    echo
    echo "| batch | this framework img/s | GFLOP/s | % of SGEMM ceiling | im2col img/s | Debian darknet img/s | PyTorch img/s (default malloc) | PyTorch img/s (mapped malloc) | ours / PyTorch best | ours / darknet |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
} > "$TABLE"
for batch in 64 128; do
    say ""
    say "## batch $batch"
    ours=$(run_ours $batch); say "this framework: $ours"
    i2c=$(run_im2col $batch); say "this framework, conv_backend=im2col: $i2c"
    deb=$(run_debian $batch); say "Debian darknet: $deb"
    t1=$(run_torch $batch default); say "PyTorch (glibc defaults): $t1"
    t2=$(run_torch $batch tuned); say "PyTorch (MALLOC_MMAP_MAX_=0 ...): $t2"
    o=$(echo "$ours" | field "images/s"); g=$(echo "$ours" | field "GFLOP/s")
    d=$(echo "$deb" | field "images/s"); p1=$(echo "$t1" | field "images/s")
    p2=$(echo "$t2" | field "images/s"); i=$(echo "$i2c" | field "images/s")
    awk -v b=$batch -v o="$o" -v g="$g" -v c="$CEIL" -v i="$i" -v d="$d" -v p1="$p1" -v p2="$p2" 'BEGIN {
        best = (p1 + 0 > p2 + 0) ? p1 : p2
        printf "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", b, o, g,
            (c > 0 ? sprintf("%.0f%%", 100 * g / c) : "-"), (i == "" ? "-" : i),
            (d == "" ? "-" : d),
            (p1 == "" ? "-" : p1), (p2 == "" ? "-" : p2),
            (best > 0 ? sprintf("%.2fx", o / best) : "-"),
            (d > 0 ? sprintf("%.1fx", o / d) : "-") }' >> "$TABLE"
done
mv "$TABLE" "$OUT/bench.md"
TABLE="$OUT/bench.md"
say ""
cat "$TABLE"
echo "(full log: $LOG)"
