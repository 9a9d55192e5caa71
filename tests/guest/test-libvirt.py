#!/usr/bin/env python3
"""libvirt drives the built emulator: a domain with the accel SMMUv3.

Debian 12's libvirt (9.0) starts the built qemu-system-aarch64 from a
domain definition, through its embedded QEMU driver (qemu:///embed, a
private root directory: no daemon, no system configuration touched).
libvirt 9.0 does not know <iommu model='smmuv3'><driver accel='on'/>
(libvirt 12 does), so the accel SMMU, the iommufd object, the vfio-pci
device and the machine's MSI window go through <qemu:commandline>, as
docs/system/arm/smmuv3-accel.rst shows; the host model comes in through
<qemu:env>.  The guest (Debian's Linux 6.12, UEFI, ACPI) must see the
window as its device's direct region and read /dev/hwrng.

Skips, saying why, when Debian's libvirt or its Python binding is not
installed (make deps installs both).  TAP output.
"""

import os
import shutil
import sys
import tempfile
import time
from xml.sax.saxutils import quoteattr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guestlib as g  # noqa: E402
import nested as n  # noqa: E402

KERNEL = "6.12"
# libvirt wants UEFI in pflash for ACPI (Debian's qemu-efi-aarch64)
AAVMF_CODE = "/usr/share/AAVMF/AAVMF_CODE.fd"
AAVMF_VARS = "/usr/share/AAVMF/AAVMF_VARS.fd"
NAME = "nested-smmuv3-msi"
TIMEOUT = 300
QEMU_CONF = """\
# the embedded driver runs QEMU as the calling user, unconfined
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
namespaces = [ ]
cgroup_controllers = [ ]
stdio_handler = "file"
"""


def domain_xml(work, initrd, sysfsdev, console, config, trace):
    args = ["-machine", f"msi-window={hex(n.WINDOW[0])},msi-window-size=1M",
            "-cpu", "max,pauth=off",
            "-object", "iommufd,id=iommufd0",
            "-device", "arm-smmuv3,primary-bus=pcie.0,accel=on,id=smmu0",
            "-device", "vfio-pci,iommufd=iommufd0,bus=pcie.0,addr=0x2,"
            f"sysfsdev={sysfsdev}"]
    env = {"LD_PRELOAD": g.HOSTMODEL_LIB, "HOSTMODEL_CONFIG": config,
           "HOSTMODEL_TRACE": trace}
    append = f"{g.BASE_APPEND} acpi=force HWRNG_BYTES={n.HWRNG_BYTES}"
    q = quoteattr
    return f"""\
<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>{NAME}</name>
  <memory unit='GiB'>1</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='aarch64' machine='virt'>hvm</type>
    <loader readonly='yes' type='pflash'>{AAVMF_CODE}</loader>
    <nvram template={q(AAVMF_VARS)}>{work}/VARS.fd</nvram>
    <kernel>{g.KERNELS[KERNEL]}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{append}</cmdline>
  </os>
  <features>
    <acpi/>
    <gic version='3'/>
  </features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <devices>
    <emulator>{g.QEMU}</emulator>
    <controller type='pci' index='0' model='pcie-root'/>
    <controller type='usb' model='none'/>
    <serial type='file'>
      <source path={q(console)}/>
    </serial>
    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
{''.join(f"    <qemu:arg value={q(a)}/>{chr(10)}" for a in args)}\
{''.join(f"    <qemu:env name='{k}' value={q(v)}/>{chr(10)}" for k, v in env.items())}\
  </qemu:commandline>
</domain>
"""


