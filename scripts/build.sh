#!/usr/bin/env bash
# make / make build: configure (once) and build qemu-system-aarch64 and the
# qtests the project runs, in build/obj, from build/src, with ccache.
set -euo pipefail
. "$(dirname "$0")/common.sh"

# The qtests make check runs (its list of suites is the one place to add one).
if [ -z "${TEST_TARGETS:-}" ]; then
    TEST_TARGETS=$(/usr/bin/python3 "$TOP/scripts/check.py" --list-targets) ||
        die "scripts/check.py --list-targets failed (its error is above)"
fi

if [ -e "$SRC/.git" ]; then
    [ -n "${NMSI_NO_SERIES_CHECK:-}" ] ||
    "$TOP/scripts/check-series.sh" >/dev/null 2>&1 ||
        note "warning: patches/ and build/src differ; building build/src as it is" \
             "('make check-series' says how)"
else
    "$TOP/scripts/tree.sh"
fi

# ccache: key on paths relative to the project so that another clone (CI)
# of the project on this machine hits the same cache.
export CCACHE_BASEDIR=$TOP
export CCACHE_NOHASHDIR=1
export CCACHE_DIR=${CCACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-$BUILD}/.cache}/ccache}
command -v ccache >/dev/null || die "ccache missing: run 'make deps'"
command -v meson >/dev/null || die "meson missing: run 'make deps'"

# A devices file that keeps the virt board only: every board the default
# configuration lists as "# CONFIG_<BOARD>=n" is turned off, the rest
# (PCI devices, VFIO, IOMMUFD, virtio-iommu, SMMUv3) keeps its defaults.
# It lives in build/, outside the QEMU tree; configure takes it relative to
# configs/devices/aarch64-softmmu/.
DEVICES_NAME=virt-only${NMSI_STUB:+-stub}
DEVICES=$BUILD/devices/$DEVICES_NAME.mak
mkdir -p "${DEVICES%/*}"
boards=$(sed -n 's/^# *\(CONFIG_[A-Z0-9_]*\)=n$/\1=n/p' \
             "$SRC/configs/devices/arm-softmmu/default.mak" \
             "$SRC/configs/devices/aarch64-softmmu/default.mak") ||
    die "cannot read the board list from $SRC/configs/devices/*/default.mak"
{
    echo "# Written by scripts/build.sh: the virt board and no other."
    echo "$boards" | grep -v -E '^CONFIG_(ARM_VIRT|PCI_DEVICES|I2C_DEVICES|TEST_DEVICES)=' |
        sort -u || true
    if [ -n "${NMSI_STUB:-}" ]; then
        echo "# ... and without iommufd, as on hosts that lack it (the stubs)"
        echo "CONFIG_IOMMUFD=n"
    fi
} > "$DEVICES.new"
cmp -s "$DEVICES.new" "$DEVICES" && rm "$DEVICES.new" || mv "$DEVICES.new" "$DEVICES"

CONFIGURE_ARGS=(
    --python=/usr/bin/python3
    --target-list=aarch64-softmmu
    "--with-devices-aarch64=../../../../devices/$DEVICES_NAME"
    --disable-download
    --without-default-features
    --disable-docs
    --disable-install-blobs
    --enable-kvm
    --enable-tcg
    --enable-fdt=system
    --cc="ccache cc"
)

"$TOP/scripts/firmware.sh"

stamp=$OBJ/.configure-args
want=$(printf '%s\n' "${CONFIGURE_ARGS[@]}")
if [ ! -f "$OBJ/build.ninja" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    note "configuring in $OBJ"
    rm -rf "$OBJ"
    mkdir -p "$OBJ"
    (cd "$OBJ" && "$SRC/configure" "${CONFIGURE_ARGS[@]}" >configure.log 2>&1) || {
        tail -n 30 "$OBJ/configure.log" >&2
        die "configure failed; full log: $OBJ/configure.log"
    }
    echo "$want" > "$stamp"
fi

"$TOP/scripts/firmware.sh"

targets=(qemu-system-aarch64 pc-bios/edk2-aarch64-code.fd pc-bios/edk2-arm-vars.fd)
# regenerate build.ninja first if meson files changed, so the query below
# sees this tree's targets, not the last tree's
ninja -C "$OBJ" build.ninja >"$OBJ/regenerate.log" 2>&1 || {
    tail -n 30 "$OBJ/regenerate.log" >&2
    die "regenerating $OBJ/build.ninja failed (meson files of build/src?);" \
        "log: $OBJ/regenerate.log"
}
for t in $TEST_TARGETS; do
    # a prefix of the series (make check-bisect) may not define it yet
    if ninja -C "$OBJ" -t query "$t" >/dev/null 2>&1; then
        targets+=("$t")
    else
        note "not in this tree, skipped: $t"
    fi
done
note "building ${targets[*]}"
rm -f "$OBJ/.build-ok"
ninja -C "$OBJ" -j"$(nproc)" "${targets[@]}" ||
    die "the build failed: the compiler's errors are above (build dir $OBJ)"
# for scripts/check.py: this build is complete
touch "$OBJ/.build-ok"
