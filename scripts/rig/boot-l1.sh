#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Boot L1 (the rig's real 7.2 kernel) under L0 (build/obj/qemu-system-aarch64,
# TCG, virt with SMMUv3 stage=nested) and check it reached the end marker
# of its /init.  Usage: boot-l1.sh [-A] [-i INITRD] [-t SECONDS] [-l LOG] [-v]
#                                  [-- QEMU ARGS...]
#   -A  UEFI+ACPI (QEMU_EFI.fd, acpi=force) instead of DT
#   -i  the initramfs (default build/rig/l1-initramfs.gz)
#   -t  wall-time limit (default 120)
#   -l  the console log (default build/rig/l1-dt.log or l1-acpi.log)
#   -v  copy the console to stdout as well
# Exits with the status /init reports for /rig/run.sh (0 without one).
set -euo pipefail
. "$(dirname "$0")/../common.sh"
. "$(dirname "$0")/common-rig.sh"

acpi=0 verbose=0 limit=120 log=
initrd=$RIG/l1-initramfs.gz
kernel=${RIG_KERNEL:-$LINUX_OBJ/arch/arm64/boot/Image}
while getopts Ai:t:l:v opt; do
    case $opt in
    A) acpi=1 ;;
    i) initrd=$OPTARG ;;
    t) limit=$OPTARG ;;
    l) log=$OPTARG ;;
    v) verbose=1 ;;
    *) die "usage: ${0##*/} [-A] [-i INITRD] [-t SECONDS] [-l LOG] [-v] [-- QEMU ARGS...]" ;;
    esac
done
shift $((OPTIND - 1))
[ "$acpi" = 1 ] && mode=acpi || mode=dt
log=${log:-$RIG/l1-$mode.log}

[ -x "$RIG_QEMU" ] || die "$RIG_QEMU missing: build it with 'make'"
[ -f "$kernel" ] || die "$kernel missing: run scripts/rig/kernel.sh"
[ -f "$initrd" ] || die "$initrd missing: run scripts/rig/initramfs.sh"
need_tool timeout coreutils

# A scratch disk for the virtio-blk function L1 can pass through.
disk=$RIG/l1-disk.img
[ -f "$disk" ] || truncate -s 64M "$disk"

append="console=ttyAMA0 panic=-1 loglevel=3"
args=(
    -M "virt,virtualization=on,gic-version=3,its=on,iommu=smmuv3"
    -cpu "max,pauth=off" -smp 1 -m 3G
    -display none -no-reboot -nic none -monitor none -serial stdio
    -device "virtio-rng-pci,disable-legacy=on,iommu_platform=on"
    -blockdev "node-name=disk0,driver=raw,file.driver=file,file.filename=$disk"
    -device "virtio-blk-pci,drive=disk0,disable-legacy=on,iommu_platform=on,romfile="
    -kernel "$kernel" -initrd "$initrd"
)
if [ "$acpi" = 1 ]; then
    [ -r "$RIG_EFI" ] || die "$RIG_EFI missing: install qemu-efi-aarch64"
    args+=(-bios "$RIG_EFI")
    append+=" acpi=force"
fi
args+=(-append "$append" "$@")

mkdir -p "$(dirname "$log")"
note "booting L1 ($mode), console in $log, limit ${limit}s"
start=$(date +%s.%N)
rc=0
if [ "$verbose" = 1 ]; then
    # pipefail: the status is timeout's (tee succeeds)
    timeout -k 5 "$limit" "$RIG_QEMU" "${args[@]}" </dev/null 2>&1 |
        tee "$log" || rc=$?
else
    timeout -k 5 "$limit" "$RIG_QEMU" "${args[@]}" </dev/null >"$log" 2>&1 ||
        rc=$?
fi
secs=$(echo "$(date +%s.%N) - $start" | bc)
secs=$(printf '%.1f' "$secs")

if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    tail -n 20 "$log" >&2
    die "L1 ($mode) did not power off within ${limit}s (see $log)"
fi
[ "$rc" = 0 ] || { tail -n 20 "$log" >&2; die "L0 QEMU exited with status $rc (see $log)"; }
end=$(tr -d '\r' < "$log" | sed -n 's/^RIG-END status=\([0-9]*\)$/\1/p' | tail -n1)
[ -n "$end" ] || { tail -n 20 "$log" >&2; die "L1 ($mode) ended without its end marker (see $log)"; }
note "L1 ($mode) powered off after ${secs}s wall; /init status $end"
exit "$end"
