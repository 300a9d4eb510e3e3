#!/bin/sh
# Installs the Debian packages Tessera needs to build, run and test images.
# Idempotent: when everything is present it only runs dpkg-query (fast).
set -eu

PACKAGES="
make
g++
g++-riscv64-linux-gnu
binutils-riscv64-linux-gnu
qemu-system-misc
opensbi
qemu-utils
python3
python3-kconfiglib
python3-jinja2
python3-pytest
python3-pytest-timeout
python3-pytest-xdist
python3-pexpect
gdb-multiarch
"

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = "installed" ] || missing="$missing $p"
done

[ -z "$missing" ] && exit 0

echo "  DEPS    installing:$missing"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "error: missing packages:$missing" >&2
        echo "       run as root: apt-get install$missing" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
# A stale package index makes apt fail with 404s; refresh once, then install.
$SUDO apt-get update -qq >/dev/null || true
# shellcheck disable=SC2086
if ! $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null; then
    echo "error: could not install:$missing" >&2
    echo "       try by hand: apt-get install$missing" >&2
    exit 1
fi
