#!/bin/bash
# make bench: training throughput of every network the paper's experiments
# train (and the demo's), this framework beside PyTorch (Debian's
# python3-torch, the same network built from the same cfg by
# bench/torch_peer.py), alone and beside one busy process, and this
# framework's OpenMP waiting policy (passive, wait_policy.h) against
# libgomp's spinning. Writes $BENCH_OUT/bench.md and bench.log.
#
# Each figure is the median over BENCH_REPEATS runs, each run the median of
# its timed batches; the runs alternate (ours, PyTorch, ours, PyTorch, ...)
# so that the machine's drift falls on both alike.
#   NETS           networks, by name (default: all of them, see net_info)
#   BENCH_TIMED    timed batches per run (default: per network, about 3 to
#                  11 s of batches on 2 quiet cores)
#   BENCH_WARMUP   warm-up batches per run (default 2)
#   BENCH_REPEATS  runs of each kind (default 3)
#   BENCH_OUT      output folder (default results/bench)
# bench/run.sh --estimate prints the expected duration and exits.
set -eo pipefail
B=${BUILD:-build}/bench
DARKNET=${DARKNET:-bin/darknet}
PY=/usr/bin/python3
OUT=${BENCH_OUT:-results/bench}
WARMUP=${BENCH_WARMUP:-2}
REPEATS=${BENCH_REPEATS:-3}
NETS=${NETS:-resnet-small resnet18 resnet34 vgg16 resnet50-hybrid vgg16-hybrid}
THREADS=$(nproc)
POLICY_NETS="resnet-small resnet18" # waiting policy compared on these

# name -> cfg, batch (the paper's: 128 for the ResNets, and the plain VGG
# beside them; 32 for the hybrids), default timed batches, and our seconds per batch on
# 2 quiet cores (AMD EPYC, 220 to 340 effective GFLOP/s), for the estimate
net_info() {
    case $1 in
    resnet-small)    echo "cfg/resnet-small.cfg 128 60 0.045" ;;
    resnet18)        echo "cfg/resnet18-cifar.cfg 128 6 1.4" ;;
    resnet34)        echo "cfg/resnet34-cifar.cfg 128 4 2.7" ;;
    vgg16)           echo "cfg/vgg16-cifar.cfg 128 8 0.8" ;;
    resnet50-hybrid) echo "cfg/resnet50-hybrid.cfg 32 6 1.1" ;;
    vgg16-hybrid)    echo "cfg/vgg16-hybrid.cfg 32 20 0.28" ;;
    *) return 1 ;;
    esac
}
for n in $NETS; do
    net_info "$n" > /dev/null || {
        echo "bench: unknown network \"$n\"; known: resnet-small resnet18 resnet34" \
             "vgg16 resnet50-hybrid vgg16-hybrid" >&2
        exit 2
    }
done
timed_of() { set -- $(net_info "$1"); echo "${BENCH_TIMED:-$3}"; }
is_policy_net() { case " $POLICY_NETS " in *" $1 "*) return 0 ;; esac; return 1; }

# The estimate: each run costs (warm-up + timed) batches plus its start (4 s
# for PyTorch's import, 1 s ours); PyTorch takes about 1.5x our time per
# batch, and beside the busy process ours (passive) about 2.2x, ours
# spinning and PyTorch (libgomp's default, spinning) about 3.8x (earlier runs
# on this machine). Debian's darknet: 3 batches of 128 at about 3.5 images/s.
estimate_net() { # $1 network -> seconds
    set -- $1 $(net_info "$1")
    local timed=${BENCH_TIMED:-$4}
    awk -v t="$5" -v n=$((WARMUP + timed)) -v r="$REPEATS" -v p=$(is_policy_net $1 && echo 1 || echo 0) \
        'BEGIN { run = n * t; s = r * (run + 1 + 1.5 * run + 4)        # alone
                 s += r * (2.2 * run + 1 + 3.8 * 1.5 * run + 4)        # loaded
                 if (p) s += r * (run + 1 + 3.8 * run + 1)             # ours spinning
                 printf "%.0f", s }'
}
estimate_all() {
    local total=20 # SGEMM ceiling
    for n in $NETS; do total=$((total + $(estimate_net $n) + 5)); done
    case " $NETS " in *" resnet18 "*) [ -x "$B/darknet_peer" ] && total=$((total + 120)) ;; esac
    echo $total
}
minutes() { awk -v s="$1" 'BEGIN { printf "%.0f min", s / 60 + 0.5 }'; }
if [ "$1" = --estimate ]; then
    echo "bench: NETS=\"$NETS\", $REPEATS repeats, $WARMUP warm-up: about $(minutes $(estimate_all)) on 2 quiet cores"
    exit 0
