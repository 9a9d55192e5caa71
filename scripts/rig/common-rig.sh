# Shared settings of the real-kernel rig (scripts/rig/).  Source it after
# scripts/common.sh; do not run it.
# shellcheck shell=bash

RIG=$BUILD/rig
RIG_TESTS=$TOP/tests/rig
# L0: the series' emulator, built by 'make' (never rebuilt here)
RIG_QEMU=${RIG_QEMU:-$OBJ/qemu-system-aarch64}
RIG_EFI=${RIG_EFI:-/usr/share/qemu-efi-aarch64/QEMU_EFI.fd}

# L1's kernel source: Debian's linux-source-7.2 (sid, architecture all).
LINUX_SRC_PIN="linux-source-7.2=7.2.13-1"
LINUX_SRC_SHA256=30a8c5fc63f9028a62e6d7b3f7f43bee67425dbce2a05fceba83f9b87c92083d
LINUX_SRC_PARENT=$BUILD/linux-src
LINUX_SRC_TREE=$LINUX_SRC_PARENT/linux-source-7.2
LINUX_OBJ=$RIG/linux-obj

# L1's busybox (bookworm), the same pin as tests/guest/artifacts.list.
BUSYBOX_PIN="busybox-static:arm64=1:1.35.0-4+deb12u1+b1"
BUSYBOX_SHA256=732c9135564fc71337e0e05fb4da4d11e6c28c1834bce3e405e575afef2a52f5

CROSS=aarch64-linux-gnu-

# need_tool COMMAND PACKAGE: die naming the package when COMMAND is missing.
need_tool() {
    command -v "$1" >/dev/null 2>&1 ||
        die "$1 not found: install the Debian package $2 (apt-get install $2)"
}

# The extracted .deb of a pinned package, once: unpack_pinned DEBS NAME SUM DIR
unpack_pinned() {
    local deb
    deb=$(find_pinned "$1" "$2" "$3") || die "no .deb of $2 with sha256 $3 in $1"
    if [ ! -f "$4/.from" ] || [ "$(cat "$4/.from")" != "$3" ]; then
        rm -rf "$4"
        mkdir -p "$4"
        dpkg-deb -x "$deb" "$4" || die "dpkg-deb -x $deb failed"
        echo "$3" > "$4/.from"
    fi
}
