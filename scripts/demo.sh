#!/bin/bash
# make demo: train the small ResNet (cfg/resnet-small.cfg) on Fashion-MNIST
# (Debian's dataset-fashion-mnist) once per learning-rate schedule, same seed
# and epochs, validate on the test set, and write results/demo/:
#   <run>/resnet-small.log.csv      per-epoch log of each run
#   lr.png, lr.csv                  the five schedules, per batch
#   loss.png                        train loss per epoch
#   summary.md                      final train loss, test top-1, wall time
#                                   and images/s per run, total wall time
# Runs: constant, steps, cosine_restart, log_restart (eq. 4) and
# log_reference (log_restart with log_form=reference, the author's code);
# the warm-restart overlays hold the paper's Figure 1 values (cfg/demo/).
# DEMO_EPOCHS (default 4) scales the run; DEMO_EVERY the progress lines;
# DEMO_OUT the output folder.
set -eo pipefail
EPOCHS=${DEMO_EPOCHS:-4}
EVERY=${DEMO_EVERY:-50}
DARKNET=${DARKNET:-bin/darknet}
DATA=cfg/fashion-mnist.data
CFG=cfg/resnet-small.cfg
OUT=${DEMO_OUT:-results/demo}
POLICIES="constant steps cosine_restart log_restart log_reference"
DEMO_START=$(date +%s)
TRAIN_SIZE=60000
BATCH=$(sed -n 's/^batch *= *//p' $CFG | head -1)
BPE=$((TRAIN_SIZE / BATCH))
TOTAL=$((BPE * EPOCHS))
STEPS="$((TOTAL / 2)),$((TOTAL * 3 / 4))"

mkdir -p "$OUT"
echo "demo: $CFG on Fashion-MNIST, $EPOCHS epochs x $BPE batches of $BATCH, policies: $POLICIES"
for p in $POLICIES; do
    dir="$OUT/$p"
    rm -rf "$dir"
    mkdir -p "$dir"
    echo
    echo "=== $p"
    # the run's overlay: the policy's keys (+ steps for policy=steps)
    cp cfg/demo/$p.cfg "$dir/overlay.cfg"
    [ $p = steps ] && echo "steps=$STEPS" >> "$dir/overlay.cfg"
    start=$(date +%s)
    $DARKNET classifier train $DATA $CFG -overlay "$dir/overlay.cfg" \
        -set epochs=$EPOCHS -backup "$dir" -every $EVERY 2>&1 | tee "$dir/train.log"
    end=$(date +%s)
    echo $((end - start)) > "$dir/seconds"
done

# the schedules, per batch, exactly as trained
set --
for p in $POLICIES; do
    sed "s/^\[net\]/[net]\nbatch=$BATCH\nsubdivisions=1/" "$OUT/$p/overlay.cfg" > "$OUT/$p/$p.cfg"
    set -- "$@" "$OUT/$p/$p.cfg"
done
$DARKNET lr "$@" -epochs $EPOCHS -train-size $TRAIN_SIZE \
    -csv "$OUT/lr.csv" -png "$OUT/lr.png" > /dev/null

# train loss per epoch (the paper's Figure 2 style)
plot=""
for p in $POLICIES; do
    plot="$plot${plot:+, }'$OUT/$p/resnet-small.log.csv' using 1:5 with linespoints title '$p'"
done
gnuplot <<GP
set terminal pngcairo size 900,560 noenhanced
set output '$OUT/loss.png.tmp'
set datafile separator ','
set key top right
set title 'Fashion-MNIST, small ResNet: train loss per epoch'
set xlabel 'epoch'
set ylabel 'mean train loss'
set grid
plot $plot
GP
mv "$OUT/loss.png.tmp" "$OUT/loss.png"

TOTAL_SECONDS=$(( $(date +%s) - DEMO_START ))

# summary
{
    echo "# Demo: small ResNet on Fashion-MNIST, $EPOCHS epochs"
    echo
    echo "Same cfg, seed and data order for every run; only the [net] schedule differs"
    echo "(overlays in cfg/demo/). Test top-1 is measured on the 10000 test images."
    echo
    echo "| run | policy | final train loss | test top-1 | wall time (s) | train images/s |"
    echo "|---|---|---|---|---|---|"
    for p in $POLICIES; do
        last=$(tail -1 "$OUT/$p/resnet-small.log.csv")
        loss=$(echo "$last" | cut -d, -f5)
        top1=$(echo "$last" | cut -d, -f7)
        policy=$(sed -n 's/^policy *= *//p' "$OUT/$p/overlay.cfg")
        form=$(sed -n 's/^log_form *= *//p' "$OUT/$p/overlay.cfg")
        secs=$(cat "$OUT/$p/seconds")
        # images trained over the run's wall time (validation and start-up
        # included), from the per-epoch log
        ips=$(awk -F, -v s="$secs" 'NR > 1 { n += $3 } END { printf "%.0f", n / s }' \
              "$OUT/$p/resnet-small.log.csv")
        echo "| $p | $policy${form:+ ($form)} | $loss | $top1 | $secs | $ips |"
    done
    echo
    echo "Total wall time: $TOTAL_SECONDS s ($((TOTAL_SECONDS / 60)) min $((TOTAL_SECONDS % 60)) s) for all runs."
    echo
    echo "The warm-restart runs use the paper's Figure 1 schedule values (warm-up"
    echo "of 1 epoch from 0.0001, initial decay 1 epoch, restart interval 1 epoch,"
    echo "multiplier 1.5, restart lr 0.05, min decay lr 0.001; peak 0.1), with no"
    echo "cap on the rate: cosine_restart restarts at epochs 2 and 3; eq. 4"
    echo "(log_restart) holds each restart's spike for one epoch and never falls"
    echo "to min_lr; log_reference is the author's code, once per epoch."
    echo
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(date -u +%Y-%m-%d)."
} > "$OUT/summary.md"
echo
cat "$OUT/summary.md"
echo "demo: done in $TOTAL_SECONDS s"
