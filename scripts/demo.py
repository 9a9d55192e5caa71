#!/usr/bin/env python3
"""make demo: a real arm64 guest whose passed-through device does DMA and
takes MSIs through nested translation, told about the MSI window.

Debian's arm64 Linux boots under the built QEMU (TCG, UEFI, ACPI) on
-M virt with GICv3.  The host model (tests/hostmodel, LD_PRELOADed into
QEMU) stands in for the host kernel: iommufd, VFIO and an SMMUv3 that
nests, with a virtio-rng PCI function that QEMU passes through with
vfio-pci.  Two scenarios:

1. -device arm-smmuv3,accel=on: the guest owns stage 1 on the host SMMU;
   the window reaches the guest as an IORT RMR node.
2. -device virtio-iommu-pci: the window reaches the guest as the proposed
   RESV_MEM DIRECT subtype.

For each, the demo prints what happened, from QEMU's command line to the
guest's view and the model's trace, and checks it: the exit status is
non-zero if any step did not happen.
"""

import os
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "guest"))
import guestlib as g  # noqa: E402
import nested as n  # noqa: E402

KERNEL = os.environ.get("DEMO_KERNEL", "6.12")
WORK = os.path.join(g.BUILD, "demo")


class Story:
    """Prints the steps of a scenario and remembers which did not happen."""

    def __init__(self):
        self.failed = []

    def step(self, ok, text, detail=()):
        print(f"  [{'ok' if ok else 'MISSING'}] {text}")
        for d in detail:
            print(f"         {d}")
        if not ok:
            self.failed.append(text)


def hexbytes(data, width=32):
    h = data.hex()
    return [h[i:i + 2 * width] for i in range(0, len(h), 2 * width)]


def option_value(r):
    """SW_MSI_START is an address, SW_MSI_SIZE a number of MiB."""
    if r["option_id"] == n.OPT_SW_MSI_START:
        return r.get("val64")
    return f"{int(r.get('val64', '0'), 16)} MiB"


def host_side(story, trace):
    """The option calls for the window and the first attach."""
    opts = [r for r in trace if r.get("cmd") == "IOMMU_OPTION"]
    names = {n.OPT_SW_MSI_START: "SW_MSI_START", n.OPT_SW_MSI_START + 1:
             "SW_MSI_SIZE"}
    attach = [r for r in trace if r["kind"] == "attach"]
    lines = [f"seq {r['seq']:>4}: IOMMU_OPTION {'GET' if r['op'] else 'SET'} "
             f"{names.get(r['option_id'], r['option_id'])} "
             f"{option_value(r)} -> {r.get('ret')}" for r in opts]
    if attach:
        a = attach[0]
        lines.append(f"seq {a['seq']:>4}: first attach of {a['dev']} "
                     f"(to {a['type']} {a['pt_id']})")
    set_start = [r for r in opts if r["option_id"] == n.OPT_SW_MSI_START and
                 r["op"] == 0 and r.get("ret") == 0 and
                 r.get("val64") == hex(n.WINDOW[0])]
    story.step(set_start and attach and set_start[0]["seq"] < attach[0]["seq"],
               "QEMU asked the host kernel for the window before attaching "
               "the device", lines)


def guest_rng(story, b):
    data = bytes.fromhex("".join(b.all("HWRNG")))
    story.step(len(data) == n.HWRNG_BYTES and any(data),
               f"the guest read {len(data)} bytes from /dev/hwrng",
               hexbytes(data))


def msis(story, b, trace):
    m = [r for r in trace if r["kind"] == "msi"]
    good = [r for r in m if r.get("addr") == n.DOORBELL and
            r.get("result") == "delivered"]
    prep = [r for r in trace if r["kind"] == "msi-prepare"]
    lines = [f"the host programmed the device with {p['msi_addr']} "
             f"(doorbell {p['doorbell']})" for p in prep[:1]]
    lines.append(f"{len(good)} of {len(m)} MSI writes delivered at "
                 f"{n.DOORBELL}")
    lines += [f"guest: {i}" for i in b.all("IRQ") if "virtio" in i]
    story.step(good and len(good) == len(m),
               "the device's MSIs went through the window", lines)


def translations(story, trace, nested_walks):
    walks = [r for r in trace if r["kind"] == "walk"]
    ok = [r for r in walks if r.get("result") in ("ok", "doorbell")]
    dma = [r for r in trace if r["kind"] == "dma"]
    bad = [r for r in dma if r.get("result") != "ok"] + \
        [r for r in walks if r.get("result") not in ("ok", "doorbell")] + \
        [r for r in trace if r["kind"] == "event-host"]
    lines = [f"{len(dma)} DMA accesses by the device, {len(bad)} faults"]
    if nested_walks:
        lines.insert(0, f"{len(ok)} stage-1 walks of the guest's tables, "
                     "each table read through stage 2")
        lines += [f"e.g. IOVA {w['iova']} -> IPA {w['ipa']} "
                  f"({w['levels']} levels)" for w in ok[:1]]
    story.step(dma and not bad and (ok or not nested_walks),
               "the model translated the device's DMA" +
               (" in two stages" if nested_walks else ""), lines)


def start(story, tag, devices, modules, machine=n.MACHINE):
    """Boot, print the command line; (Boot, trace), or None if the guest
    did not report."""
    b, trace = n.boot(KERNEL, tag, devices, modules, machine=machine,
                      workroot=WORK)
    print("  QEMU: " + " ".join([os.path.basename(b.argv[0])] + b.argv[1:]))
    if not b.completed:
        story.step(False, f"the guest booted and reported (console: "
                   f"{b.work}/console.log)", b.tail(10).splitlines())
        return None
    print(f"  (guest {b.all('BEGIN')[0]}, boot to poweroff in "
          f"{b.seconds:.1f} s)")
    return b, trace


