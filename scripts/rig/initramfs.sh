#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# L1's initramfs for the real-kernel rig: static arm64 busybox (pinned
# busybox-static:arm64, unpacked, never installed) and tests/rig/l1-init as
# /init.  Usage: initramfs.sh [-o OUT] [-a DIR]...
#   -o OUT  the gzip'd cpio to write (default build/rig/l1-initramfs.gz)
#   -a DIR  copy DIR's content into the root as well (repeatable), e.g. a
#           DIR holding rig/run.sh, which /init runs before the end marker
set -euo pipefail
. "$(dirname "$0")/../common.sh"
. "$(dirname "$0")/../apt-private.sh"
. "$(dirname "$0")/common-rig.sh"

out=$RIG/l1-initramfs.gz
extra=()
while getopts o:a: opt; do
    case $opt in
    o) out=$OPTARG ;;
    a) [ -d "$OPTARG" ] || die "-a $OPTARG: not a directory"
       extra+=("$OPTARG") ;;
    *) die "usage: ${0##*/} [-o OUT] [-a DIR]..." ;;
    esac
done
need_tool cpio cpio
need_tool gzip gzip
need_tool dpkg-deb dpkg

debs=${GUEST_CACHE:-$(downloads_dir guest "$GUESTDIR/debs")}
apt_private_download "$debs" "$BUSYBOX_PIN" "$BUSYBOX_SHA256"
unpack_pinned "$debs" "${BUSYBOX_PIN%%=*}" "$BUSYBOX_SHA256" "$RIG/pkg/busybox"
bb=$RIG/pkg/busybox/bin/busybox
[ -x "$bb" ] || die "$bb: not in the busybox-static package"

root=$RIG/l1-root
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,rig}
cp "$bb" "$root/bin/busybox"
install -m 755 "$RIG_TESTS/l1-init" "$root/init"
for d in "${extra[@]}"; do
    cp -a "$d/." "$root/"
done

mkdir -p "$(dirname "$out")"
(cd "$root" && find . -print0 | LC_ALL=C sort -z |
    cpio --null -o -H newc --owner=0:0 --quiet) | gzip -9n > "$out.tmp" ||
    die "writing $out failed"
mv "$out.tmp" "$out"
note "wrote $out ($(du -h "$out" | cut -f1))"