def run(libvirt, tap):
    work = n.workdir(KERNEL, "libvirt")
    os.makedirs(work, exist_ok=True)
    # libvirt's sockets live below its root: keep the path short
    root = tempfile.mkdtemp(prefix="nmsi-libvirt-")
    os.makedirs(os.path.join(root, "etc"))
    with open(os.path.join(root, "etc", "qemu.conf"), "w") as f:
        f.write(QEMU_CONF)
    config = os.path.join(work, "hostmodel.conf")
    trace_path = os.path.join(work, "trace.jsonl")
    console = os.path.join(work, "console.log")
    for p in (trace_path, console):
        if os.path.exists(p):
            os.unlink(p)
    with open(config, "w") as f:
        f.write(n.MODEL_CONFIG)
    sysfsdev = g.make_sysfs(work, n.HOST_BDF, n.VFIO_INDEX)
    initrd = os.path.join(work, "initrd.gz")
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "init-nested.sh")) as f:
        g.make_initramfs(initrd, f.read(), [g.module(KERNEL, "virtio-rng")])
    xml = domain_xml(work, initrd, sysfsdev, console, config, trace_path)
    with open(os.path.join(work, "domain.xml"), "w") as f:
        f.write(xml)

    libvirt.virEventRegisterDefaultImpl()
    conn = libvirt.open(f"qemu:///embed?root={root}")
    stopped = []
    conn.domainEventRegisterAny(
        None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
        lambda c, d, event, detail, opaque:
        stopped.append(detail) if event == libvirt.VIR_DOMAIN_EVENT_STOPPED
        else None, None)
    start = time.monotonic()
    try:
        dom = conn.createXML(xml, 0)
    except libvirt.libvirtError as e:
        tap.ok(False, "libvirt starts the built QEMU from the domain XML",
               str(e))
        conn.close()
        shutil.rmtree(root, ignore_errors=True)
        return None, []
    tap.ok(True, "libvirt starts the built QEMU from the domain XML")
    # the guest powers off when it is done; libvirt reports the stop.  A
    # 1 s timer wakes the loop, so that a hung guest meets the deadline.
    libvirt.virEventAddTimeout(1000, lambda timer, opaque: None, None)
    while not stopped and time.monotonic() - start < TIMEOUT:
        libvirt.virEventRunDefaultImpl()
    if not stopped:
        dom.destroy()
    conn.close()
    seconds = time.monotonic() - start
    with open(console, errors="replace") as f:
        text = f.read().replace("\r", "")
    b = g.Boot([], text, 0 if stopped else None, seconds, not stopped)
    log = os.path.join(root, "log", "qemu", f"{NAME}.log")
    if os.path.exists(log):
        shutil.copy(log, os.path.join(work, "qemu.log"))
    shutil.rmtree(root, ignore_errors=True)
    print(f"# libvirt: {seconds:.1f} s; domain XML, console log, libvirt's "
          f"QEMU log and the model trace in {work}")
    return b, g.read_trace(trace_path)


def main():
    tap = g.Tap()
    names = ["libvirt starts the built QEMU from the domain XML",
             "the guest boots and reports",
             "the guest lists the window as the device's direct "
             "region",
             "the guest reads /dev/hwrng through nested translation, MSIs "
             "through the window"]
    try:
        import libvirt
    except ImportError:
        for nm in names:
            tap.skip(nm, "Debian's libvirt Python binding (python3-libvirt) "
                     "is not installed; 'make deps' installs it")
        return tap.done()
    lacking = n.missing(KERNEL, ("virtio-rng",))
    if lacking:
        for nm in names:
            tap.skip(nm, "missing " + ", ".join(lacking))
        return tap.done()
    b, trace = run(libvirt, tap)
    if b is None:
        for nm in names[1:]:
            tap.ok(False, nm, "libvirt did not start the domain")
        return tap.done()
    if not tap.ok(b.completed, names[1],
                  f"timed out: {b.timed_out}\n{b.tail()}"):
        for nm in names[2:]:
            tap.ok(False, nm, "no guest report")
        return tap.done()
    tap.ok(n.resv_line(b, "direct"), names[2],
           f"PCI: {b.all('PCI')}\nreserved regions: {b.all('RESV')}")
    data = bytes.fromhex("".join(b.all("HWRNG")))
    msis = [r for r in trace if r["kind"] == "msi"]
    tap.ok(len(data) == n.HWRNG_BYTES and any(data) and msis and
           all(r.get("addr") == n.DOORBELL and
               r.get("result") == "delivered" for r in msis), names[3],
           f"{len(data)} bytes; msi records:\n{g.summary(msis)}")
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
