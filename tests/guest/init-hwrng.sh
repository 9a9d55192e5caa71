#!/bin/busybox sh
# shellcheck shell=dash
# /init of the hardware-RNG guest: loads virtio-rng from the initramfs, prints
# the PCI and virtio devices with their drivers and the hw_random state, reads
# HWRNG_BYTES bytes from /dev/hwrng, prints them as '@@' lines, then powers
# off.  The host side (test-hostmodel-virtio-rng.py) parses them and passes
# HWRNG_BYTES=N on the kernel command line (the kernel hands it to /init).
HWRNG_BYTES=${HWRNG_BYTES:-64}
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "@@BEGIN $(uname -r)"
if [ -e /virtio-rng.ko ]; then
    msg=$(insmod /virtio-rng.ko 2>&1)
    echo "@@INSMOD $? $msg"
fi
for d in /sys/bus/pci/devices/*; do
    [ -e "$d" ] || continue
    drv=-
    [ -e "$d/driver" ] && drv=$(basename "$(readlink "$d/driver")")
    echo "@@PCI ${d##*/} $(cat "$d/vendor"):$(cat "$d/device") $(cat "$d/class") $drv"
done
for v in /sys/bus/virtio/devices/*; do
    [ -e "$v" ] || continue
    drv=-
    [ -e "$v/driver" ] && drv=$(basename "$(readlink "$v/driver")")
    parent=$(readlink "$v")
    parent=${parent%/*}
    echo "@@VIRTIO ${v##*/} $(cat "$v/device") $drv ${parent##*/}"
done
rng=/sys/class/misc/hw_random
echo "@@RNG_CURRENT $(cat $rng/rng_current 2>/dev/null)"
echo "@@RNG_AVAILABLE $(cat $rng/rng_available 2>/dev/null)"
if [ -c /dev/hwrng ]; then
    # a device that never answers must not hang the guest: the host still
    # gets a report (an empty read) instead of a boot timeout
    timeout 60 dd if=/dev/hwrng of=/tmp/hwrng bs=$HWRNG_BYTES count=1 2>/dev/null
    echo "@@HWRNG_RC $?"
    echo "@@HWRNG $(od -An -v -tx1 /tmp/hwrng | tr -d ' \n')"
    hexdump -C /tmp/hwrng | sed 's/^/@@HEXDUMP /'
else
    echo "@@HWRNG_RC no /dev/hwrng"
fi
grep -iE 'virtio|msi' /proc/interrupts | sed 's/^ */@@IRQ /'
dmesg | grep -iE 'virtio|rng|pci 0000:00:02|msi' | sed 's/^/@@DMESG /'
echo "@@END"
poweroff -f