fi

mkdir -p "$OUT"
LOG="$OUT/bench.log"
: > "$LOG"
say() { echo "$*" | tee -a "$LOG"; }
field() { sed -n "s|.*$1 \([0-9.]*\).*|\1|p" | tail -1; }
median() { tr ' ' '\n' | awk NF | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) exit; print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
maxof() { tr ' ' '\n' | awk NF | sort -g | tail -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2fx", a / b; else print "-" }'; }
kept() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.0f%%", 100 * a / b; else print "-" }'; }
gfs() { awk -v a="$1" -v g="$gf" 'BEGIN { if (a > 0 && g > 0) printf "%.0f", a * g; else print "-" }'; }

# The competing process: one busy shell loop on one core, bounded in time
# (timeout) and stopped after each loaded run; the trap stops it when the
# bench ends in any way, so it never outlives the bench.
BUSY=""
busy_start() { # $1 bound in seconds
    timeout "$1" sh -c 'while :; do :; done' > /dev/null 2>&1 &
    BUSY=$!
}
busy_stop() { # fails if the busy process had already ended
    [ -n "$BUSY" ] || return 0
    local alive=0
    kill -0 "$BUSY" 2> /dev/null && alive=1
    kill "$BUSY" 2> /dev/null || true
    wait "$BUSY" 2> /dev/null || true
    BUSY=""
    [ $alive = 1 ]
}
trap 'busy_stop || true' EXIT
trap 'exit 130' INT TERM

have_torch=0
$PY -c 'import torch' 2> /dev/null && have_torch=1
ours() { "$B/train_bench" "$@" 2>> "$LOG"; }
torch() { $PY bench/torch_peer.py "$@" 2>> "$LOG"; }
# PyTorch runs with glibc settings that keep freed memory mapped: faster for
# it at batch 128 (results of the previous bench: 57 against 46 images/s)
torch_run() { # cfg batch timed
    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 MALLOC_TOP_PAD_=1000000000 \
        torch "$2" "$3" "$WARMUP" "$THREADS" --cfg "$1"
}

T0=$(date +%s)
EST=$(estimate_all)
say "# make bench, $(date -u +%Y-%m-%d), $(lscpu | sed -n 's/^Model name: *//p' | head -1), $THREADS cores"
say "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}, OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset}, GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-unset}; oneDNN $(dpkg-query -W -f='${Version}' libdnnl2 2>/dev/null || echo 'not installed'), PyTorch $([ $have_torch = 1 ] && $PY -c 'import torch; print(torch.__version__)' || echo 'not installed')"
say "networks: $NETS; $REPEATS repeats, $WARMUP warm-up batches; expected duration about $(minutes $EST) on 2 quiet cores"
say ""
say "## SGEMM through the linked BLAS"
"$B/gemm_bench" | tee -a "$LOG"
CEIL=$(tail -1 "$LOG" | field "ceiling (best of the above):")
CEIL_NOTE=""
if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
    # the environment picks OpenBLAS's kernels: show what the CPU's own
    # detection would reach too (the runs below keep the environment)
    say "with OPENBLAS_CORETYPE unset (OpenBLAS's own choice of kernels):"
    OWN=$(env -u OPENBLAS_CORETYPE OPENBLAS_VERBOSE=2 "$B/gemm_bench" 2>&1 | tee -a "$LOG")
    echo "$OWN"
    own_core=$(echo "$OWN" | sed -n 's/^Core: *//p' | head -1)
    own_ceil=$(echo "$OWN" | tail -1 | field "ceiling (best of the above):")
    CEIL_NOTE=" with OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE as set; ${own_ceil:-?} with OpenBLAS's own choice, ${own_core:-?}"
fi

USER_POLICY=""
[ -n "${OMP_WAIT_POLICY+x}${GOMP_SPINCOUNT+x}" ] && USER_POLICY=1
ROWS_ALONE="" ROWS_LOAD="" ROWS_POLICY="" DARKNET_LINE=""
est_done=0 i=0
for n in $NETS; do
    set -- $(net_info $n)
    cfg=$1 batch=$2 timed=$(timed_of $n)
    i=$((i + 1))
    el=$(($(date +%s) - T0))
    left=$(awk -v e=$el -v d=$est_done -v t=$EST 'BEGIN { r = (d > 0 && e > 0) ? e / d : 1; printf "%.0f", (t - d) * r }')
    say ""
    say "## $n ($cfg, batch $batch, $timed timed batches after $WARMUP warm-up) [$i/$(echo $NETS | wc -w), $(minutes $el) so far, about $(minutes $left) left]"
    est_done=$((est_done + $(estimate_net $n) + 5))
    p_ours=$("$DARKNET" summary "$cfg" 2> /dev/null | sed -n 's/^total: \([0-9]*\) parameters.*/\1/p')
    p_torch=""
    [ $have_torch = 1 ] && p_torch=$(torch --cfg "$cfg" --count | field params || true)
    say "parameters: this framework $p_ours, PyTorch ${p_torch:-not installed}"
    compare=$have_torch
    if [ $have_torch = 1 ] && [ "$p_ours" != "$p_torch" ]; then
        say "bench: $n: the parameter counts differ, so the networks differ: PyTorch not timed"
        compare=0
    fi
    # a loaded run's bound: ten times its expected length, and 5 minutes
    bound=$(awk -v t="$(net_info $n | cut -d' ' -f4)" -v n=$((WARMUP + timed)) \
        'BEGIN { printf "%.0f", 10 * 1.5 * t * n + 300 }')
    o_alone="" t_alone="" a_alone="" o_load="" t_load="" a_load="" o_rss="" t_rss="" gf=""
    for cond in alone loaded; do
        for r in $(seq "$REPEATS"); do
            runs="ours"
            [ $compare = 1 ] && runs="$runs torch"
            is_policy_net $n && [ -z "$USER_POLICY" ] && runs="$runs active"
            for what in $runs; do
                [ $cond = loaded ] && busy_start "$bound"
                case $what in
                ours) line=$(ours "$cfg" "$batch" "$timed" "$WARMUP" || echo failed) ;;
                torch) line=$(torch_run "$cfg" "$batch" "$timed" || echo failed) ;;
                active) line=$(OMP_WAIT_POLICY=active ours "$cfg" "$batch" "$timed" "$WARMUP" \
                               || echo failed) ;;
                esac
                if [ $cond = loaded ] && ! busy_stop; then
                    say "bench: the busy process ended before the run did (bound $bound s): run discarded"
                    continue
                fi
                say "$cond $r $what: $line"
                v=$(echo "$line" | field "images/s")
                case $cond-$what in
                alone-ours) o_alone="$o_alone $v" o_rss="$o_rss $(echo "$line" | field "peak RSS")"
                            gf=$(echo "$line" | sed -n 's|.*, \([0-9.]*\) GFLOP/image training.*|\1|p') ;;
                alone-torch) t_alone="$t_alone $v" t_rss="$t_rss $(echo "$line" | field "peak RSS")" ;;
                alone-active) a_alone="$a_alone $v" ;;
                loaded-ours) o_load="$o_load $v" ;;
                loaded-torch) t_load="$t_load $v" ;;
                loaded-active) a_load="$a_load $v" ;;
                esac
            done
        done
    done
    oa=$(echo $o_alone | median) ta=$(echo $t_alone | median) aa=$(echo $a_alone | median)
    ol=$(echo $o_load | median) tl=$(echo $t_load | median) al=$(echo $a_load | median)
    orss=$(echo $o_rss | maxof) trss=$(echo $t_rss | maxof)
    params=$p_ours
    [ $have_torch = 1 ] && [ "$p_ours" != "$p_torch" ] && params="$p_ours (PyTorch: $p_torch, not compared)"
    ROWS_ALONE="$ROWS_ALONE| $n | $batch | $params | ${oa:--} | ${ta:--} | $(ratio "$oa" "$ta") | $(gfs "$oa") | $(gfs "$ta") | ${orss:--} | ${trss:--} |
