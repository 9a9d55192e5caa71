#!/usr/bin/env bash
# Download the pinned guest packages (tests/guest/artifacts.list) and unpack
# what the real-guest tests use into build/guest:
#   build/guest/linux-6.12/vmlinuz   Debian's 6.12 kernel (trixie)
#   build/guest/linux-6.12/config    its configuration
#   build/guest/linux-7.2/vmlinuz    Debian's 7.2 kernel (sid)
#   build/guest/pkg/linux-7.2-modules  its modules package, unpacked
#   build/guest/busybox              a static arm64 busybox
# The .debs are cached in $GUEST_CACHE (default: guest/ of
# NMSI_DOWNLOAD_CACHE, else build/guest/debs), so a second run downloads
# nothing.
set -euo pipefail
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/apt-private.sh"

LIST=$TOP/tests/guest/artifacts.list
DEBS=${GUEST_CACHE:-$(downloads_dir guest "$GUESTDIR/debs")}

pins=()
while read -r spec sum; do
    case $spec in ''|'#'*) continue ;; esac
    pins+=("$spec" "$sum")
done < "$LIST"
apt_private_download "$DEBS" "${pins[@]}"

unpack() {
    # unpack NAME SHA256 DIR: extract the pinned .deb of NAME into DIR once.
    local deb
    deb=$(find_pinned "$DEBS" "$1" "$2") ||
        die "no .deb of $1 with sha256 $2 in $DEBS"
    if [ ! -f "$3/.from" ] || [ "$(cat "$3/.from")" != "$2" ]; then
        rm -rf "$3"
        mkdir -p "$3"
        dpkg-deb -x "$deb" "$3"
        echo "$2" > "$3/.from"
    fi
}

set -- "${pins[@]}"
while [ $# -ge 2 ]; do
    name=${1%%=*} sum=$2
    shift 2
    case $name in
    linux-image-6.12.*)
        unpack "$name" "$sum" "$GUESTDIR/pkg/linux-6.12"
        mkdir -p "$GUESTDIR/linux-6.12"
        ln -sf "$(ls "$GUESTDIR"/pkg/linux-6.12/boot/vmlinuz-*)" "$GUESTDIR/linux-6.12/vmlinuz"
        ln -sf "$(ls "$GUESTDIR"/pkg/linux-6.12/boot/config-*)" "$GUESTDIR/linux-6.12/config"
        ;;
    linux-binary-7.2.*)
        unpack "$name" "$sum" "$GUESTDIR/pkg/linux-7.2"
        mkdir -p "$GUESTDIR/linux-7.2"
        ln -sf "$(ls "$GUESTDIR"/pkg/linux-7.2/usr/lib/modules/*/vmlinuz)" "$GUESTDIR/linux-7.2/vmlinuz"
        ;;
    linux-modules-7.2.*)
        # virtio-rng and friends are modules in Debian's kernels
        unpack "$name" "$sum" "$GUESTDIR/pkg/linux-7.2-modules"
        ;;
    busybox-static:*)
        unpack "$name" "$sum" "$GUESTDIR/pkg/busybox"
        ln -sf "$GUESTDIR/pkg/busybox/bin/busybox" "$GUESTDIR/busybox"
        ;;
    *)
        die "$LIST: no rule to unpack $name"
        ;;
    esac
done
