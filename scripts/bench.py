#!/usr/bin/python3
"""make bench: guest invalidation throughput of arm-smmuv3, accel=on against
the host model beside the emulated SMMU, at batch sizes 1, 8, 32 and 128;
then the real-kernel rig's L2 disk I/O (tests/rig/bench-rig.py).

A benchmark, not a test: it prints figures and fails only when something
does not run.  The guest is played through QEMU's qtest protocol on stdio:
the command queue is filled with BATCH TLBI_NH_VA commands and a CMD_SYNC,
CMDQ_PROD is written, CMDQ_CONS is checked.  With accel=on the model's
trace gives the host ioctls per CMD_SYNC.
"""

import atexit
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OBJ = os.path.join(TOP, "build", "obj")
QEMU = os.path.join(OBJ, "qemu-system-aarch64")
LIB = os.path.join(OBJ, "tests", "hostmodel", "libqemu-hostmodel.so")

SMMU = 0x0c000000           # first user-created SMMU on the platform bus
CMDQ = 0x44000000           # command queue in guest RAM (128 MiB at 1 GiB)
CMDQ_LOG2 = 8
A_CR0, A_CR0ACK, A_CMDQ_BASE = 0x20, 0x24, 0x90
A_CMDQ_PROD, A_CMDQ_CONS = 0x98, 0x9c
OP_TLBI_NH_VA, OP_SYNC = 0x12, 0x46
BATCHES = (1, 8, 32, 128)
COMMANDS = int(os.environ.get("BENCH_COMMANDS", "8192"))  # per row


class QTest:
    def __init__(self, args, env):
        self.p = subprocess.Popen([QEMU, "-qtest", "stdio", "-accel",
                                   "qtest", "-display", "none"] + args,
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, env=env,
                                  text=True)
        # a failure must not leave QEMU behind
        atexit.register(self.p.kill)

    def cmd(self, line):
        if os.environ.get("BENCH_DEBUG"):
            print("->", line[:80], file=sys.stderr, flush=True)
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        while True:
            out = self.p.stdout.readline()
            if not out:
                sys.exit("bench: QEMU exited (%s)" % line)
            if out.startswith("OK") or out.startswith("FAIL"):
                if out.startswith("FAIL"):
                    sys.exit("bench: qtest %s: %s" % (line, out.strip()))
                return out.split()[1] if len(out.split()) > 1 else None

    def close(self):
        # qtest has no quit command, and QEMU outlives EOF on its stdin
        self.p.terminate()
        self.p.wait(timeout=30)


def entry(op, w0=0, w1=0):
    return (op | w0).to_bytes(8, "little") + w1.to_bytes(8, "little")


def run(mode, tmp):
    env = dict(os.environ)
    args = ["-M", "virt", "-nodefaults"]
    trace = os.path.join(tmp, mode + ".jsonl")
    if mode == "accel":
        sysfs = os.path.join(tmp, "sys", "dev0")
        os.makedirs(os.path.join(sysfs, "vfio-dev", "vfio0"), exist_ok=True)
        with open(os.path.join(sysfs, "vfio-dev", "vfio0", "dev"), "w") as f:
            f.write("511:0\n")
        conf = os.path.join(tmp, "hm.conf")
        with open(conf, "w") as f:
            f.write("smmu smmu0\ndevice dev0 vfio=0 smmu=smmu0 sid=0x100 "
                    "function=dma-test\n")
        env.update(LD_PRELOAD=LIB, HOSTMODEL_CONFIG=conf,
                   HOSTMODEL_TRACE=trace)
        args += ["-object", "iommufd,id=iommufd0",
                 "-device", "arm-smmuv3,primary-bus=pcie.0,accel=on",
                 "-device", "vfio-pci,iommufd=iommufd0,sysfsdev=" + sysfs]
    else:
        args += ["-device", "arm-smmuv3,primary-bus=pcie.0"]
    q = QTest(args, env)
    q.cmd("writeq 0x%x 0x%x" % (SMMU + A_CMDQ_BASE, CMDQ | CMDQ_LOG2))
    q.cmd("writel 0x%x 0x8" % (SMMU + A_CR0))            # CMDQEN
    results = []
    prod = 0
    mask = (2 << CMDQ_LOG2) - 1
    for batch in BATCHES:
        rounds = COMMANDS // batch
        if mode == "accel":
            before = count_invalidations(trace)
        t0 = time.perf_counter()
        for r in range(rounds):
            idx = prod
            start, data = idx & ((1 << CMDQ_LOG2) - 1), b""
            for i in range(batch + 1):
                e = (entry(OP_SYNC) if i == batch else
                     entry(OP_TLBI_NH_VA, 1 << 48, (r * batch + i) << 12))
                data += e
                idx = (idx + 1) & mask
                if not idx & ((1 << CMDQ_LOG2) - 1) or i == batch:
                    # one bulk write per contiguous run of the ring
                    q.cmd("write 0x%x 0x%x 0x%s" % (CMDQ + start * 16,
                                                    len(data), data.hex()))
                    start, data = 0, b""
            prod = idx
            q.cmd("writel 0x%x 0x%x" % (SMMU + A_CMDQ_PROD, prod))
            cons = int(q.cmd("readl 0x%x" % (SMMU + A_CMDQ_CONS)), 16)
            if cons != prod:
                sys.exit("bench: %s batch %d: CONS 0x%x != PROD 0x%x"
                         % (mode, batch, cons, prod))
        dt = time.perf_counter() - t0
        ioctls = (count_invalidations(trace) - before
                  if mode == "accel" else None)
        results.append((batch, rounds, rounds * batch / dt, ioctls))
    q.close()
    return results


def count_invalidations(trace):
    n = 0
    with open(trace) as f:
        for line in f:
            if '"IOMMU_HWPT_INVALIDATE"' in line:
                rec = json.loads(line)
                n += rec.get("kind") == "ioctl"
    return n


def main():
    for path in (QEMU, LIB):
        if not os.path.exists(path):
            sys.exit("bench: %s is missing: run 'make' first" % path)
    with tempfile.TemporaryDirectory(prefix="nmsi-bench-") as tmp:
        accel = run("accel", tmp)
        emul = run("emulated", tmp)
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    print("machine: %s, %d cores, Linux %s; QEMU under qtest (no guest CPU)"
          % (cpu, os.cpu_count(), platform.release()))
    print("guest workload: BATCH x TLBI_NH_VA + CMD_SYNC per CMDQ_PROD "
          "write, %d commands per row" % COMMANDS)
    print("%-6s %6s %8s %16s %20s %20s" % ("batch", "syncs", "commands",
                                           "host ioctls/sync",
                                           "accel commands/s",
                                           "emulated commands/s"))
    for (b, rounds, rate, ioctls), (_, _, erate, _) in zip(accel, emul):
        print("%-6d %6d %8d %16.2f %20.0f %20.0f"
              % (b, rounds, b * rounds, ioctls / rounds, rate, erate))
    # the real host: L2 disk I/O on Linux 7.2 in emulation (tests/rig)
    print("\nThe real-kernel rig (Linux 7.2 host in emulation):", flush=True)
    r = subprocess.run([sys.executable,
                        os.path.join(TOP, "tests", "rig", "bench-rig.py")])
    if r.returncode:
        sys.exit("bench: the rig's figures failed")


if __name__ == "__main__":
    main()
