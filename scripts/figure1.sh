#!/bin/sh
# Figure 1 of Naveen, "Cyclical Log Annealing as a Learning Rate Scheduler"
# (2024): no schedule, step decay, cosine annealing and cyclical log
# annealing with warm restarts (eq. 4, and the author's published code)
# over 10 epochs of CIFAR-10 (batch 128, 390 batches per epoch). Writes results/figure1.csv and results/figure1.png.
# Run through `make figure1` (BIN names the directory holding darknet).
set -e
cd "$(dirname "$0")/.."
DARKNET="${DARKNET:-${BIN:-bin}/darknet}"
mkdir -p results
"$DARKNET" lr cfg/schedules/none.cfg cfg/schedules/step.cfg \
    cfg/schedules/cosine.cfg cfg/schedules/log.cfg cfg/schedules/log-reference.cfg \
    -epochs 10 -train-size 50000 -strict \
    -csv results/figure1.csv -png results/figure1.png
