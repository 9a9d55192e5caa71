#!/bin/busybox sh
# shellcheck shell=dash
# /init of the nested-translation guest: loads virtio-rng from the
# initramfs, prints the IOMMUs, the PCI devices with their drivers and IOMMU
# groups, each group's reserved regions and the IORT, reads HWRNG_BYTES
# bytes from /dev/hwrng and prints the interrupts and the kernel's IOMMU
# messages, all as '@@' lines, then powers off.  The host side
# (tests/guest/*.py) parses them; HWRNG_BYTES=N comes from the kernel
# command line, and so do HWRNG_TIMEOUT (seconds, default 30), WAIT_FOR
# (a PCI device to wait for, up to 60 s, before looking: hot-plug),
# BLK_MIB (write that many MiB of random data to /dev/vda, drop the page
# cache, read them back and compare) and WAIT_GONE (a PCI device to wait
# for, up to 60 s, to go away at the end: unplug).
HWRNG_BYTES=${HWRNG_BYTES:-64}
HWRNG_TIMEOUT=${HWRNG_TIMEOUT:-30}
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "@@BEGIN $(uname -r)"
for m in /*.ko; do
    [ -e "$m" ] || continue
    msg=$(insmod "$m" 2>&1)
    echo "@@INSMOD ${m#/} $? $msg"
done
# hot-plug: say so, and wait until the device is there with its driver
if [ -n "$WAIT_FOR" ]; then
    echo "@@WAITING $WAIT_FOR"
    n=0
    while [ ! -e "/sys/bus/pci/devices/$WAIT_FOR/driver" ] && [ $n -lt 600 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    if [ -e "/sys/bus/pci/devices/$WAIT_FOR/driver" ]; then
        echo "@@ARRIVED $WAIT_FOR"
    else
        echo "@@NOT_ARRIVED $WAIT_FOR"
    fi
fi
for i in /sys/class/iommu/*; do
    [ -e "$i" ] && echo "@@IOMMU ${i##*/}"
done
for d in /sys/bus/pci/devices/*; do
    [ -e "$d" ] || continue
    drv=-
    [ -e "$d/driver" ] && drv=$(basename "$(readlink "$d/driver")")
    grp=-
    [ -e "$d/iommu_group" ] && grp=$(basename "$(readlink "$d/iommu_group")")
    echo "@@PCI ${d##*/} $(cat "$d/vendor"):$(cat "$d/device") $drv $grp"
done
for g in /sys/kernel/iommu_groups/*; do
    [ -e "$g" ] || continue
    n=${g##*/}
    echo "@@GROUP $n $(cat "$g/type" 2>/dev/null) $(ls "$g/devices" | tr '\n' ' ')"
    while read -r a b t; do
        echo "@@RESV $n $a $b $t"
    done < "$g/reserved_regions"
done
if [ -r /sys/firmware/acpi/tables/IORT ]; then
    echo "@@IORT $(od -An -v -tx1 /sys/firmware/acpi/tables/IORT | tr -d ' \n')"
fi
rng=/sys/class/misc/hw_random
echo "@@RNG_CURRENT $(cat $rng/rng_current 2>/dev/null)"
if [ -c /dev/hwrng ]; then
    # a device whose interrupts never arrive must not hang the guest
    timeout $HWRNG_TIMEOUT dd if=/dev/hwrng of=/tmp/hwrng bs=$HWRNG_BYTES count=1 2>/dev/null
    echo "@@HWRNG_RC $?"
    echo "@@HWRNG $(od -An -v -tx1 /tmp/hwrng | tr -d ' \n')"
else
    echo "@@HWRNG_RC no /dev/hwrng"
fi
# with several hardware RNGs, each in turn: "@@RNGREAD NAME STATUS HEX"
# shellcheck disable=SC2046 # one word per RNG name
set -- $(cat $rng/rng_available 2>/dev/null | tr ' ' '\n' | grep -v '^none$')
if [ $# -gt 1 ]; then
    for r in "$@"; do
        echo "$r" > $rng/rng_current
        timeout $HWRNG_TIMEOUT dd if=/dev/hwrng of=/tmp/r bs=$HWRNG_BYTES count=1 2>/dev/null
        echo "@@RNGREAD $r $? $(od -An -v -tx1 /tmp/r | tr -d ' \n')"
    done
fi
if [ -n "$BLK_MIB" ]; then
    if [ -b /dev/vda ]; then
        dd if=/dev/urandom of=/tmp/blk.w bs=1M count="$BLK_MIB" 2>/dev/null
        echo "@@BLK_BEGIN"
        t0=$(cut -d' ' -f1 /proc/uptime)
        dd if=/tmp/blk.w of=/dev/vda bs=1M conv=fsync 2>/dev/null
        echo 3 > /proc/sys/vm/drop_caches
        dd if=/dev/vda of=/tmp/blk.r bs=1M count="$BLK_MIB" 2>/dev/null
        t1=$(cut -d' ' -f1 /proc/uptime)
        if cmp -s /tmp/blk.w /tmp/blk.r; then r=same; else r=differs; fi
        echo "@@BLK $BLK_MIB $r $t0 $t1"
        rm -f /tmp/blk.w /tmp/blk.r
    else
        echo "@@BLK $BLK_MIB no-/dev/vda"
    fi
fi
grep -iE 'virtio|msi|its' /proc/interrupts | sed 's/^ */@@IRQ /'
if [ -n "$WAIT_GONE" ]; then
    echo "@@UNPLUG_WAIT $WAIT_GONE"
    n=0
    while [ -e "/sys/bus/pci/devices/$WAIT_GONE" ] && [ $n -lt 600 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    if [ -e "/sys/bus/pci/devices/$WAIT_GONE" ]; then
        echo "@@NOT_GONE $WAIT_GONE"
    else
        echo "@@GONE $WAIT_GONE"
    fi
fi
dmesg | grep -iE 'arm-smmu-v3|virtio_iommu|iommu|virtio|rng|RMR|IORT' | sed 's/^/@@DMESG /'
echo "@@END"
poweroff -f
