#!/bin/sh
# Installs the Debian packages the build, tests and demo need, only those
# missing. Needs root (or sudo) when something is missing. Extra package
# names may be given as arguments (make bench adds python3-torch; make deps
# MPI=1 adds libopenmpi-dev openmpi-bin).
set -e
PKGS="build-essential pkg-config libopenblas-dev libdnnl-dev libcmocka-dev zlib1g-dev \
gnuplot-nox dataset-fashion-mnist darknet libopencv-dev strace $*"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" \
        || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing
