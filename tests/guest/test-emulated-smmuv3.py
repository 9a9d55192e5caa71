#!/usr/bin/env python3
"""Real guest on the emulated SMMUv3 (-M virt,iommu=smmuv3), ACPI boot.

Boots Debian's arm64 Linux 6.12 and 7.2 through UEFI with a virtio-blk-pci device
behind the SMMU and checks from inside the guest that the SMMUv3 probed, that
the device sits in an IOMMU group, its reserved regions, and the IORT the
guest read.  TAP output.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guestlib as g  # noqa: E402

DEVICE_BDF = "0000:00:02.0"
SMMU_BASE = 0x09050000          # VIRT_SMMU in hw/arm/virt.c's memory map
SW_MSI = ("0x0000000008000000", "0x00000000080fffff", "msi")


NAMES = ["guest boots and reports", "SMMUv3 probed",
         "device is in an IOMMU group", "group reserved regions",
         "IORT describes ITS, SMMUv3 and root complex"]


def run(tap, kernel, init):
    names = [f"linux {kernel}: {n}" for n in NAMES]
    missing = g.missing_artifacts(kernel)
    if missing:
        for n in names:
            tap.skip(n, "missing " + ", ".join(missing) +
                     " (run 'make guest' and 'make build')")
        return
    work = os.path.join(g.BUILD, "tests", f"emulated-smmuv3-{kernel}")
    b = g.boot("virt,iommu=smmuv3",
               ["-blockdev", "null-co,node-name=n0,read-zeroes=on,size=67108864",
                "-device", "virtio-blk-pci,drive=n0,romfile=,disable-legacy=on,addr=0x2"],
               init, work, kernel=kernel)
    print(f"# linux {kernel}: boot took {b.seconds:.1f} s; console log in "
          f"{work}/console.log")
    if not tap.ok(b.completed, names[0],
                  f"timed out: {b.timed_out}, exit: {b.returncode}\n{b.tail()}"):
        for n in names[1:]:
            tap.ok(False, n, "no guest report")
        return

    iommus = b.all("IOMMU")
    want = f"smmu3.0x{SMMU_BASE:016x}"
    # "ias 44-bit, oas 44-bit (features ...)" (6.12), "oas 44-bit (features ...)" (7.2)
    probed = [line for line in b.all("DMESG")
              if "arm-smmu-v3" in line and "(features 0x" in line]
    tap.ok(want in iommus and probed, names[1],
           f"/sys/class/iommu: {iommus}\ndmesg: {b.all('DMESG')}")

    pci = {p.split()[0]: p.split() for p in b.all("PCI")}
    dev = pci.get(DEVICE_BDF)
    group = dev[3] if dev else "-"
    tap.ok(dev is not None and dev[1] == "0x1af4:0x1042" and group != "-",
           names[2], f"PCI devices: {b.all('PCI')}")

    resv = [r.split()[1:] for r in b.all("RESV") if r.split()[0] == group]
    tap.ok(list(SW_MSI) in resv, names[3],
           f"group {group} reserved regions: {resv}, want {SW_MSI}")

    try:
        iort = g.parse_iort(b.all("IORT")[0])
        types = [n["type"] for n in iort["nodes"]]
        smmus = [n for n in iort["nodes"] if n["type"] == 4]
        good = (0 in types and 2 in types and len(smmus) == 1 and
                g.smmuv3_base(smmus[0]) == SMMU_BASE)
        diag = f"revision {iort['revision']}, nodes {[n['name'] for n in iort['nodes']]}"
    except (IndexError, ValueError) as e:
        good, diag = False, f"no usable IORT from the guest: {e}"
    tap.ok(good, names[4], diag)


def main():
    tap = g.Tap()
    with open(os.path.join(os.path.dirname(__file__), "init-facts.sh")) as f:
        init = f.read()
    for kernel in g.KERNELS:
        run(tap, kernel, init)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
