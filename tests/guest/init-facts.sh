#!/bin/busybox sh
# shellcheck shell=dash
# /init of the fact-gathering guest: prints what the guest kernel sees of its
# IOMMUs, PCI devices, IOMMU groups, reserved regions and IORT as '@@' lines,
# then powers off.  The host side (guestlib.py) parses them.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "@@BEGIN $(uname -r)"
for i in /sys/class/iommu/*; do
    [ -e "$i" ] && echo "@@IOMMU ${i##*/}"
done
dmesg | grep -E 'arm-smmu-v3|virtio_iommu|iommu:' | sed 's/^/@@DMESG /'
for d in /sys/bus/pci/devices/*; do
    [ -e "$d" ] || continue
    grp=-
    [ -e "$d/iommu_group" ] && grp=$(basename "$(readlink "$d/iommu_group")")
    echo "@@PCI ${d##*/} $(cat "$d/vendor"):$(cat "$d/device") $(cat "$d/class") $grp"
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
echo "@@END"
poweroff -f
