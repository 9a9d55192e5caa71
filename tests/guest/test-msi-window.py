#!/usr/bin/env python3
"""Real guests see the machine's MSI window (issue: one MSI window).

Debian's arm64 Linux 6.12 and 7.2 boot through UEFI (ACPI) on -M virt with
GICv3 and its ITS.  The host model (tests/hostmodel, LD_PRELOADed into
QEMU) provides a virtio-rng PCI function that QEMU passes through with
vfio-pci and the iommufd backend, behind

- arm-smmuv3,accel=on: the guest owns stage 1 on the modelled host SMMU.
  QEMU sets the machine's window on the host before the device is
  attached; the guest's IORT (revision 5) has an RMR node for it, and the
  guest lists it as the device's direct region and maps it 1:1,
  so that the device's MSIs, which the host programs at window + 0x40,
  pass the guest's stage 1.  The guest reads /dev/hwrng: DMA through the
  nested stages, interrupts through the window.
- virtio-iommu-pci: PROBE reports the window as the proposed DIRECT
  subtype; Linux, which does not know it, treats it as reserved.

The negative control boots the accel case with -M virt,x-msi-window-rmr=off:
the guest is not told about the window, and the device's MSIs fault in
its stage 1 (the model's walk, the guest SMMU driver's events, a read of
/dev/hwrng that times out).

TAP output, one line per check.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guestlib as g  # noqa: E402
import nested as n  # noqa: E402
from nested import DOORBELL, GUEST_BDF, HWRNG_BYTES, MACHINE  # noqa: E402
from nested import WINDOW  # noqa: E402


def check_rng_and_msis(tap, name, b, trace):
    data = bytes.fromhex("".join(b.all("HWRNG")))
    faults = n.faults(trace)
    dma = [r for r in trace if r["kind"] == "dma"]
    tap.ok(len(data) == HWRNG_BYTES and any(data) and dma and not faults,
           f"{name}: guest reads {HWRNG_BYTES} bytes from /dev/hwrng, the "
           "device's DMA translates without faults",
           f"dd: {b.all('HWRNG_RC')}, {len(data)} bytes, {len(dma)} dma "
           f"records\nfaults:\n{g.summary(faults)}\n"
           f"dmesg: {b.all('DMESG')[-12:]}")
    msis = [r for r in trace if r["kind"] == "msi"]
    good = [r for r in msis if r.get("addr") == DOORBELL and
            r.get("result") == "delivered"]
    tap.ok(good and len(good) == len(msis),
           f"{name}: the device's MSIs are delivered at {DOORBELL}, in the "
           "window", f"msi records:\n{g.summary(msis)}\n"
           f"interrupts: {b.all('IRQ')}")


def run_accel(kernel):
    return n.boot(kernel, "accel",
                  ["-device", "arm-smmuv3,primary-bus=pcie.0,accel=on"],
                  ["virtio-rng"])


def accel(tap, kernel, result):
    name = f"linux {kernel}, accel SMMUv3"
    b, trace = result
    if not n.booted(tap, name, b, 5):
        return
    options = [r for r in trace if r.get("cmd") == "IOMMU_OPTION" and
               r.get("option_id") == n.OPT_SW_MSI_START and r.get("op") == 0]
    attach = min((r["seq"] for r in trace if r["kind"] == "attach"),
                 default=-1)
    tap.ok(options and options[0].get("val64") == hex(WINDOW[0]) and
           options[0].get("ret") == 0 and options[0]["seq"] < attach,
           f"{name}: QEMU set the window on the host before attaching",
           f"IOMMU_OPTION set: {options}, first attach seq {attach}")
    rev, rmrs = n.rmr_nodes(b)
    got = [(r["flags"], r["base"], r["length"]) for r in rmrs]
    tap.ok(rev == 5 and got == [(0, WINDOW[0], WINDOW[1] - WINDOW[0] + 1)],
           f"{name}: the guest's IORT is revision 5 with one RMR node for "
           "the window (flags 0: remapping not permitted)",
           f"revision {rev}, RMR nodes (flags, base, length): {rmrs}")
    tap.ok(n.resv_line(b, "direct"),
           f"{name}: the guest lists the window as {GUEST_BDF}'s "
           "direct region",
           f"PCI: {b.all('PCI')}\nreserved regions: {b.all('RESV')}")
    check_rng_and_msis(tap, name, b, trace)


def run_virtio_iommu(kernel):
    # behind virtio-iommu the window is opt-in: named on the machine
    return n.boot(kernel, "virtio-iommu",
                  ["-device", "virtio-iommu-pci",
                   "-trace", "virtio_iommu_fill_resv_property"],
                  ["virtio-iommu", "virtio-rng"],
                  machine=n.MACHINE + f",msi-window=0x{n.WINDOW[0]:x}")


def virtio_iommu(tap, kernel, result):
    name = f"linux {kernel}, virtio-iommu"
    b, trace = result
    if not n.booted(tap, name, b, 3):
        return
    # QEMU's trace (stderr, in the console log): what PROBE answered for
    # the device's endpoint (its requester ID, 0x10)
    probe = f"dev= 16, type=2 start={hex(WINDOW[0])} end={hex(WINDOW[1])}"
    sent = [ln for ln in b.console.splitlines()
            if "virtio_iommu_fill_resv_property" in ln and probe in ln]
    warned = [d for d in b.all("DMESG")
              if "unknown resv mem subtype 0x2" in d]
    tap.ok(sent and n.resv_line(b, "reserved"),
           f"{name}: PROBE reports the window as DIRECT; the guest driver "
           "does not know it and lists the window as reserved",
           f"PROBE trace lines with {probe!r}: {sent}\nPCI: {b.all('PCI')}\n"
           f"reserved regions: {b.all('RESV')}")
    for w in warned:
        print(f"# guest: {w}")
    check_rng_and_msis(tap, name, b, trace)


def run_negative(kernel):
    """The same accel boot with the window left out of the IORT."""
    return n.boot(kernel, "no-rmr",
                  ["-device", "arm-smmuv3,primary-bus=pcie.0,accel=on"],
                  ["virtio-rng"], machine=MACHINE + ",x-msi-window-rmr=off",
                  append="HWRNG_TIMEOUT=8")


def negative(tap, kernel, result):
    name = f"linux {kernel}, accel SMMUv3 without RMR"
    b, trace = result
    if not n.booted(tap, name, b, 4):
        return
    rev, rmrs = n.rmr_nodes(b)
    tap.ok(rev == 3 and not rmrs and not n.resv_line(b, "direct"),
           f"{name}: the guest is not told about the window",
           f"IORT revision {rev}, RMR nodes {rmrs}\n"
           f"reserved regions: {b.all('RESV')}")
    # the device's MSI write misses the guest's stage 1
    faults = [r for r in trace if r["kind"] == "walk" and
              r.get("iova") == DOORBELL and r.get("result") != "doorbell"]
    msis = [r for r in trace if r["kind"] == "msi"]
    tap.ok(faults and not [r for r in msis
                           if r.get("result") == "delivered"],
           f"{name}: the model faults the device's MSI writes to "
           f"{DOORBELL} in the guest's stage 1",
           f"walks at {DOORBELL}:\n{g.summary(faults)}\n"
           f"msi records:\n{g.summary(msis)}")
    for f in faults[:1]:
        print(f"# model: {f}")
    events = [d for d in b.all("DMESG")
              if "arm-smmu-v3" in d and "event" in d]
    tap.ok(events, f"{name}: the guest's SMMU driver logs the fault events",
           f"dmesg: {b.all('DMESG')[-15:]}")
    for e in events[:2]:
        print(f"# guest: {e}")
    rc = b.all("HWRNG_RC")
    tap.ok(rc and rc[0] != "0" and
           not bytes.fromhex("".join(b.all("HWRNG"))),
           f"{name}: the guest's read of /dev/hwrng times out",
           f"dd exit status {rc}, data {b.all('HWRNG')}")


def main():
    tap = g.Tap()
    jobs = []
    for kernel in g.KERNELS:
        lacking = n.missing(kernel)
        if lacking:
            tap.skip(f"linux {kernel}: MSI window guests",
                     "missing " + ", ".join(lacking) +
                     " (run 'make guest' and 'make build')")
            continue
        jobs += [(kernel, run_accel, accel), (kernel, run_negative, negative),
                 (kernel, run_virtio_iommu, virtio_iommu)]
    # two boots at a time: the machine has two cores
    n.run_jobs(tap, jobs)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
