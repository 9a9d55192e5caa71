#!/usr/bin/env python3
"""The real-kernel rig in make check: the series on a real Linux 7.2 host.

One L0 boot (tests/rig/rig.py) of L1 (Linux 7.2, iommufd, arm-smmu-v3
nesting, KVM) runs, for Debian's arm64 6.12 and 7.2 as L2:

- accel: L0's virtio-rng passed through to L2 with arm-smmuv3,accel=on,
  the machine's window set to Linux 7.2's own (the kernel lacks the
  proposed SW_MSI option): IORT RMR, the window "direct" for the device,
  /dev/hwrng through nested translation, its MSIs through KVM's route and
  L1's ITS, no SMMU event in L1 or L2, the vIOMMU and the guest's STE in
  QEMU's traces;
- the negative control x-msi-window-rmr=off: no RMR, the MSI write faults
  in L2's SMMU driver, no interrupt;
- the default window on this kernel: QEMU refuses, naming the option.

TAP output.  A missing artifact is a failure: make check builds them.
"""

import errno
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rig  # noqa: E402

sys.path.insert(0, os.path.join(rig.TOP, "tests", "guest"))
import guestlib as g  # noqa: E402
import nested as n  # noqa: E402

WINDOW = (0x08000000, 0x080fffff)
DOORBELL_IOVA = "0x8000040"
GUEST_BDF = "0000:01:00.0"      # behind the root port
BLK_MIB = 16
ACCEL = ("-object iommufd,id=iommufd0 "
         "-device arm-smmuv3,primary-bus=pcie.0,accel=on "
         "-device pcie-root-port,id=rp0,chassis=1")
DEVICES = f"{ACCEL} -device vfio-pci,host={rig.RNG_BDF},bus=rp0,iommufd=iommufd0"
MWIN = f",msi-window={rig.KERNEL_WINDOW}"
RNG = f"acpi=force HWRNG_BYTES={rig.HWRNG_BYTES} HWRNG_TIMEOUT=30"


def run_sh(kernels):
    lines = [f"to_vfio {rig.RNG_BDF} VFIO_RNG", f"to_vfio {rig.BLK_BDF}"]
    for k in kernels:
        lines += [
            f'l2 accel-{k} {k} "{MWIN}" "{RNG}" {DEVICES}',
            f'l2 norm-{k} {k} "{MWIN},x-msi-window-rmr=off" '
            f'"acpi=force HWRNG_BYTES={rig.HWRNG_BYTES} HWRNG_TIMEOUT=10" '
            f"{DEVICES}",
            # DMA-heavy: L0's virtio-blk, data written and read back
            f'l2 blk-{k} {k} "{MWIN}" "acpi=force BLK_MIB={BLK_MIB}" '
            f"{ACCEL} -device vfio-pci,host={rig.BLK_BDF},bus=rp0,"
            "iommufd=iommufd0",
            # virtio-iommu, the window named on the machine (opt-in)
            f'l2 viommu-{k} {k} "{MWIN}" "{RNG}" '
            "-object iommufd,id=iommufd0 -device virtio-iommu-pci "
            f"-device vfio-pci,host={rig.RNG_BDF},iommufd=iommufd0",
            # as libvirt starts QEMU: descriptors, no sysfs paths
            f'l2 fds-{k} {k} "{MWIN}" "{RNG}" '
            "-object iommufd,id=iommufd0,fd=3 "
            "-device arm-smmuv3,primary-bus=pcie.0,accel=on "
            "-device pcie-root-port,id=rp0,chassis=1 "
            "-device vfio-pci,id=hostdev0,fd=4,bus=rp0,iommufd=iommufd0 "
            '3<>/dev/iommu 4<>"/dev/vfio/devices/$VFIO_RNG"',
            # hot-plug into the running L2 and out again
            f'l2_plug plug-{k} {k} "{MWIN}" '
            f'"{RNG} WAIT_FOR={GUEST_BDF} WAIT_GONE={GUEST_BDF}" '
            f'"vfio-pci,host={rig.RNG_BDF},bus=rp0,iommufd=iommufd0" {ACCEL}',
        ]
    lines += [f'refused default-window "" {DEVICES}']
    # what L1's SMMU driver logged during each scenario
    out = []
    for line in lines:
        out.append(line)
        m = re.match(r"(l2|l2_plug) (\S+) ", line)
        if m:
            out.append(f"l1_events {m.group(2)}")
    return "\n".join(out) + "\n"


def resv(b, kind):
    groups = {p.split()[0]: p.split()[-1] for p in b.all("PCI")}
    want = [groups.get(GUEST_BDF), f"0x{WINDOW[0]:016x}",
            f"0x{WINDOW[1]:016x}", kind]
    return any(r.split() == want for r in b.all("RESV"))


def irq_count(b, bdf=GUEST_BDF):
    """The MSI/MSI-X interrupts of function BDF in L2 so far"""
    total = 0
    for line in b.all("IRQ"):
        f = line.split()
        if (f"-MSIX-{bdf} " in line or f"-MSI-{bdf} " in line) and \
                len(f) > 2 and f[1].isdigit():
            total += int(f[1])
    return total


def rng_read(b):
    """the bytes L2 read from /dev/hwrng, if virtio-rng is its RNG"""
    if not any(c.startswith("virtio_rng") for c in b.all("RNG_CURRENT")):
        return b""
    return bytes.fromhex("".join(b.all("HWRNG")))


def smmu_events(b):
    """what L2's SMMU driver reported: events, command queue errors"""
    return [d for d in b.all("DMESG")
            if "arm-smmu-v3" in d and
            re.search(r"event|F_|error|timeout|abort", d, re.I)]


def check_accel(tap, run, k):
    b = run.get(f"accel-{k}")
    name = f"rig, L2 linux {k}, accel"
    if not tap.ok(b is not None and b.completed,
                  f"{name}: L2 boots under KVM in L1 and reports",
                  b.tail(30) if b else run.console[-3000:]):
        for _ in range(5):
            tap.ok(False, f"{name}: (no L2 report)")
        return
    rev, rmrs = n.rmr_nodes(b)
    tap.ok(rev == 5 and len(rmrs) == 1 and rmrs[0]["base"] == WINDOW[0] and
           rmrs[0]["flags"] == 0,
           f"{name}: IORT revision 5 with an RMR for the window, flags 0",
           f"revision {rev}, RMR nodes {rmrs}")
    tap.ok(resv(b, "direct"),
           f"{name}: the device lists the window as direct",
           f"PCI {b.all('PCI')}\nRESV {b.all('RESV')}")
    data = rng_read(b)
    tap.ok(len(data) == rig.HWRNG_BYTES and any(data),
           f"{name}: /dev/hwrng reads through nested translation",
           f"dd {b.all('HWRNG_RC')}, {len(data)} bytes")
    tap.ok(irq_count(b) > 0,
           f"{name}: the device's MSIs arrive (KVM's MSI route, L1's ITS)",
           f"IRQ {b.all('IRQ')}")
    l1_events = new_l1_events(run, f"accel-{k}")
    allocs = b.traces("iommufd_backend_alloc_viommu")
    installs = [t for t in b.traces("smmuv3_accel_install")
                if "stage-1" in t[1]]
    tap.ok(not smmu_events(b) and not l1_events and allocs and
           all(a[1].endswith("(0)") for a in allocs) and installs,
           f"{name}: no SMMU event in L1 or L2; the vIOMMU and the guest's "
           "stage-1 STE in QEMU's traces",
           f"L2 events {smmu_events(b)}\nL1 events {l1_events}\n"
           f"viommu {allocs}\ninstalls {installs[:3]}")


def check_negative(tap, run, k):
    b = run.get(f"norm-{k}")
    name = f"rig, L2 linux {k}, x-msi-window-rmr=off"
    if not tap.ok(b is not None and b.completed,
                  f"{name}: L2 boots and reports",
                  b.tail(30) if b else run.console[-3000:]):
        tap.ok(False, f"{name}: (no L2 report)")
        return
    rev, rmrs = n.rmr_nodes(b)
    data = rng_read(b)
    # 6.12 prints the record's words, 7.2 also decodes it
    faults = [d for d in b.all("DMESG") if "arm-smmu-v3" in d and
              (f"iova: {DOORBELL_IOVA}" in d or
               f"0x{int(DOORBELL_IOVA, 16):016x}" in d)]
    tap.ok(not rmrs and len(data) < rig.HWRNG_BYTES and faults and
           irq_count(b) == 0,
           f"{name}: no RMR; the MSI write faults at the window in L2's "
           "SMMU driver and no interrupt arrives",
           f"revision {rev}, RMR {rmrs}; {len(data)} bytes; IRQ "
           f"{b.all('IRQ')}\nevents {smmu_events(b)}\nfaults {faults}")


def booted(tap, name, b, run, count):
    if tap.ok(b is not None and b.completed, f"{name}: L2 boots and reports",
              b.tail(30) if b else run.console[-3000:]):
        return True
    for _ in range(count):
        tap.ok(False, f"{name}: (no L2 report)")
    return False


def new_l1_events(run, tag):
    return [v for v in run.l1.all("L1") if v.startswith(f"smmu-event {tag} ")]


def check_blk(tap, run, k):
    b = run.get(f"blk-{k}")
    name = f"rig, L2 linux {k}, virtio-blk"
    if not booted(tap, name, b, run, 1):
        return
    blk = [line.split() for line in b.all("BLK")]
    tap.ok(len(blk) == 1 and blk[0][:2] == [str(BLK_MIB), "same"] and
           not smmu_events(b) and not new_l1_events(run, f"blk-{k}"),
           f"{name}: {BLK_MIB} MiB written to L0's disk and read back "
           "through nested translation, the same data, no SMMU event",
           f"BLK {b.all('BLK')}\nL2 events {smmu_events(b)}\n"
           f"L1 events {new_l1_events(run, f'blk-{k}')}")


def rng_group(b):
    """the IOMMU group of the virtio-rng function, wherever it sits"""
    for p in b.all("PCI"):
        f = p.split()
        if len(f) >= 4 and f[1] == "0x1af4:0x1044":
            return f[0], f[3]
    return None, None


def check_viommu(tap, run, k):
    b = run.get(f"viommu-{k}")
    name = f"rig, L2 linux {k}, virtio-iommu"
    if not booted(tap, name, b, run, 1):
        return
    bdf, grp = rng_group(b)
    # the guest's own ITS doorbell (msi) may split the reserved window
    resv = any(r.split()[:2] == [grp, f"0x{WINDOW[0]:016x}"] and
               r.split()[3] == "reserved" for r in b.all("RESV"))
    data = rng_read(b)
    events = smmu_events(b) + new_l1_events(run, f"viommu-{k}")
    tap.ok(resv and len(data) == rig.HWRNG_BYTES and any(data) and
           irq_count(b, bdf) > 0 and not events,
           f"{name}: the window reserved for the device ({bdf}), "
           "/dev/hwrng reads, its MSIs arrive, no SMMU event in L1",
           f"PCI {b.all('PCI')}\nRESV {b.all('RESV')}\n{len(data)} bytes, "
           f"IRQ {b.all('IRQ')}\nevents {events}")


def check_fds(tap, run, k):
    b = run.get(f"fds-{k}")
    name = f"rig, L2 linux {k}, descriptors as libvirt passes them"
    if not booted(tap, name, b, run, 1):
        return
    connects = b.traces("iommufd_backend_connect")
    data = rng_read(b)
    events = smmu_events(b) + new_l1_events(run, f"fds-{k}")
    tap.ok(any("fd=3 owned=0" in c[1] for c in connects) and
           resv(b, "direct") and len(data) == rig.HWRNG_BYTES and
           irq_count(b) > 0 and not events,
           f"{name}: -object iommufd,fd=3 and vfio-pci,fd=4 opened by the "
           "launcher: direct window, /dev/hwrng, MSIs, no SMMU event",
           f"connect {connects}\nRESV {b.all('RESV')}\n{len(data)} bytes, "
           f"IRQ {b.all('IRQ')}\nevents {events}")


