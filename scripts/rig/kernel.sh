#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Build L1's kernel for the real-kernel rig: build/rig/linux-obj/arch/arm64/
# boot/Image, from Debian's linux-source-7.2 (extracted under
# build/linux-src/, downloaded pinned by sha256 when absent), allnoconfig
# plus tests/rig/l1-kernel.config (RIG_FRAGMENT=FILE: another one).  A warm
# run with the same fragment, kernel and toolchain does nothing.
# RIG_JOBS (default 2) and RIG_NICE (default 10) tune the build.
set -euo pipefail
. "$(dirname "$0")/../common.sh"
. "$(dirname "$0")/../apt-private.sh"
. "$(dirname "$0")/common-rig.sh"

FRAGMENT=${RIG_FRAGMENT:-$RIG_TESTS/l1-kernel.config}
IMAGE=$LINUX_OBJ/arch/arm64/boot/Image
STAMP=$LINUX_OBJ/.rig-stamp
JOBS=${RIG_JOBS:-2}

need_tool "${CROSS}gcc" gcc-aarch64-linux-gnu
need_tool ccache ccache
need_tool make make
need_tool flex flex
need_tool bison bison
need_tool bc bc
need_tool perl perl
[ -r /usr/include/gelf.h ] || die "gelf.h missing: install libelf-dev"
[ -r /usr/include/openssl/ssl.h ] || die "openssl headers missing: install libssl-dev"
[ -r "$FRAGMENT" ] || die "$FRAGMENT missing"

# The tree: extract the pinned linux-source-7.2 package when it is absent
# or from another package version (.from holds the .deb's sha256).
if [ ! -f "$LINUX_SRC_TREE/Makefile" ] ||
   [ "$(cat "$LINUX_SRC_TREE/.from" 2>/dev/null)" != "$LINUX_SRC_SHA256" ]; then
    debs=$(downloads_dir linux-src "$LINUX_SRC_PARENT")
    apt_private_download "$debs" "$LINUX_SRC_PIN" "$LINUX_SRC_SHA256"
    unpack_pinned "$debs" "${LINUX_SRC_PIN%%=*}" "$LINUX_SRC_SHA256" \
        "$LINUX_SRC_PARENT/pkg"
    tarball=$LINUX_SRC_PARENT/pkg/usr/src/linux-source-7.2.tar.xz
    [ -f "$tarball" ] || die "$tarball: not in the package"
    note "extracting ${tarball##*/}"
    rm -rf "$LINUX_SRC_TREE.tmp"
    mkdir -p "$LINUX_SRC_TREE.tmp"
    tar -xf "$tarball" --no-same-owner -C "$LINUX_SRC_TREE.tmp" ||
        die "extracting $tarball failed"
    [ -f "$LINUX_SRC_TREE.tmp/linux-source-7.2/Makefile" ] ||
        die "$tarball holds no linux-source-7.2/Makefile"
    echo "$LINUX_SRC_SHA256" > "$LINUX_SRC_TREE.tmp/linux-source-7.2/.from"
    rm -rf "$LINUX_SRC_TREE"
    mv "$LINUX_SRC_TREE.tmp/linux-source-7.2" "$LINUX_SRC_TREE"
    rmdir "$LINUX_SRC_TREE.tmp"
fi

kmake() {
    nice -n "${RIG_NICE:-10}" make -C "$LINUX_SRC_TREE" O="$LINUX_OBJ" \
        ARCH=arm64 CROSS_COMPILE="$CROSS" CC="ccache ${CROSS}gcc" \
        KBUILD_BUILD_USER=rig KBUILD_BUILD_HOST=rig "$@"
}

kver=$(make -s -C "$LINUX_SRC_TREE" kernelversion) ||
    die "cannot read the kernel version of $LINUX_SRC_TREE"
tver=$("${CROSS}gcc" --version | head -n1)
want=$(printf '%s\n' "$(sha256sum < "$FRAGMENT" | cut -d' ' -f1)" "$kver" "$tver" \
              "$LINUX_SRC_SHA256")
if [ -f "$IMAGE" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    note "up to date: $IMAGE (Linux $kver)"
    exit 0
fi
rm -f "$STAMP"
mkdir -p "$LINUX_OBJ"

note "configuring Linux $kver: allnoconfig + ${FRAGMENT#"$TOP"/}"
kmake -s allnoconfig || die "make allnoconfig failed"
(cd "$LINUX_SRC_TREE" &&
    ARCH=arm64 CROSS_COMPILE="$CROSS" scripts/kconfig/merge_config.sh \
        -m -O "$LINUX_OBJ" "$LINUX_OBJ/.config" "$FRAGMENT") \
    >"$LINUX_OBJ/merge.log" 2>&1 ||
    die "merge_config.sh failed (see $LINUX_OBJ/merge.log)"
kmake -s olddefconfig || die "make olddefconfig failed"

# Every fragment line must hold in the final .config.
bad=()
while IFS= read -r line; do
    case $line in
    CONFIG_*=*)
        grep -qxF "$line" "$LINUX_OBJ/.config" || bad+=("${line%%=*}")
        ;;
    "# CONFIG_"*" is not set")
        opt=${line#"# "}
        opt=${opt%% *}
        ! grep -q "^$opt=" "$LINUX_OBJ/.config" || bad+=("$opt")
        ;;
    esac
done < "$FRAGMENT"
[ "${#bad[@]}" = 0 ] ||
    die "not as ${FRAGMENT#"$TOP"/} asks in $LINUX_OBJ/.config" \
        "(a dependency is missing or the name is wrong): ${bad[*]}"

note "building Image with $JOBS jobs (log: $LINUX_OBJ/build.log)"
kmake -j"$JOBS" Image >"$LINUX_OBJ/build.log" 2>&1 ||
    { tail -n 30 "$LINUX_OBJ/build.log" >&2; die "the kernel build failed (see $LINUX_OBJ/build.log)"; }
[ -f "$IMAGE" ] || die "the build ended without $IMAGE"
echo "$want" > "$STAMP"
note "built $IMAGE (Linux $kver, $(du -h "$IMAGE" | cut -f1))"
