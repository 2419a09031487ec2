#!/bin/sh
# The Debian packages a GPU build needs besides CUDA (OpenBLAS, cmocka,
# zlib, make), for a machine that has CUDA but neither these libraries nor a
# way to install them:
#   tests/gpu/device-deps.sh fetch            here: apt-get download them
#                                             into .deb/ (git ignores it)
#   tests/gpu/device-deps.sh unpack ROOT      there: unpack .deb/*.deb into
#                                             ROOT (not /: nothing of the
#                                             machine is replaced)
# then build with `make DEPS_ROOT=ROOT ...` and run with ROOT's library
# folders on LD_LIBRARY_PATH (tests/gpu/device-check.sh does both).
set -e
cd "$(dirname "$0")/../.."
PACKAGES="libopenblas0-pthread libopenblas-pthread-dev libgfortran5 \
libcmocka0 libcmocka-dev zlib1g zlib1g-dev make"

case "$1" in
fetch)
    mkdir -p .deb
    rm -f .deb/*.deb
    (cd .deb && apt-get download $PACKAGES)
    ls -l .deb
    ;;
unpack)
    root=${2:?usage: device-deps.sh unpack ROOT}
    ls .deb/*.deb > /dev/null 2>&1 || {
        echo "device-deps.sh: no .deb/*.deb here (run fetch where apt works)" >&2
        exit 1
    }
    mkdir -p "$root"
    for deb in .deb/*.deb; do
        if command -v dpkg-deb > /dev/null; then
            dpkg-deb -x "$deb" "$root"
        else # a .deb is an ar archive holding data.tar.*
            python3 - "$deb" "$root" <<'EOF'
import io, sys, tarfile
data = open(sys.argv[1], "rb").read()
pos = 8  # "!<arch>\n", then 60-byte headers
while pos < len(data):
    name = data[pos:pos + 16].decode().strip().rstrip("/")
    size = int(data[pos + 48:pos + 58].decode().strip())
    body = data[pos + 60:pos + 60 + size]
    if name.startswith("data.tar"):
        tarfile.open(fileobj=io.BytesIO(body)).extractall(sys.argv[2])
    pos += 60 + size + (size & 1)
EOF
        fi
    done
    # absolute links (libz.so -> /lib/...) point into ROOT instead
    find "$root" -type l | while read -r link; do
        target=$(readlink "$link")
        case "$target" in
        /*) [ -e "$root$target" ] && ln -sf "$root$target" "$link" ;;
        esac
    done
    echo "unpacked $(ls .deb/*.deb | wc -l) packages into $root"
    ;;
*)
    echo "usage: tests/gpu/device-deps.sh fetch | unpack ROOT" >&2
    exit 2
    ;;
esac