def objects_left(b):
    """the iommufd objects QEMU allocated and has not freed, replayed in
    trace order (ids come back after a free: a set would hide a leak);
    None if nothing was allocated"""
    keys = {"iommufd_backend_alloc_hwpt": "out_hwpt",
            "iommufd_backend_alloc_viommu": "viommu_id",
            "iommufd_backend_alloc_vdev": "vdev_id",
            "iommufd_backend_alloc_veventq": "veventq_id",
            "iommufd_backend_alloc_ioas": "ioas"}
    live, seen = {}, False
    for line in b.console.splitlines():
        for ev, key in keys.items():
            m = re.search(ev + r" .*\b" + key + r"=(\d+)", line)
            # an IOAS is traced only once it exists; the others with (ret)
            if m and (ev.endswith("_ioas") or line.rstrip().endswith("(0)")):
                live[int(m.group(1))] = live.get(int(m.group(1)), 0) + 1
                seen = True
        m = re.search(r"iommufd_backend_free_id .*\bid=(\d+) \(0\)", line)
        if m and live.get(int(m.group(1))):
            live[int(m.group(1))] -= 1
    return sorted(i for i, n in live.items() if n) if seen else None


def check_plug(tap, run, k):
    b = run.get(f"plug-{k}")
    name = f"rig, L2 linux {k}, hot-plug and unplug"
    if not booted(tap, name, b, run, 2):
        return
    data = rng_read(b)
    tap.ok(b.all("ARRIVED") and resv(b, "direct") and
           len(data) == rig.HWRNG_BYTES and irq_count(b) > 0 and
           not smmu_events(b) and not new_l1_events(run, f"plug-{k}"),
           f"{name}: device_add while L2 waits: direct window, /dev/hwrng, "
           "MSIs, no SMMU event",
           f"arrived {b.all('ARRIVED')} not {b.all('NOT_ARRIVED')}\n"
           f"RESV {b.all('RESV')}\n{len(data)} bytes, IRQ {b.all('IRQ')}\n"
           f"monitor {[v for v in b.all('L1') if 'monitor' in v]}")
    # QEMU frees nothing at exit (the accel scenario, never unplugged,
    # ends with its objects allocated): what is freed here, the unplug did
    left = objects_left(b)
    control = objects_left(run.get(f"accel-{k}")) \
        if run.get(f"accel-{k}") else None
    unset = b.traces("smmuv3_accel_unset_iommu_device")
    tap.ok(b.all("GONE") and unset and left == [] and control,
           f"{name}: device_del: L2 sees the device go, QEMU releases it, "
           "and every iommufd object it allocated is freed",
           f"gone {b.all('GONE')}, unset {unset}; left {left}; without "
           f"unplug left at exit {control}")


# Answers of Linux 7.2 the host model does not give, and why
# (docs/devel/testing/host-model.rst in the series, "Known divergences")
KNOWN_DIVERGENCES = {
    ("iommufd_backend_map_dma", -errno.EFAULT):
        "QEMU maps the device's mmap()ed BARs for peer-to-peer; Linux "
        "refuses VM_PFNMAP memory; the model's BARs are not mmap-able, so "
        "QEMU never asks",
    ("iommufd_backend_unmap_dma_non_exist", -errno.ENOENT):
        "QEMU's unmap of the BAR that failed to map, as above",
}


STRERROR = {os.strerror(e): e for e in errno.errorcode}


def ioctl_answers(console):
    """{(trace event, 0 or -errno)} of QEMU's iommufd_backend_* traces
    (each iommufd ioctl with its result) and iommufd_cdev_* ones (VFIO's
    bind, attach and detach)"""
    out = set()
    lines = console.splitlines()
    for i, line in enumerate(lines):
        # VFIO's cdev traces are of successes only
        c = re.match(r"(?:\d+@[\d.]+:)?(iommufd_cdev_(connect_and_bind|"
                     r"attach_ioas_hwpt|detach_ioas_hwpt)) ", line)
        if c:
            out.add((c.group(1), 0))
            continue
        m = re.match(r"(?:\d+@[\d.]+:)?(iommufd_backend_\w+) .*\((-?\d+)\)$",
                     line.rstrip())
        if not m:
            continue
        op, ret = m.group(1), int(m.group(2))
        if ret == -1:
            # upstream's traces print -1; the errno follows in a warning
            ret = -errno.ENOENT if op.endswith("_non_exist") else -1
            for nxt in lines[i + 1:i + 4] if ret == -1 else []:
                e = re.search(r"\) = (-\d+) \(|failed: ([^,]+)", nxt)
                if e and e.group(1):
                    ret = int(e.group(1))
                elif e and e.group(2) in STRERROR:
                    ret = -STRERROR[e.group(2)]
                if e:
                    break
        out.add((op, ret))
    return out


