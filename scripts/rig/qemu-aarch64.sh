#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# The series' QEMU that L1 (the rig's real 7.2 host) runs L2 with:
# build/src cross-built for aarch64, static, KVM only (no TCG), with
# iommufd, vfio-pci, arm-smmuv3, virtio-iommu and the devices of
# tests/rig/qemu-aarch64-devices.mak, out of tree in build/rig/qemu-obj.
# Its arm64 libraries (bookworm, the suite of the cross toolchain, pinned by
# sha256) are unpacked into build/rig/sysroot, never installed.  build/src
# is only read.  Prints the path of build/rig/qemu-obj/qemu-system-aarch64.
# A warm run with the same tree HEAD and settings only asks ninja.
# RIG_JOBS (default 2) and RIG_NICE (default 10) tune the build.
set -euo pipefail
. "$(dirname "$0")/../common.sh"
. "$(dirname "$0")/../apt-private.sh"
. "$(dirname "$0")/common-rig.sh"

QOBJ=$RIG/qemu-obj
SYSROOT=$RIG/sysroot
BIN=$QOBJ/qemu-system-aarch64
DEVICES=$RIG_TESTS/qemu-aarch64-devices.mak
PKGCONFIG=$RIG/bin/${CROSS}pkg-config
TRIPLET=${CROSS%-}
JOBS=${RIG_JOBS:-2}
NICE=${RIG_NICE:-10}

# The sysroot: what a static link of QEMU needs, from bookworm (glibc 2.36
# as the cross toolchain's gcc 12 expects; glib 2.74 >= QEMU's 2.66).  The
# -dev packages carry the .a files; libc6-dev (libc.a, crt*.o, headers)
# and linux-libc-dev (asm/ headers) are not part of gcc-aarch64-linux-gnu.
SYSROOT_PINS=(
    "libc6-dev:arm64=2.36-9+deb12u14"       8bc395bf2ee9939f1a6ae395f974cffdcf541d98f99adfe89ce7e4bef36d159e
    "libc6:arm64=2.36-9+deb12u14"           01f4330719fd4f65580e16ea5a0527f372fca750e8f588d26deaf09f2d3b1cf4
    "linux-libc-dev:arm64=6.1.176-1"        eeca5ec13bed7206f8171fab9a48e84119dcc20cc79557f104628447a524ad10
    "libglib2.0-dev:arm64=2.74.6-2+deb12u9" ebe19a7908a412653e3cbd5bc9a9b78732d8b75408ced87799ff39ab9c76ce11
    "libglib2.0-0:arm64=2.74.6-2+deb12u9"   61d92fffada7e27fc0ed9d23e047b45bca3b2e3bfe1a918f4ec16559282859f4
    "libpcre2-dev:arm64=10.42-1"            741bf236122f890ca3b1a9f6b9570848dd5b35aa558281424001cb1413747c90
    "libpcre2-8-0:arm64=10.42-1"            b2448d0a8a3db7fbeac231e7ef93811346c1fb5f96ccf6f631701d8a4eb39206
    "zlib1g-dev:arm64=1:1.2.13.dfsg-1"      afb60f0bae432f2f0edfe2d674e99c1a13a147c9aa2b52f2f23e3df19ece76f5
    "zlib1g:arm64=1:1.2.13.dfsg-1"          52b8b8a145bbe1956bba82034f77022cbef0c3d0885c9e32d9817a7932fe1913
    "libfdt-dev:arm64=1.6.1-4+b1"           a5ab8f5de4187c8f851f817c6882772cf330a894539f4ddcd44726aeb801fa9a
    "libfdt1:arm64=1.6.1-4+b1"              63f9608ac653f65ef57596ca18b97c399ff37792eb4f8a35e6ec1f8ee49a5dd0
    "libffi-dev:arm64=3.4.4-1"              8ff6335f76752ef8659762435d0d88129ef0090a587520853238809bd10ef392
    "libffi8:arm64=3.4.4-1"                 80b5c36177dc0e29d531c7eddbed3cc7355cb490e49f8cfa5959572d161f27b3
)

