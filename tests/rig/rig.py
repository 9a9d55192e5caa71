"""The real-kernel rig: the series against Linux 7.2's own iommufd,
arm-smmu-v3 and KVM (docs/testing.md, "The real-kernel rig").

L0 is the series' x86 qemu-system-aarch64 (TCG) emulating an arm64 host
whose SMMUv3 has both stages and S2FWB; L1 is Linux 7.2 (scripts/rig/
kernel.sh) with a busybox initramfs carrying the series' aarch64 QEMU
(scripts/rig/qemu-aarch64.sh), Debian's arm64 kernels for L2 and their
initramfs; L1's /rig/run.sh, written here, runs the scenarios one after
the other, each an L2 under KVM or a QEMU that must refuse to start.

Everything comes back on L0's serial console: "@@L1 " lines of L1, an
L2's own "@@" report lines (tests/guest/init-nested.sh), QEMU's traces,
each run between "@@SCENARIO NAME" and "@@SCENARIO_END NAME rc=N".
"""

import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "tests", "guest"))
import guestlib as g  # noqa: E402

RIG = os.path.join(g.BUILD, "rig")
IMAGE = os.path.join(RIG, "linux-obj", "arch", "arm64", "boot", "Image")
QEMU_A64 = os.path.join(RIG, "qemu-obj", "qemu-system-aarch64")
SCRIPTS = os.path.join(TOP, "scripts", "rig")

# L0's functions, as L1 numbers them: virtio-rng, virtio-blk
RNG_BDF = "0000:00:01.0"
BLK_BDF = "0000:00:02.0"
# L0: the machine SMMU with both stages and S2FWB, so that L1's Linux
# allocates vIOMMUs (arm_smmu_get_viommu_size())
L0_ARGS = ["-global", "arm-smmuv3.stage=nested",
           "-global", "arm-smmuv3.s2fwb=on"]
# Linux 7.2 without the proposed SW_MSI option keeps its own window
KERNEL_WINDOW = "0x08000000"
HWRNG_BYTES = 64


def missing():
    """What the rig needs and this machine lacks (a failure in CI)."""
    need = {"L0 QEMU (make)": g.QEMU, "L1 kernel (scripts/rig/kernel.sh)":
            IMAGE, "aarch64 QEMU (scripts/rig/qemu-aarch64.sh)": QEMU_A64,
            "UEFI firmware": g.UEFI, "busybox (make guest)": g.BUSYBOX}
    for k in g.KERNELS:
        need[f"L2 kernel {k} (make guest)"] = g.KERNELS[k]
        for m in ("virtio-rng", "virtio-iommu", "virtio-blk"):
            need[f"{m} module of {k}"] = g.module_path(k, m)
    return [f"{k}: {v}" for k, v in need.items() if not os.path.exists(v)]


class Scenario(g.Boot):
    """One scenario's part of the console, parsed like a guest boot."""

    def __init__(self, name, console, rc):
        super().__init__([], console, rc, 0.0, False)
        self.name = name

    def traces(self, prefix):
        """QEMU trace lines of events starting with PREFIX (the log
        backend: 'PID@SECONDS:name args' or 'name args')."""
        out = []
        for line in self.console.splitlines():
            m = re.match(r"(?:\d+@[\d.]+:)?(" + re.escape(prefix) +
                         r"\w*) ?(.*)$", line)
            if m:
                out.append((m.group(1), m.group(2)))
        return out


class Run:
    """One L0 boot: L1's facts and the scenarios it ran."""

    def __init__(self, console, seconds, status):
        self.console = console
        self.seconds = seconds
        self.status = status
        self.l1 = g.Boot([], "\n".join(
            line for line in console.splitlines()
            if line.startswith("@@L1 ")), 0, 0.0, False)
        self.scenarios = {}
        cur, lines = None, []
        for line in console.splitlines():
            m = re.match(r"@@SCENARIO (\S+)$", line)
            e = re.match(r"@@SCENARIO_END (\S+) rc=(\d+)$", line)
            if m:
                cur, lines = m.group(1), []
            elif e and cur == e.group(1):
                self.scenarios[cur] = Scenario(cur, "\n".join(lines),
                                               int(e.group(2)))
                cur = None
            elif cur:
                lines.append(line)

    def get(self, name):
        return self.scenarios.get(name)


def l2_initrd(kernel, modules=("virtio-rng", "virtio-iommu", "virtio-blk")):
    """L2's initramfs for KERNEL: tests/guest/init-nested.sh as /init"""
    path = os.path.join(RIG, "l2", kernel, "initrd.gz")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(os.path.join(TOP, "tests", "guest", "init-nested.sh")) as f:
        init = f.read()
    g.make_initramfs(path, init, [g.module(kernel, m) for m in modules])
    return path


def build_l1_initramfs(tag, run_sh, kernels):
    """L1's initramfs with the aarch64 QEMU, UEFI, the L2 kernels and
    initramfs, tests/rig/l1-lib.sh and RUN_SH as /rig/run.sh"""
    extra = os.path.join(RIG, f"extra-{tag}")
    shutil.rmtree(extra, ignore_errors=True)
    rig = os.path.join(extra, "rig")
    os.makedirs(rig)
    # without its debug information: a third of the size
    subprocess.run(["aarch64-linux-gnu-strip", "-o",
                    os.path.join(rig, "qemu-system-aarch64"), QEMU_A64],
                   check=True)
    shutil.copy(g.UEFI, os.path.join(rig, "QEMU_EFI.fd"))
    shutil.copy(os.path.join(HERE, "l1-lib.sh"), rig)
    for k in kernels:
        d = os.path.join(rig, "l2", k)
        os.makedirs(d)
        shutil.copy(g.KERNELS[k], os.path.join(d, "vmlinuz"))
        shutil.copy(l2_initrd(k), os.path.join(d, "initrd.gz"))
    with open(os.path.join(rig, "run.sh"), "w") as f:
        f.write("#!/bin/busybox sh\n. /rig/l1-lib.sh\n" + run_sh)
    out = os.path.join(RIG, f"l1-{tag}.gz")
    subprocess.run([os.path.join(SCRIPTS, "initramfs.sh"), "-o", out,
                    "-a", extra], check=True, stdout=subprocess.DEVNULL)
    return out


def boot(tag, run_sh, kernels, limit=1500):
    """Boot L0 -> L1 running RUN_SH; the Run"""
    initrd = build_l1_initramfs(tag, run_sh, kernels)
    log = os.path.join(RIG, f"run-{tag}.log")
    start = time.monotonic()
    r = subprocess.run([os.path.join(SCRIPTS, "boot-l1.sh"), "-A", "-i",
                        initrd, "-t", str(limit), "-l", log, "--"] + L0_ARGS,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    seconds = time.monotonic() - start
    console = ""
    if os.path.exists(log):
        with open(log, errors="replace") as f:
            console = f.read().replace("\r", "")
    run = Run(console, seconds, r.returncode)
    run.log = log
    run.output = r.stdout
    return run
