#!/usr/bin/env python3
"""Real guests, end to end: more than one accel SMMUv3, and hot-plug.

Debian's arm64 Linux 6.12 and 7.2 (TCG, UEFI, ACPI, GICv3) with host-model
virtio-rng functions passed through with vfio-pci (iommufd) behind
arm-smmuv3,accel=on:

- two accel SMMUs on two root buses (pcie.0 and a pxb-pcie), each with
  its own host SMMU and function: two RMR nodes, each function lists the
  window as direct, the guest reads both RNGs, and every MSI
  of both arrives through the window;
- hot-plug: the guest boots with the SMMU and an empty root port; when
  its /init says it is waiting, the test adds the vfio-pci device over
  QMP; the guest's pciehp finds it, the window is its direct
  region (the RMR covers the root bus), and its DMA and MSIs work.

Boots run two at a time (the machine has two cores).  TAP output.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guestlib as g  # noqa: E402
import nested as n  # noqa: E402

TWO_CONFIG = """\
smmu smmu0
smmu smmu1
device 0000:01:00.0 vfio=3 smmu=smmu0 sid=0x100 function=virtio-rng
device 0000:02:00.0 vfio=4 smmu=smmu1 sid=0x200 function=virtio-rng
"""
# the second SMMU's root bus is 0x10; the firmware numbers the root
# port's bus 0x11
TWO_BDFS = ("0000:00:02.0", "0000:11:00.0")
HOTPLUG_BDF = "0000:01:00.0"    # behind the root port at 00:03.0


def msis_ok(trace, devs=None):
    """(all delivered at the doorbell, the devices that sent one)"""
    m = [r for r in trace if r["kind"] == "msi"]
    good = [r for r in m if r.get("addr") == n.DOORBELL and
            r.get("result") == "delivered"]
    return m and len(good) == len(m), {r["dev"] for r in good}


def run_two(kernel):
    devices = ["-device", "arm-smmuv3,primary-bus=pcie.0,accel=on",
               "-device", "pxb-pcie,id=pxb1,bus_nr=0x10,addr=0x4",
               "-device", "pcie-root-port,id=rp1,bus=pxb1,chassis=1",
               "-device", "arm-smmuv3,primary-bus=pxb1,accel=on"]
    vfio = [("0000:01:00.0", 3, "bus=pcie.0,addr=0x2"),
            ("0000:02:00.0", 4, "bus=rp1")]
    return n.boot(kernel, "two-smmus", devices, ["virtio-rng"],
                  config=TWO_CONFIG, vfio=vfio)


def check_two(tap, kernel, result):
    b, trace = result
    name = f"linux {kernel}, two accel SMMUs"
    if not n.booted(tap, name, b, 4):
        return
    rev, rmrs = n.rmr_nodes(b)
    tap.ok(rev == 5 and len(rmrs) == 2 and
           [r["sids"] for r in rmrs] == [(0, 0xff), (0x1000, 0x11ff)] and
           rmrs[0]["smmu"] != rmrs[1]["smmu"] and
           all(r["base"] == n.WINDOW[0] for r in rmrs),
           f"{name}: two RMR nodes, each for its own root bus and SMMU",
           f"revision {rev}, RMR nodes: {rmrs}")
    tap.ok(all(n.resv_line(b, "direct", bdf) for bdf in TWO_BDFS),
           f"{name}: both functions list the window as direct",
           f"PCI: {b.all('PCI')}\nreserved regions: {b.all('RESV')}")
    reads = [r.split() for r in b.all("RNGREAD")]
    tap.ok(len(reads) == 2 and
           all(len(r) == 3 and r[1] == "0" and
               len(bytes.fromhex(r[2])) == n.HWRNG_BYTES for r in reads),
           f"{name}: the guest reads both RNGs",
           f"reads: {b.all('RNGREAD')}\ndmesg: {b.all('DMESG')[-10:]}")
    ok, devs = msis_ok(trace)
    faults = n.faults(trace)
    tap.ok(ok and devs == {"0000:01:00.0", "0000:02:00.0"} and not faults,
           f"{name}: both functions' DMA translates and their MSIs arrive "
           "through the window",
           f"MSIs from {devs}\nfaults:\n{g.summary(faults)}")


def run_hotplug(kernel):
    work = n.workdir(kernel, "hotplug")
    sock = os.path.join(work, "qmp.sock")
    sysfsdev = os.path.join(work, "sys", n.HOST_BDF)
    done = {}

    def on_line(line):
        if "@@WAITING" in line and "plugged" not in done:
            try:
                g.qmp(sock, {"execute": "device_add", "arguments": {
                    "driver": "vfio-pci", "id": "hp0", "bus": "rp0",
                    "iommufd": "iommufd0", "sysfsdev": sysfsdev}})
                done["plugged"] = True
            except (OSError, RuntimeError, ValueError) as e:
                done["error"] = str(e)
    if os.path.exists(sock):
        os.unlink(sock)
    devices = ["-qmp", f"unix:{sock},server=on,wait=off",
               "-device", "arm-smmuv3,primary-bus=pcie.0,accel=on",
               "-device", "pcie-root-port,id=rp0,chassis=1,addr=0x3"]
    b, trace = n.boot(kernel, "hotplug", devices, ["virtio-rng"], vfio=[],
                      append=f"WAIT_FOR={HOTPLUG_BDF}", on_line=on_line)
    b.hotplug = done
    return b, trace


def check_hotplug(tap, kernel, result):
    b, trace = result
    name = f"linux {kernel}, hot-plug"
    if not n.booted(tap, name, b, 4):
        return
    option = [r for r in trace if r.get("cmd") == "IOMMU_OPTION" and
              r.get("option_id") == n.OPT_SW_MSI_START and r.get("op") == 0]
    attach = min((r["seq"] for r in trace if r["kind"] == "attach"),
                 default=-1)
    tap.ok(b.hotplug.get("plugged") and b.all("ARRIVED") and option and
           option[0]["seq"] < attach,
           f"{name}: device_add over QMP while the guest waits; the guest "
           "finds the device, QEMU set the window before attaching it",
           f"QMP: {b.hotplug}\nguest: arrived {b.all('ARRIVED')}, not "
           f"{b.all('NOT_ARRIVED')}\noption {option}, attach {attach}\n"
           f"dmesg: {b.all('DMESG')[-10:]}")
    tap.ok(n.resv_line(b, "direct", HOTPLUG_BDF),
           f"{name}: the hot-plugged device lists the window as "
           "direct",
           f"PCI: {b.all('PCI')}\nreserved regions: {b.all('RESV')}")
    data = bytes.fromhex("".join(b.all("HWRNG")))
    faults = n.faults(trace)
    tap.ok(len(data) == n.HWRNG_BYTES and any(data) and not faults,
           f"{name}: the guest reads /dev/hwrng through nested translation",
           f"dd {b.all('HWRNG_RC')}, {len(data)} bytes\n"
           f"faults:\n{g.summary(faults)}")
    ok, devs = msis_ok(trace)
    tap.ok(ok, f"{name}: its MSIs arrive through the window",
           f"msi records:\n{g.summary([r for r in trace if r['kind'] == 'msi'])}")


def main():
    tap = g.Tap()
    jobs = []
    for kernel in g.KERNELS:
        lacking = n.missing(kernel, ("virtio-rng",))
        if lacking:
            tap.skip(f"linux {kernel}: end-to-end guests",
                     "missing " + ", ".join(lacking) +
                     " (run 'make guest' and 'make build')")
            continue
        jobs += [(kernel, run_two, check_two),
                 (kernel, run_hotplug, check_hotplug)]
    n.run_jobs(tap, jobs)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