need_tool "${CROSS}gcc" gcc-aarch64-linux-gnu
need_tool "${CROSS}readelf" binutils-aarch64-linux-gnu
need_tool ccache ccache
need_tool ninja ninja-build
need_tool meson meson
need_tool pkg-config pkgconf
need_tool dpkg-deb dpkg
need_tool file file
need_tool git git
need_tool nice coreutils
[ -x /usr/bin/python3 ] || die "/usr/bin/python3 missing: install python3"
[ -r "$DEVICES" ] || die "$DEVICES missing"
case $SYSROOT in
*[[:space:]]*) die "the sysroot path '$SYSROOT' holds a blank; configure's --cc cannot carry it" ;;
esac

# The tree, read only: it must exist, and so must the edk2 .bz2 files that
# configure requires for an aarch64 target (the +ds tarball has none;
# scripts/firmware.sh, run by 'make', writes them, ignored by git).
if [ ! -x "$SRC/configure" ] || [ ! -e "$SRC/.git" ]; then
    die "$SRC missing: run 'make tree'"
fi
edk2=$(sed -n "/^  fds = \[/,/^  \]/s/^ *'\(edk2-[^']*\.fd\)',*$/\1/p" \
           "$SRC/pc-bios/meson.build")
[ -n "$edk2" ] || die "cannot read the edk2 blob list from $SRC/pc-bios/meson.build"
for fd in $edk2; do
    [ -f "$SRC/pc-bios/$fd.bz2" ] ||
        die "$SRC/pc-bios/$fd.bz2 missing: run 'make' once (scripts/firmware.sh" \
            "writes the edk2 files); this script does not write into $SRC"
done

# The sysroot: the pinned .debs, unpacked together once.
debs=$(downloads_dir rig "$RIG/debs")
apt_private_download "$debs" "${SYSROOT_PINS[@]}"
want_sysroot=$(printf '%s\n' "${SYSROOT_PINS[@]}")
if [ ! -f "$SYSROOT/.from" ] || [ "$(cat "$SYSROOT/.from")" != "$want_sysroot" ]; then
    note "unpacking $(( ${#SYSROOT_PINS[@]} / 2 )) arm64 packages into $SYSROOT"
    rm -rf "$SYSROOT"
    mkdir -p "$SYSROOT"
    set -- "${SYSROOT_PINS[@]}"
    while [ $# -ge 2 ]; do
        deb=$(find_pinned "$debs" "${1%%=*}" "$2") ||
            die "no .deb of ${1%%=*} with sha256 $2 in $debs"
        dpkg-deb -x "$deb" "$SYSROOT" || die "dpkg-deb -x $deb failed"
        shift 2
    done
    echo "$want_sysroot" > "$SYSROOT/.from"
fi
libdir=$SYSROOT/usr/lib/$TRIPLET
for lib in libc.a:libc6-dev libglib-2.0.a:libglib2.0-dev libpcre2-8.a:libpcre2-dev \
           libz.a:zlib1g-dev libfdt.a:libfdt-dev libffi.a:libffi-dev; do
    [ -f "$libdir/${lib%%:*}" ] ||
        die "$libdir/${lib%%:*} missing: the pinned ${lib#*:}:arm64 does not ship it"
done
[ -r "$SYSROOT/usr/include/$TRIPLET/asm/unistd.h" ] ||
    die "$SYSROOT/usr/include/$TRIPLET/asm/unistd.h missing: linux-libc-dev:arm64 is not in the sysroot"

# pkg-config that sees the sysroot's .pc files only, with sysroot paths.
mkdir -p "${PKGCONFIG%/*}"
cat > "$PKGCONFIG.new" <<EOF
#!/bin/sh
# Written by scripts/rig/qemu-aarch64.sh: pkg-config for the arm64 sysroot.
PKG_CONFIG_SYSROOT_DIR='$SYSROOT'
PKG_CONFIG_LIBDIR='$libdir/pkgconfig:$SYSROOT/usr/share/pkgconfig'
export PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_LIBDIR
unset PKG_CONFIG_PATH
exec pkg-config "\$@"
EOF
chmod 755 "$PKGCONFIG.new"
if cmp -s "$PKGCONFIG.new" "$PKGCONFIG"; then
    rm "$PKGCONFIG.new"
else
    mv "$PKGCONFIG.new" "$PKGCONFIG"
fi
"$PKGCONFIG" --exists --print-errors --static glib-2.0 zlib 2>"$RIG/pkg-config.log" ||
    die "pkg-config finds no static glib-2.0/zlib in $SYSROOT (see $RIG/pkg-config.log)"

# ccache as in scripts/build.sh: keys relative to the project.
export CCACHE_BASEDIR=$TOP
export CCACHE_NOHASHDIR=1
export CCACHE_DIR=${CCACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-$BUILD}/.cache}/ccache}

