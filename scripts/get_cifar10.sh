#!/bin/sh
# Downloads CIFAR-10 (binary version) into data/cifar-10-batches-bin/ under
# the repository root, where cfg/cifar10.data looks for it:
#   data_batch_1.bin ... data_batch_5.bin, test_batch.bin, batches.meta.txt
# The archive's MD5 is checked before anything is extracted. Safe to run
# again: it does nothing when the files are already there.
set -eu

URL=https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz
MD5=c32a1d4ab5d03f1284b67883e8d87530
RECORD_FILE_SIZE=30730000 # 10000 records of 3073 bytes

cd "$(dirname "$0")/.."
DEST=data
DIR=$DEST/cifar-10-batches-bin
TAR=$DEST/cifar-10-binary.tar.gz

have_all_files() {
    for f in data_batch_1 data_batch_2 data_batch_3 data_batch_4 \
             data_batch_5 test_batch; do
        [ -f "$DIR/$f.bin" ] || return 1
        [ "$(wc -c < "$DIR/$f.bin")" -eq "$RECORD_FILE_SIZE" ] || return 1
    done
    [ -f "$DIR/batches.meta.txt" ]
}

md5_ok() {
    [ "$(md5sum "$1" | cut -d' ' -f1)" = "$MD5" ]
}

if have_all_files; then
    echo "get_cifar10: $DIR already complete"
    exit 0
fi

mkdir -p "$DEST"
if [ -f "$TAR" ] && md5_ok "$TAR"; then
    echo "get_cifar10: using the archive already in $TAR"
else
    echo "get_cifar10: downloading $URL (163 MB)"
    rm -f "$TAR.part"
    if command -v curl > /dev/null 2>&1; then
        fetch="curl -fL --retry 3 -o"
    elif command -v wget > /dev/null 2>&1; then
        fetch="wget -O"
    else
        echo "get_cifar10: error: neither curl nor wget is installed" >&2
        exit 1
    fi
    if ! $fetch "$TAR.part" "$URL"; then
        echo "get_cifar10: error: download failed (no network?)" >&2
        rm -f "$TAR.part"
        exit 1
    fi
    if ! md5_ok "$TAR.part"; then
        echo "get_cifar10: error: MD5 of the download is" \
             "$(md5sum "$TAR.part" | cut -d' ' -f1), expected $MD5;" \
             "removed it" >&2
        rm -f "$TAR.part"
        exit 1
    fi
    mv "$TAR.part" "$TAR"
fi

echo "get_cifar10: extracting into $DEST/"
tar -xzf "$TAR" -C "$DEST"
if ! have_all_files; then
    echo "get_cifar10: error: $DIR is incomplete after extraction" >&2
    exit 1
fi
rm -f "$TAR"
echo "get_cifar10: done: $DIR"
