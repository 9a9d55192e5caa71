#!/usr/bin/env python3
"""make bench, the real host: L2 disk I/O through L0's virtio-blk passed
through by L1 (Linux 7.2) to a Debian 7.2 guest, with (a) no vIOMMU,
(b) arm-smmuv3,accel=on, (c) virtio-iommu, the guest's IOMMU in strict
mode, side by side in one L0 boot.  Figures, not a test
(docs/benchmarks.md): throughput as a ratio to (a), host invalidation
ioctls per guest CMD_SYNC and per second, guest invalidation commands per
second.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rig  # noqa: E402

MIB = int(os.environ.get("BENCH_BLK_MIB", "64"))
KERNEL = "7.2"
MWIN = f",msi-window={rig.KERNEL_WINDOW}"
VFIO = f"vfio-pci,host={rig.BLK_BDF},iommufd=iommufd0"
CONFIGS = [
    ("none", "-object iommufd,id=iommufd0 -device " + VFIO),
    ("accel", "-object iommufd,id=iommufd0 "
     "-device arm-smmuv3,primary-bus=pcie.0,accel=on "
     "-device pcie-root-port,id=rp0,chassis=1 -device " + VFIO + ",bus=rp0"),
    ("virtio-iommu", "-object iommufd,id=iommufd0 -device virtio-iommu-pci "
     "-device " + VFIO),
]


def counts(run, name, when):
    for v in run.l1.all("L1"):
        if v.startswith(f"bench-counts {name} {when} "):
            return {k: int(x) for k, x in re.findall(r"(\w+)=(\d+)", v)}
    return None


def main():
    lacking = rig.missing()
    if lacking:
        print("rig bench: missing " + "; ".join(lacking) +
              " (run 'make rig guest')")
        return 1
    lines = [f"to_vfio {rig.BLK_BDF}"]
    for name, devices in CONFIGS:
        lines.append(f'bench_l2 bench-{name} {KERNEL} "{MWIN}" '
                     f'"acpi=force iommu.strict=1 BLK_MIB={MIB}" {devices}')
    run = rig.boot("bench", "\n".join(lines) + "\n", [KERNEL])
    print(f"L0 boot: {run.seconds:.0f} s wall (console {run.log})")
    rows = []
    for name, _ in CONFIGS:
        b = run.get(f"bench-{name}")
        blk = [x.split() for x in b.all("BLK")] if b else []
        c0, c1 = counts(run, f"bench-{name}", "begin"), \
            counts(run, f"bench-{name}", "end")
        if not blk or len(blk[0]) < 4 or blk[0][1] != "same" or not c0 \
                or not c1:
            print(f"{name}: no result ({blk}, {c0}, {c1})")
            return 1
        secs = float(blk[0][3]) - float(blk[0][2])
        d = {k: c1[k] - c0[k] for k in c1}
        rows.append((name, secs, d))
    base = rows[0][1]
    print(f"\n{MIB} MiB written (fsync) and read back (page cache dropped) "
          f"by Debian {KERNEL} in L2, iommu.strict=1\n")
    print("| L2's IOMMU | I/O s | MiB/s | throughput vs none "
          "| guest CMD_SYNCs "
          "| guest invalidations | host ioctls | ioctls/CMD_SYNC "
          "| ioctls/s | invalidations/s | virtio-iommu UNMAPs/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, secs, d in rows:
        per = d["ioctls"] / d["syncs"] if d["syncs"] else 0
        print(f"| {name} | {secs:.2f} | {2 * MIB / secs:.1f} | "
              f"{base / secs:.2f} | {d['syncs']} | {d['inval']} | "
              f"{d['ioctls']} | {per:.2f} | {d['ioctls'] / secs:.0f} | "
              f"{d['inval'] / secs:.0f} | {d['unmaps'] / secs:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
