#!/usr/bin/env python3
"""Real guest driving the host model's virtio-rng through vfio-pci (iommufd).

Boots Debian's arm64 Linux 6.12 through UEFI (ACPI) on plain -M virt (no
vIOMMU: the device is attached to an IOAS, stage 2 only) with the host
model (tests/hostmodel, LD_PRELOADed into QEMU) providing a virtio-rng PCI
function that QEMU passes through with vfio-pci and the iommufd backend.
Checks from inside the guest that the device shows up, virtio_rng binds and
/dev/hwrng returns data, and from the model's trace that the function served
the requests by DMA without faults and that its MSI-X interrupts reached the
ITS through the software MSI window.  TAP output.

Debian ships virtio-rng as a module; the test takes it from the unpacked
linux-image (6.12) or linux-modules (7.2) package into the initramfs.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guestlib as g  # noqa: E402

HOST_BDF = "0000:01:00.0"       # the function's name on the modelled host
VFIO_INDEX = 3                  # /dev/vfio/devices/vfio3
MODEL_CONFIG = f"""\
smmu smmu0
device {HOST_BDF} vfio={VFIO_INDEX} smmu=smmu0 sid=0x100 function=virtio-rng
"""
GUEST_BDF = "0000:00:02.0"
VIRTIO_RNG_ID = "0x1af4:0x1044"  # modern virtio-pci, virtio device id 4
HWRNG_BYTES = 64                # what init-hwrng.sh reads from /dev/hwrng
# the SMMU driver's software MSI window starts at 0x08000000; the model
# puts the host ITS page first in it, GITS_TRANSLATER is at offset 0x40
SW_MSI_DOORBELL = "0x8000040"

NAMES = ["guest boots and reports",
         "virtio-rng device is seen and virtio_rng binds",
         f"guest reads {HWRNG_BYTES} bytes from /dev/hwrng",
         "model served the requests by DMA without faults",
         "MSI-X delivered through the SW_MSI window"]


def missing(kernel):
    """What this boot needs and this machine lacks."""
    out = g.missing_artifacts(kernel)
    if not os.path.exists(g.HOSTMODEL_LIB):
        out.append(f"host model library ({g.HOSTMODEL_LIB})")
    if not os.path.exists(g.module_path(kernel, "virtio-rng")):
        out.append("virtio-rng module "
                   f"({g.module_path(kernel, 'virtio-rng')})")
    return out


def check_guest(tap, names, b):
    pci = {p.split()[0]: p.split() for p in b.all("PCI")}
    dev = pci.get(GUEST_BDF)
    virtio = [v.split() for v in b.all("VIRTIO")]
    rng = [v for v in virtio if len(v) == 4 and v[1] == "0x0004" and
           v[2] == "virtio_rng" and v[3] == GUEST_BDF]
    current = " ".join(b.all("RNG_CURRENT"))
    available = " ".join(b.all("RNG_AVAILABLE")).split()
    hwrng = [r for r in available if r.startswith("virtio_rng.")]
    tap.ok(dev is not None and dev[1] == VIRTIO_RNG_ID and
           dev[3] == "virtio-pci" and rng and hwrng and
           current.startswith("virtio_rng."), names[1],
           f"insmod: {b.all('INSMOD')}\nPCI devices: {b.all('PCI')}\n"
           f"virtio devices: {b.all('VIRTIO')}\nrng_current: {current!r}, "
           f"rng_available: {available}\ndmesg: {b.all('DMESG')}")

    data = bytes.fromhex("".join(b.all("HWRNG")))
    for line in b.all("HEXDUMP"):
        print(f"# hwrng: {line}")
    tap.ok(len(data) == HWRNG_BYTES and any(data), names[2],
           f"dd: {b.all('HWRNG_RC')}, got {len(data)} bytes: {data.hex()}\n"
           f"interrupts: {b.all('IRQ')}")
    return len(data)


def check_trace(tap, names, trace, nbytes):
    for r in trace:
        if r["kind"] == "attach":
            print(f"# model: {r.get('dev')} attached to {r.get('type')} "
                  f"{r.get('pt_id')}")
        elif r["kind"] == "msi-prepare":
            print(f"# model: MSI address {r.get('msi_addr')} -> doorbell "
                  f"{r.get('doorbell')}")
    # UEFI's VirtioRngDxe polls the device too (the EFI stub asks for a
    # seed); Linux's requests are the ones after MSI-X was enabled
    # (VFIO_PCI_MSIX_IRQ_INDEX is 2)
    msix_on = min((r["seq"] for r in trace if r["kind"] == "ioctl" and
                   r.get("cmd") == "VFIO_DEVICE_SET_IRQS" and
                   r.get("index") == 2), default=None)
    requests = [r for r in trace if r["kind"] == "virtio-rng"]
    served = sum(r.get("bytes", 0) for r in requests
                 if msix_on is not None and r["seq"] > msix_on)
    firmware = sum(r.get("bytes", 0) for r in requests
                   if msix_on is None or r["seq"] < msix_on)
    errors = [r for r in requests if "error" in r]
    dma = [r for r in trace if r["kind"] == "dma"]
    bad_dma = [r for r in dma if r.get("result") != "ok"]
    host_events = [r for r in trace if r["kind"] == "event-host"]
    tap.ok(served >= max(nbytes, 1) and not errors and
           any(r.get("result") == "ok" for r in dma) and
           not bad_dma and not host_events, names[3],
           f"{len(requests)} virtio-rng records, {served} bytes served "
           f"after MSI-X was enabled (seq {msix_on}; the guest read "
           f"{nbytes}), {firmware} before, {len(dma)} dma records\n"
           f"device errors:\n{g.summary(errors)}\n"
           f"faulted DMA:\n{g.summary(bad_dma)}\n"
           f"host events:\n{g.summary(host_events)}")

    msis = [r for r in trace if r["kind"] == "msi"]
    good = [r for r in msis if r.get("type") == "msix" and
            r.get("result") == "delivered" and
            r.get("addr") == SW_MSI_DOORBELL]
    bad = [r for r in msis if r.get("result") != "delivered"]
    tap.ok(good and not bad, names[4],
           f"{len(msis)} msi records, {len(good)} delivered at "
           f"{SW_MSI_DOORBELL}\nnot delivered:\n{g.summary(bad)}\n"
           f"all:\n{g.summary(msis)}")


def run(tap, kernel, init):
    names = [f"linux {kernel}: {n}" for n in NAMES]
    lacking = missing(kernel)
    if lacking:
        for n in names:
            tap.skip(n, "missing " + ", ".join(lacking) +
                     " (run 'make guest' and 'make build')")
        return
    work = os.path.join(g.BUILD, "tests", f"hostmodel-virtio-rng-{kernel}")
    os.makedirs(work, exist_ok=True)
    config = os.path.join(work, "hostmodel.conf")
    trace_path = os.path.join(work, "trace.jsonl")
    with open(config, "w") as f:
        f.write(MODEL_CONFIG)
    if os.path.exists(trace_path):
        os.unlink(trace_path)
    sysfsdev = g.make_sysfs(work, HOST_BDF, VFIO_INDEX)
    env = {"LD_PRELOAD": g.HOSTMODEL_LIB, "HOSTMODEL_CONFIG": config,
           "HOSTMODEL_TRACE": trace_path}
    b = g.boot("virt",
               ["-object", "iommufd,id=iommufd0",
                "-device", "vfio-pci,iommufd=iommufd0,sysfsdev=" + sysfsdev +
                ",addr=0x2"],
               init, work, kernel=kernel, env=env,
               extra_append=f"HWRNG_BYTES={HWRNG_BYTES}",
               extra_files=[g.module(kernel, "virtio-rng")])
    print(f"# linux {kernel}: boot took {b.seconds:.1f} s; console log in "
          f"{work}/console.log, model trace in {trace_path}")
    diag = f"timed out: {b.timed_out}, exit: {b.returncode}\n{b.tail()}"
    if not tap.ok(b.completed, names[0], diag):
        for n in names[1:]:
            tap.ok(False, n, "no guest report")
        return
    nbytes = check_guest(tap, names, b)
    check_trace(tap, names, g.read_trace(trace_path), nbytes)


def main():
    tap = g.Tap()
    with open(os.path.join(os.path.dirname(__file__), "init-hwrng.sh")) as f:
        init = f.read()
    for kernel in g.KERNELS:
        run(tap, kernel, init)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
