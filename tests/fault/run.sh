#!/bin/sh
# tests/fault/run.sh - training survives faults (make test; about a minute).
#
#   random_kills         SIGKILL at FAULT_KILLS (20) random moments of a run;
#                        each time the checkpoint on disk must load and the
#                        resumed run end with the weights (bit for bit) and
#                        the CSV rows of an uninterrupted run
#   kill_at_every_fsync  the same with the kill injected at each fsync of a
#                        run in turn (strace -e inject=fsync:signal=SIGKILL),
#                        i.e. between every pair of checkpoint writes;
#                        skipped without strace
#   full_disk            the backup directory on a 64 KiB tmpfs: a clear
#                        error, and the previous checkpoint still loads and
#                        resumes; root only (mount), else skipped
#   read_only_backup     training refuses before its first batch
#   sigint               SIGINT stops after a batch with status 130 and a
#                        _last.weights that resumes to the same end
#
# Usage: tests/fault/run.sh [DARKNET]  (default bin/darknet). Prints
# cmocka-style lines, so tests/run_all.sh counts its cases; exits non-zero
# when one fails.
set -u
DARKNET=${1:-${DARKNET:-bin/darknet}}
KILLS=${FAULT_KILLS:-20}
case $DARKNET in /*) ;; *) DARKNET=$(pwd)/$DARKNET ;; esac
[ -x "$DARKNET" ] || { echo "fault tests: $DARKNET is not built"; exit 1; }

work=$(mktemp -d /tmp/dnfault.XXXXXX)
mounts=""
cleanup() {
    for m in $mounts; do umount "$m" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
cd "$work" || exit 1

passed=0 failed=0 skipped=0 failures=""
ok() { echo "[       OK ] $1"; passed=$((passed + 1)); }
bad() {
    echo "[  FAILED  ] $1: $2"
    failed=$((failed + 1))
    failures="$failures $1"
}
skip() { echo "[  SKIPPED ] $1: $2"; skipped=$((skipped + 1)); }

# ------------------------------------------------------------------ data
# CIFAR-10 binary records: a label byte (record number mod 10), 3072 bytes.
records() {
    : > "$1"
    i=0
    while [ "$i" -lt "$2" ]; do
        printf "\\$(printf %o $((i % 10)))" >> "$1"
        head -c 3072 /dev/urandom >> "$1"
        i=$((i + 1))
    done
}
records train.bin 96
records valid.bin 16
printf 'classes=10\ntrain=train.bin\nvalid=valid.bin\nbackup=unused\n' > f.data
# 6 updates an epoch, 12 epochs; checkpoints of 21 KiB each
cat > f.cfg <<'CFG'
[net]
batch=16
height=32
width=32
channels=3
learning_rate=0.02
momentum=0.9
decay=0.0005
policy=cosine_restart
restart_interval=1
min_lr=0.001
epochs=12
seed=3
[convolutional]
filters=8
size=3
stride=2
pad=1
batch_normalize=1
activation=relu
[maxpool]
size=2
stride=2
[connected]
output=10
activation=linear
[softmax]
CFG

# train DIR [WEIGHTS] [extra options]: one run into DIR, output in DIR.out
train() {
    dir=$1
    shift
    mkdir -p "$dir"
    "$DARKNET" classifier train f.data f.cfg "$@" -backup "$dir" \
        >> "$dir.out" 2>&1
}

# resume DIR: from DIR/f_last.weights when there is one, to the end
resume() {
    if [ -f "$1/f_last.weights" ]; then
        train "$1" "$1/f_last.weights"
    else
        train "$1"
    fi
}

# the CSV without its seconds column
rows() { cut -d, -f1-8 "$1/f.log.csv"; }

# same_end DIR: the final weights and CSV rows of the uninterrupted run
same_end() {
    cmp -s ref/f_final.weights "$1/f_final.weights" || {
        echo "final weights differ from the uninterrupted run"
        return 1
    }
    rows ref > ref.rows
    rows "$1" > "$1.rows"
    cmp -s ref.rows "$1.rows" || {
        echo "CSV rows differ from the uninterrupted run"
        diff ref.rows "$1.rows" | head -5
        return 1
    }
}

train ref || { echo "fault tests: the reference run failed:"; cat ref.out; exit 1; }
START=$(date +%s)

# --------------------------------------------------------- random_kills
# a run takes about a third of a second here: kills land in the first 0.4 s
test_random_kills() {
    k=1
    while [ "$k" -le "$KILLS" ]; do
        ms=$(( $(od -An -N2 -tu2 /dev/urandom) % 400 + 5 ))
        dir=kill$k
        mkdir -p $dir
        "$DARKNET" classifier train f.data f.cfg -backup $dir > $dir.out 2>&1 &
        pid=$!
        sleep "$(printf '0.%03d' $ms)"
        kill -KILL $pid 2>/dev/null
        wait $pid 2>/dev/null
        if ! resume $dir; then
            bad random_kills "after a SIGKILL at ${ms} ms, the resume failed: $(tail -1 $dir.out)"
            return
        fi
        why=$(same_end $dir) || {
            bad random_kills "after a SIGKILL at ${ms} ms: $why"
            return
        }
        k=$((k + 1))
    done
    ok "random_kills ($KILLS kills)"
}

# --------------------------------------------------- kill_at_every_fsync
test_kill_at_every_fsync() {
    if ! command -v strace > /dev/null 2>&1; then
        skip kill_at_every_fsync "strace is not installed"
        return
    fi
    # fewer epochs: every fsync of the run is a case
    sed 's/^epochs=12/epochs=3/' f.cfg > s.cfg
    mkdir -p sref
    "$DARKNET" classifier train f.data s.cfg -backup sref > sref.out 2>&1
    mkdir -p count
    strace -f -qq -e trace=fsync -o fsyncs.txt \
        "$DARKNET" classifier train f.data s.cfg -backup count > count.out 2>&1
    n=$(grep -c 'fsync(' fsyncs.txt)
    if [ "$n" -lt 3 ]; then
        bad kill_at_every_fsync "strace counted only $n fsyncs"
        return
    fi
    i=1
    while [ "$i" -le "$n" ]; do
        dir=fsync$i
        mkdir -p $dir
        strace -f -qq -o /dev/null -e trace=fsync \
            -e inject=fsync:signal=SIGKILL:when=$i \
            "$DARKNET" classifier train f.data s.cfg -backup $dir > $dir.out 2>&1
        if [ -f $dir/s_last.weights ]; then
            "$DARKNET" classifier train f.data s.cfg $dir/s_last.weights \
                -backup $dir >> $dir.out 2>&1
        else
            "$DARKNET" classifier train f.data s.cfg -backup $dir >> $dir.out 2>&1
        fi || {
            bad kill_at_every_fsync "killed at fsync $i of $n, the resume failed: $(tail -1 $dir.out)"
            return
        }
        cmp -s sref/s_final.weights $dir/s_final.weights &&
            [ "$(cut -d, -f1-8 sref/s.log.csv)" = "$(cut -d, -f1-8 $dir/s.log.csv)" ] || {
            bad kill_at_every_fsync "killed at fsync $i of $n, the resumed run ends elsewhere"
            return
        }
        i=$((i + 1))
    done
    ok "kill_at_every_fsync ($n fsyncs)"
}

# ------------------------------------------------------------ full_disk
test_full_disk() {
    if [ "$(id -u)" -ne 0 ]; then
        skip full_disk "needs root to mount a 64 KiB tmpfs"
        return
    fi
    mkdir -p full
    if ! mount -t tmpfs -o size=64k tmpfs full 2>/dev/null; then
        skip full_disk "mount -t tmpfs failed (no CAP_SYS_ADMIN here)"
        return
    fi
    mounts="$mounts $work/full"
    # one checkpoint (weights and state, 42 KiB) fits, two do not
    if "$DARKNET" classifier train f.data f.cfg -backup full > full.out 2>&1; then
        bad full_disk "training succeeded on a full disk"
        return
    fi
    grep -q "No space left on device" full.out || {
        bad full_disk "no clear error: $(tail -1 full.out)"
        return
    }
    grep -q "the last good checkpoint is full/f_last.weights" full.out || {
        bad full_disk "the error does not name the checkpoint: $(tail -1 full.out)"
        return
    }
    # the previous checkpoint loads, and resumes elsewhere to the same end
    mkdir -p fullresume
    cp full/f.log.csv fullresume/
    "$DARKNET" classifier train f.data f.cfg full/f_last.weights \
        -backup fullresume > fullresume.out 2>&1 || {
        bad full_disk "the previous checkpoint does not resume: $(tail -1 fullresume.out)"
        return
    }
    why=$(same_end fullresume) || { bad full_disk "$why"; return; }
    ok full_disk
}

# ----------------------------------------------------- read_only_backup
test_read_only_backup() {
    mkdir -p ro
    if [ "$(id -u)" -eq 0 ]; then
        if ! mount -t tmpfs -o ro,size=64k tmpfs ro 2>/dev/null; then
            skip read_only_backup "mount -t tmpfs -o ro failed (root ignores permissions)"
            return
        fi
        mounts="$mounts $work/ro"
    else
        chmod 555 ro
    fi
    if "$DARKNET" classifier train f.data f.cfg -backup ro > ro.out 2>&1; then
        bad read_only_backup "training succeeded into a read-only directory"
        return
    fi
    if grep -qE '^[0-9]+, [0-9.]+: ' ro.out; then
        bad read_only_backup "it trained before refusing"
        return
    fi
    grep -qE "ro/f.log.csv(.tmp)?: cannot write: (Read-only file system|Permission denied)" ro.out || {
        bad read_only_backup "no clear error: $(tail -1 ro.out)"
        return
    }
    ok read_only_backup
}

# ---------------------------------------------------------------- sigint
test_sigint() {
    sed 's/^epochs=12/epochs=200/' f.cfg > long.cfg
    mkdir -p int
    "$DARKNET" classifier train f.data long.cfg -backup int > int.out 2>&1 &
    pid=$!
    t=0
    while ! grep -qE '^[0-9]+, [0-9.]+: ' int.out && [ $t -lt 500 ]; do
        sleep 0.01
        t=$((t + 1))
    done
    kill -INT $pid
    wait $pid
    status=$?
    [ $status -eq 130 ] || { bad sigint "exit status $status, not 130"; return; }
    grep -q "^interrupted at batch" int.out || { bad sigint "no message"; return; }
    [ -f int/long_last.weights ] || { bad sigint "no long_last.weights"; return; }
    # resumed to the end of the 12 epochs, it ends where the reference does
    mkdir -p intresume
    sed 's/^epochs=200/epochs=12/' long.cfg > f2.cfg
    "$DARKNET" classifier train f.data f2.cfg int/long_last.weights \
        -backup intresume > intresume.out 2>&1 || {
        bad sigint "the checkpoint does not resume: $(tail -1 intresume.out)"
        return
    }
    cmp -s ref/f_final.weights intresume/f2_final.weights || {
        bad sigint "the resumed run ends elsewhere"
        return
    }
    ok sigint
}

echo "[==========] Running 5 test(s)."
test_random_kills
test_kill_at_every_fsync
test_full_disk
test_read_only_backup
test_sigint
echo "[==========] 5 test(s) run ($(( $(date +%s) - START )) s)."
echo "[  PASSED  ] $passed test(s)."
[ $skipped -gt 0 ] && echo "[  SKIPPED ] $skipped test(s)."
if [ $failed -gt 0 ]; then
    echo "[  FAILED  ] $failed test(s), listed below:"
    for f in $failures; do echo "[  FAILED  ] $f"; done
    exit 1
fi
exit 0
