#!/usr/bin/env bash
# Firmware for the build and its tests, from Debian packages (make deps
# installs them).  Debian's +ds source tarball lacks QEMU's prebuilt blobs:
#  - pc-bios/edk2-*.fd.bz2: configure refuses an edk2 target without them,
#    and bios-tables-test (built only when they exist) boots the aarch64 one.
#    We compress Debian's AAVMF pflash images (64 MiB, as the test needs)
#    into the two aarch64 ones; the others, for targets this build does not
#    have, are empty.  They are ignored by git (.git/info/exclude), so they
#    never reach a patch.
#  - option ROMs: linked from ipxe-qemu into the data directory that a
#    binary run from the build tree searches (qemu-bundle).
set -euo pipefail
. "$(dirname "$0")/common.sh"

IPXE_DIR=/usr/lib/ipxe/qemu
AAVMF_CODE=/usr/share/AAVMF/AAVMF_CODE.fd
AAVMF_VARS=/usr/share/AAVMF/AAVMF_VARS.fd

for f in "$IPXE_DIR/efi-virtio.rom" "$AAVMF_CODE" "$AAVMF_VARS"; do
    [ -r "$f" ] || die "$f missing: run 'make deps' (packages ipxe-qemu, qemu-efi-aarch64)"
done
command -v bzip2 >/dev/null || die "bzip2 missing: run 'make deps'"

if [ -d "$SRC/pc-bios" ]; then
    exclude=$(git -C "$SRC" rev-parse --path-format=absolute --git-path info/exclude)
    mkdir -p "${exclude%/*}"
    grep -qx '/pc-bios/edk2-\*.fd.bz2' "$exclude" 2>/dev/null ||
        echo '/pc-bios/edk2-*.fd.bz2' >> "$exclude"
    edk2=$(sed -n "/^  fds = \[/,/^  \]/s/^ *'\(edk2-[^']*\.fd\)',*$/\1/p" \
               "$SRC/pc-bios/meson.build")
    [ -n "$edk2" ] || die "cannot read the edk2 blob list from $SRC/pc-bios/meson.build"
    for fd in $edk2; do
        out=$SRC/pc-bios/$fd.bz2
        case $fd in
        edk2-aarch64-code.fd) from=$AAVMF_CODE ;;
        edk2-arm-vars.fd) from=$AAVMF_VARS ;;
        *) from=/dev/null ;;
        esac
        if [ ! -f "$out" ] || { [ "$from" != /dev/null ] && [ "$from" -nt "$out" ]; }; then
            bzip2 -c < "$from" > "$out.tmp"
            mv "$out.tmp" "$out"
        fi
    done
fi

if [ -f "$OBJ/config-host.h" ]; then
    datadir=$(sed -n 's/^#define CONFIG_QEMU_DATADIR "\(.*\)"$/\1/p' "$OBJ/config-host.h")
    [ -n "$datadir" ] || die "no CONFIG_QEMU_DATADIR in $OBJ/config-host.h"
    bundle=$OBJ/qemu-bundle$datadir
    mkdir -p "$bundle"
    for rom in "$IPXE_DIR"/efi-*.rom; do
        ln -sf "$rom" "$bundle/${rom##*/}"
    done
fi