def check_replay(tap, run, k):
    """The accel scenario again, against the host model (x86 TCG), and
    the answers of the two kernels compared"""
    b = run.get(f"accel-{k}")
    name = f"rig vs host model, L2 linux {k}"
    lacking = n.missing(k, ("virtio-rng",))
    if b is None or lacking:
        tap.ok(False, f"{name}: the same iommufd calls get the same answers",
               f"no rig scenario or missing {lacking}")
        return
    config = n.MODEL_CONFIG + "kernel release=7.2 sw-msi-option=off\n"
    mb, _ = n.boot(k, "replay", ["-device",
                                 "arm-smmuv3,primary-bus=pcie.0,accel=on",
                                 "-device", "pcie-root-port,id=rp0,chassis=1",
                                 "-trace", "iommufd_backend_*",
                                 "-trace", "iommufd_cdev_*"],
                   ["virtio-rng"], config=config,
                   machine="virt,gic-version=3" + MWIN,
                   vfio=[(n.HOST_BDF, n.VFIO_INDEX, "bus=rp0")])
    real, model = ioctl_answers(b.console), ioctl_answers(mb.console)
    # known divergences are answers only the real kernel gives
    unknown = sorted((real - model - set(KNOWN_DIVERGENCES)) | (model - real))
    known = sorted((real - model) & set(KNOWN_DIVERGENCES))
    stale = sorted(set(KNOWN_DIVERGENCES) - (real - model))
    if stale:
        print(f"# {name}: listed divergences not seen: {stale}", flush=True)
    print(f"# {name}: real {sorted(real)}", flush=True)
    print(f"# {name}: model {sorted(model)}", flush=True)
    tap.ok(mb.completed and real and not unknown,
           f"{name}: the iommufd calls answer as the real kernel does, 0 or "
           f"the errno QEMU reports ({len(known)} known divergences)",
           f"model guest completed: {mb.completed}\nonly real: "
           f"{sorted(real - model)}\nonly model: {sorted(model - real)}\n"
           f"not listed as known: {unknown}")


def check_refused(tap, run):
    b = run.get("default-window")
    tap.ok(b is not None and b.returncode == 1 and
           "lacks IOMMU_OPTION_SW_MSI_START" in b.console and
           "msi-window=0x8000000" in b.console,
           "rig: the default window on stock Linux 7.2: QEMU refuses, "
           "naming the option and the kernel's window",
           b.console[-2000:] if b else "no such scenario")


def main():
    tap = g.Tap()
    lacking = rig.missing()
    if lacking:
        tap.ok(False, "rig: the rig's artifacts are built",
               "missing:\n" + "\n".join(lacking))
        return tap.done()
    kernels = list(g.KERNELS)
    run = rig.boot("check", run_sh(kernels), kernels)
    print(f"# L0 run: {run.seconds:.0f} s wall, status {run.status}; "
          f"console in {run.log}", flush=True)
    tap.ok(run.status == 0 and set(run.scenarios) ==
           {f"{s}-{k}" for s in ("accel", "norm", "blk", "viommu", "fds",
                                 "plug") for k in kernels} |
           {"default-window"},
           "rig: L0 boots L1 (Linux 7.2, UEFI, ACPI), which runs every "
           "scenario and powers off",
           f"status {run.status}, scenarios {sorted(run.scenarios)}\n"
           f"{run.output[-1500:]}")
    for k in kernels:
        check_accel(tap, run, k)
        check_negative(tap, run, k)
        check_blk(tap, run, k)
        check_viommu(tap, run, k)
        check_fds(tap, run, k)
        check_plug(tap, run, k)
        check_replay(tap, run, k)
    check_refused(tap, run)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