# configure takes the devices file relative to configs/devices/aarch64-softmmu
devices_rel=$(realpath -m --relative-to="$SRC/configs/devices/aarch64-softmmu" "$DEVICES")
# --sysroot in the compiler itself, so that meson's library search (libfdt
# has no .pc in bookworm) and every link look in the sysroot as well.
CONFIGURE_ARGS=(
    --python=/usr/bin/python3
    --cross-prefix="$CROSS"
    --cc="ccache ${CROSS}gcc --sysroot=$SYSROOT"
    --static
    --target-list=aarch64-softmmu
    "--with-devices-aarch64=${devices_rel%.mak}"
    --without-default-features
    --enable-kvm
    --disable-tcg
    --enable-fdt=system
    --disable-download
    --disable-docs
    --disable-install-blobs
)

stamp=$QOBJ/.configure-args
want=$(printf '%s\n' "${CONFIGURE_ARGS[@]}" "PKG_CONFIG=$PKGCONFIG" \
           "devices $(sha256sum < "$DEVICES" | cut -d' ' -f1)" \
           "$("${CROSS}gcc" --version | head -n1)" "$want_sysroot")
if [ ! -f "$QOBJ/build.ninja" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    note "configuring in $QOBJ (log: $QOBJ/configure.log)"
    rm -rf "$QOBJ"
    mkdir -p "$QOBJ"
    (cd "$QOBJ" && PKG_CONFIG=$PKGCONFIG nice -n "$NICE" \
         "$SRC/configure" "${CONFIGURE_ARGS[@]}" >configure.log 2>&1) || {
        tail -n 30 "$QOBJ/configure.log" >&2
        die "configure failed; full log: $QOBJ/configure.log"
    }
    echo "$want" > "$stamp"
fi
# what L2 needs, as configure decided it
for opt in CONFIG_IOMMUFD CONFIG_VFIO_PCI CONFIG_ARM_SMMUV3 CONFIG_VIRTIO_IOMMU \
           CONFIG_PCIE_PORT CONFIG_VIRTIO_PCI; do
    grep -qx "$opt=y" "$QOBJ/aarch64-softmmu-config-devices.mak" ||
        die "$opt is not enabled in $QOBJ/aarch64-softmmu-config-devices.mak" \
            "(see ${DEVICES#"$TOP"/} and $QOBJ/configure.log)"
done
grep -qx '#define CONFIG_KVM 1' "$QOBJ/aarch64-softmmu-config-target.h" ||
    die "KVM is not enabled in $QOBJ (see $QOBJ/configure.log)"

head=$(git -C "$SRC" rev-parse HEAD) || die "cannot read HEAD of $SRC"
[ -z "$(git -C "$SRC" status --porcelain --untracked-files=no)" ] ||
    note "warning: $SRC has uncommitted changes; building it as it is"
built=$QOBJ/.rig-built
if [ -x "$BIN" ] && [ "$(cat "$built" 2>/dev/null)" = "$head" ]; then
    note "tree HEAD ${head:0:12} unchanged since the last build: asking ninja only"
else
    note "building qemu-system-aarch64 of ${head:0:12} with $JOBS jobs" \
         "(log: $QOBJ/build.log)"
    rm -f "$built"
fi
nice -n "$NICE" ninja -C "$QOBJ" -j"$JOBS" qemu-system-aarch64 >"$QOBJ/build.log" 2>&1 || {
    tail -n 30 "$QOBJ/build.log" >&2
    die "the build failed (see $QOBJ/build.log)"
}
echo "$head" > "$built"

# A static aarch64 ELF: no program interpreter, machine AArch64.
info=$(file -b "$BIN")
case $info in
*"ARM aarch64"*"statically linked"*|*"ARM aarch64"*"static-pie linked"*) ;;
*) die "$BIN is not a static aarch64 ELF: $info" ;;
esac
"${CROSS}readelf" -hW "$BIN" | grep -q 'Machine: *AArch64' ||
    die "$BIN: readelf does not show Machine AArch64"
! "${CROSS}readelf" -lW "$BIN" | grep -q INTERP ||
    die "$BIN asks for a program interpreter: not a static link"
note "built $BIN ($(du -h "$BIN" | cut -f1)): $info"
echo "$BIN"
