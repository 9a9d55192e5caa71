#!/usr/bin/env python3
"""make demo: boot a real arm64 Linux guest on the virt board with the
emulated SMMUv3 (ACPI, through UEFI) and print what the guest sees: its
IOMMUs, IOMMU groups and their reserved regions, and the IORT it was given.
"""

import os
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "guest"))
import guestlib as g  # noqa: E402


def main():
    missing = g.missing_artifacts()
    if missing:
        print("demo: missing " + ", ".join(missing), file=sys.stderr)
        return 1
    with open(os.path.join(TOP, "tests", "guest", "init-facts.sh")) as f:
        init = f.read()
    machine = "virt,iommu=smmuv3"
    devices = ["-blockdev", "null-co,node-name=n0,read-zeroes=on,size=67108864",
               "-device", "virtio-blk-pci,drive=n0,romfile=,disable-legacy=on,addr=0x2"]
    work = os.path.join(g.BUILD, "demo")
    print(f"Booting Debian's Linux 6.12 (arm64, TCG, UEFI/ACPI) on -M {machine}")
    print("  " + " ".join(devices))
    b = g.boot(machine, devices, init, work)
    if not b.completed:
        print(f"demo: the guest did not report (timed out: {b.timed_out});"
              f" console in {work}/console.log\n{b.tail()}", file=sys.stderr)
        return 1
    kernel = b.all("BEGIN")[0]
    print(f"\nGuest kernel {kernel}, boot to poweroff in {b.seconds:.1f} s\n")
    print("IOMMUs (/sys/class/iommu):")
    for i in b.all("IOMMU"):
        print(f"  {i}")
    print("\nPCI devices (BDF, vendor:device, class, IOMMU group):")
    for p in b.all("PCI"):
        print("  " + "  ".join(p.split()))
    print("\nIOMMU groups and reserved regions:")
    for grp in b.all("GROUP"):
        n, typ, *devs = grp.split()
        print(f"  group {n} ({typ}): {' '.join(devs)}")
        for r in b.all("RESV"):
            f = r.split()
            if f[0] == n:
                print(f"      {f[1]}-{f[2]}  {f[3]}")
    iort = b.all("IORT")
    if iort:
        t = g.parse_iort(iort[0])
        print(f"\nIORT: revision {t['revision']}, {t['length']} bytes, "
              f"{len(t['nodes'])} nodes:")
        for n in t["nodes"]:
            extra = ""
            if n["type"] == 4:
                extra = f", base 0x{g.smmuv3_base(n):x}"
            print(f"  {n['name']} (type {n['type']}, node revision "
                  f"{n['revision']}, {n['length']} bytes{extra})")
    else:
        print("\nIORT: none (the guest has no ACPI IORT)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