def scenario_accel(story):
    booted = start(story, "accel",
                   ["-device", "arm-smmuv3,primary-bus=pcie.0,accel=on"],
                   ["virtio-rng"])
    if not booted:
        return
    b, trace = booted
    print(f"  The machine's MSI window: 0x{n.WINDOW[0]:08x}-"
          f"0x{n.WINDOW[1]:08x} (-M virt,msi-window=,msi-window-size=)")
    host_side(story, trace)
    rev, rmrs = n.rmr_nodes(b)
    story.step(rev == 5 and len(rmrs) == 1 and
               rmrs[0]["base"] == n.WINDOW[0],
               f"the guest's IORT (revision {rev}) has an RMR node for it",
               [f"flags 0x{r['flags']:x} (remapping not permitted, "
                f"Device-nGnRnE), StreamIDs 0x{r['sids'][0]:x}-"
                f"0x{r['sids'][1]:x} of the SMMU node at offset {r['smmu']}, "
                f"range 0x{r['base']:x} + 0x{r['length']:x}" for r in rmrs])
    groups = {p.split()[0]: p.split()[-1] for p in b.all("PCI")}
    grp = groups.get(n.GUEST_BDF)
    story.step(n.resv_line(b, "direct"),
               f"the guest lists the window as a reserved region of "
               f"{n.GUEST_BDF} (IOMMU group {grp}):",
               [r.split(None, 1)[1] for r in b.all("RESV")
                if r.split()[0] == grp])
    guest_rng(story, b)
    msis(story, b, trace)
    translations(story, trace, True)
    print(f"  (console: {b.work}/console.log, model trace: {b.trace_path})")


def scenario_virtio_iommu(story):
    # behind virtio-iommu the window is opt-in: named on the machine
    booted = start(story, "virtio-iommu",
                   ["-device", "virtio-iommu-pci",
                    "-trace", "virtio_iommu_fill_resv_property"],
                   ["virtio-iommu", "virtio-rng"],
                   machine=n.MACHINE + f",msi-window=0x{n.WINDOW[0]:x}")
    if not booted:
        return
    b, trace = booted
    host_side(story, trace)
    probe = f"type=2 start={hex(n.WINDOW[0])} end={hex(n.WINDOW[1])}"
    sent = [ln.strip() for ln in b.console.splitlines()
            if "virtio_iommu_fill_resv_property" in ln and probe in ln]
    story.step(sent, "QEMU's PROBE reply gave the window as DIRECT "
               "(subtype 2, proposed)", sent[:1])
    groups = {p.split()[0]: p.split()[-1] for p in b.all("PCI")}
    grp = groups.get(n.GUEST_BDF)
    warned = [d.split("]", 1)[-1].strip() for d in b.all("DMESG")
              if "unknown resv mem subtype" in d]
    story.step(n.resv_line(b, "reserved"),
               "the guest's driver, which does not know DIRECT, lists the "
               f"window as reserved for {n.GUEST_BDF} (group {grp}):",
               [r.split(None, 1)[1] for r in b.all("RESV")
                if r.split()[0] == grp] + [f"guest: {w}" for w in warned])
    guest_rng(story, b)
    msis(story, b, trace)
    translations(story, trace, False)
    print(f"  (console: {b.work}/console.log, model trace: {b.trace_path})")


REAL_HOST = """\
On a real host (not tested here): an SMMUv3 that can nest (stage 1 and 2,
S2FWB or a CANWBS device), Linux with iommufd, the device bound to
vfio-pci; under KVM:

  qemu-system-aarch64 -M virt,gic-version=3 -accel kvm -cpu host -m 4G \\
      -bios /usr/share/qemu-efi-aarch64/QEMU_EFI.fd \\
      -object iommufd,id=iommufd0 \\
      -device arm-smmuv3,primary-bus=pcie.0,accel=on,id=smmu0 \\
      -device pcie-root-port,id=rp0,chassis=1 \\
      -device vfio-pci,host=0000:01:00.0,bus=rp0,iommufd=iommufd0 \\
      ...

  A host kernel without the proposed IOMMU_OPTION_SW_MSI_START (Linux 7.2
  has none) needs the kernel's own window:
      -M virt,gic-version=3,msi-window=0x08000000
  With virtio-iommu instead: -device virtio-iommu-pci in place of the
  arm-smmuv3 line (any host IOMMU, no nesting), and the window named with
  -M virt,...,msi-window=0x0b000000 (behind virtio-iommu it is opt-in).
  docs/system/arm/smmuv3-accel.rst in the series has the libvirt XML.
The negative control (the window left out of the IORT, MSIs fault) runs
in 'make check' (tests/guest/test-msi-window.py)."""


def main():
    lacking = n.missing(KERNEL)
    if lacking:
        print("demo: missing " + ", ".join(lacking), file=sys.stderr)
        return 1
    failed = []
    for title, run in (
            ("arm-smmuv3,accel=on: nested translation, the window as an "
             "IORT RMR", scenario_accel),
            ("virtio-iommu-pci: the window as a DIRECT region",
             scenario_virtio_iommu)):
        print(f"\n== {title} (Debian Linux {KERNEL}, TCG, UEFI/ACPI) ==")
        story = Story()
        run(story)
        failed += [f"{title}: {f}" for f in story.failed]
    print("\n" + REAL_HOST)
    if failed:
        print("\ndemo: these did not happen:\n  " + "\n  ".join(failed),
              file=sys.stderr)
        return 1
    print("\ndemo: everything above happened.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