"
    ROWS_LOAD="$ROWS_LOAD| $n | ${ol:--} | $(kept "$ol" "$oa") | ${tl:--} | $(kept "$tl" "$ta") | $(ratio "$ol" "$tl") |
"
    if [ -n "$aa" ]; then
        ROWS_POLICY="$ROWS_POLICY| $n | $oa | $aa | $(ratio "$oa" "$aa") | $ol ($(kept "$ol" "$oa")) | $al ($(kept "$al" "$aa")) | $(ratio "$ol" "$al") |
"
    fi
    if [ $n = resnet18 ] && [ -x "$B/darknet_peer" ]; then
        dt=$((timed < 2 ? timed : 2)) dw=$((WARMUP < 1 ? WARMUP : 1))
        line=$("$B/darknet_peer" "$cfg" "$batch" $dt $dw 2> /dev/null || echo "failed")
        say "alone 1 darknet: $line"
        d=$(echo "$line" | field "images/s")
        DARKNET_LINE="Debian's darknet (libdarknet, bench/darknet_peer.c) on resnet18, batch $batch,
median of $dt timed batches after $dw warm-up: ${d:--} images/s; this framework $(ratio "$oa" "$d") of it."
    fi
done

TABLE="$OUT/bench.md.tmp" # renamed to bench.md when complete
{
    echo "# Training throughput: this framework and PyTorch, alone and under load"
    echo
    head -3 "$LOG" | sed "s/^# //; s/; expected duration.*//"
    echo
    echo "Random 32x32x3 inputs (28x28x1 for resnet-small), SGD with momentum, one"
    echo "process at a time on all $THREADS cores. Each figure is the median over"
    echo "$REPEATS run(s) of each kind, alternated (ours, PyTorch, ours, PyTorch, ...) so"
    echo "that the machine's drift falls on both; each run reports the median of its"
    echo "timed batches. PyTorch builds the same network from the same cfg"
    echo "(bench/torch_peer.py: nn.Conv2d, nn.BatchNorm2d, nn.MultiheadAttention,"
    echo "nn.LayerNorm, ...) and the parameter counts must agree, or the network is"
    echo "not compared. It runs with libgomp's default waiting policy (spinning) and"
    echo "glibc settings that keep freed memory mapped (faster for it); this"
    echo "framework with its default, OMP_WAIT_POLICY=passive."
    echo
    echo "GFLOP/s is effective: our FLOP count of a training step, 3x the forward"
    echo "FLOPs of direct convolution (forward, input gradients, weight gradients),"
    echo "per second. oneDNN runs 3x3 stride-1 layers here with Winograd's"
    echo "F(4x4,3x3), which needs fewer multiplications, so the figure can pass the"
    echo "SGEMM ceiling (${CEIL:-?} GFLOP/s, OpenBLAS${CEIL_NOTE}). Peak RSS is the process's"
    echo "ru_maxrss (getrusage): PyTorch's includes the interpreter and libtorch."
    echo
    echo "## Alone"
    echo
    echo "| network | batch | parameters | this framework img/s | PyTorch img/s | ours / PyTorch | GFLOP/s ours | GFLOP/s PyTorch | peak RSS ours MiB | peak RSS PyTorch MiB |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    printf "%s" "$ROWS_ALONE"
    if [ -n "$DARKNET_LINE" ]; then echo; echo "$DARKNET_LINE"; fi
    echo
    echo "## Beside one busy process"
    echo
    echo "The same runs with one single-threaded busy loop on the machine (started"
    echo "before each run and stopped after it); \"kept\" is the share of the"
    echo "images/s alone."
    echo
    echo "| network | this framework img/s | kept | PyTorch img/s | kept | ours / PyTorch |"
    echo "|---|---|---|---|---|---|"
    printf "%s" "$ROWS_LOAD"
    echo
    echo "## This framework's OpenMP waiting policy"
    echo
    if [ -n "$ROWS_POLICY" ]; then
        echo "passive is the default (darknet/src/wait_policy.h); active is libgomp's"
        echo "spinning (OMP_WAIT_POLICY=active), run in the same rounds."
        echo
        echo "| network | passive img/s alone | active img/s alone | passive / active | passive loaded (kept) | active loaded (kept) | passive / active loaded |"
        echo "|---|---|---|---|---|---|---|"
        printf "%s" "$ROWS_POLICY"
    elif [ -n "$USER_POLICY" ]; then
        echo "Not compared: OMP_WAIT_POLICY or GOMP_SPINCOUNT was set for the whole bench."
    else
        echo "Not compared: it runs on $(echo $POLICY_NETS | sed 's/ / and /'), and neither was among the networks."
    fi
    echo
    echo "Wall time of the bench: $(minutes $(($(date +%s) - T0))) (estimated $(minutes $EST))."
} > "$TABLE"
mv "$TABLE" "$OUT/bench.md"
say ""
cat "$OUT/bench.md" | tee -a "$LOG" > /dev/null
cat "$OUT/bench.md"
echo "(full log: $LOG)"
