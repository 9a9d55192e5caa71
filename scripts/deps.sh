#!/usr/bin/env bash
# make deps: install every Debian package the project needs to build and
# test.  Idempotent: prints nothing and changes nothing when all is present.
#  - from the machine's own suite (bookworm): compilers, libraries, tools,
#    firmware (option ROMs, AAVMF) for the tests;
#  - from trixie, through the private apt configuration (the machine's
#    sources stay untouched): meson >= 1.5 (bookworm's 1.0.1 is too old for
#    QEMU 10.2 and the +ds tarball has no bundled meson wheel) and
#    python3-pycotap; both are architecture-independent and install on
#    Debian 12 against its python3.
set -euo pipefail
. "$(dirname "$0")/common.sh"

PACKAGES=(
    # build
    gcc make ninja-build pkgconf python3 python3-venv python3-setuptools
    libglib2.0-dev libfdt-dev zlib1g-dev ccache git bzip2 xz-utils
    device-tree-compiler perl
    # tests/scripts: the project's own shell scripts
    shellcheck
    # this script's own tools: groupadd and useradd (below), awk
    passwd mawk
    # fetching Debian packages (source and binary) with apt
    apt dpkg debian-archive-keyring ca-certificates
    # firmware for tests: option ROMs and the AAVMF/QEMU_EFI images
    ipxe-qemu qemu-efi-aarch64
    # the real-kernel rig (scripts/rig/): cross toolchain, L1's kernel
    # build, initramfs
    gcc-aarch64-linux-gnu flex bison libelf-dev bc libssl-dev rsync cpio file
    # libvirt drives the built emulator in tests/guest/test-libvirt.py,
    # through its embedded QEMU driver (no daemon)
    libvirt-daemon-driver-qemu python3-libvirt
)

# libvirt's QEMU driver names the account "libvirt-qemu" (group
# "libvirt-qemu") before it reads qemu.conf, and fails without it; Debian's
# libvirt-daemon-system creates it with the daemon's services, which the
# tests do not need.  Create it the same way, once.
ensure_libvirt_account() {
    getent group libvirt-qemu >/dev/null ||
        as_root groupadd --system libvirt-qemu
    getent passwd libvirt-qemu >/dev/null ||
        as_root useradd --system --no-create-home --home-dir /var/lib/libvirt \
            --shell /usr/sbin/nologin -g libvirt-qemu libvirt-qemu
}

# Pinned trixie packages: name=version sha256.
TRIXIE=(
    "meson=1.7.0-1" e92d04e60e784336883d537755d09b7dcb856809fa318a0931df3898e84ded95
    "python3-pycotap=1.3.1-2" 7e8dbf3ac06434275a461d0de79792e2b80126febc53866c89027adde5192ac9
)

# The installed version of a package, or nothing.  Always succeeds:
# dpkg-query fails for a package it has never seen, and under pipefail that
# would end the script at the first 'have=$(...)' without a word.
installed_version() {
    { dpkg-query -W -f '${db:Status-Abbrev} ${Version}\n' "$1" 2>/dev/null || true; } |
        awk '$1 == "ii" { print $2 }'
}

missing=()
for p in "${PACKAGES[@]}"; do
    [ -n "$(installed_version "$p")" ] || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    note "installing ${missing[*]}"
    as_root apt-get update -qq >/dev/null ||
        die "apt-get update failed (is the Debian archive reachable?)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null ||
        die "apt-get install ${missing[*]} failed"
fi

# The trixie packages are installed (or upgraded) only when one is older.
stale=()
set -- "${TRIXIE[@]}"
while [ $# -ge 2 ]; do
    name=${1%%=*} ver=${1#*=}
    shift 2
    have=$(installed_version "$name")
    if [ -z "$have" ] || dpkg --compare-versions "$have" lt "$ver"; then
        stale+=("$name")
    fi
done
if [ "${#stale[@]}" -gt 0 ]; then
    . "$(dirname "$0")/apt-private.sh"
    debs=$(downloads_dir debs "$BUILD/debs")
    apt_private_download "$debs" "${TRIXIE[@]}"
    files=()
    set -- "${TRIXIE[@]}"
    while [ $# -ge 2 ]; do
        f=$(find_pinned "$debs" "${1%%=*}" "$2") ||
            die "no .deb of ${1%%=*} with sha256 $2 in $debs"
        files+=("$f")
        shift 2
    done
    note "installing from trixie: ${files[*]##*/}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${files[@]}" >/dev/null ||
        die "installing ${files[*]} failed"
fi

meson_version=$(meson --version 2>/dev/null || echo 0)
dpkg --compare-versions "$meson_version" ge 1.5 ||
    die "meson $meson_version is older than QEMU 10.2 needs (1.5)"
ensure_libvirt_account
