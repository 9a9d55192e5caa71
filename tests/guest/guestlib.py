"""Boot real arm64 Linux guests under the built QEMU and read what they see.

The guest runs a busybox initramfs whose /init (a shell script) prints facts
as lines starting with '@@'; the host side parses them and asserts.  Every
boot runs under a timeout: a guest that hangs fails the test, it does not
hang make check.
"""

import gzip
import io
import json
import lzma
import os
import re
import socket
import stat
import subprocess
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("NMSI_BUILD", os.path.join(TOP, "build"))
QEMU = os.environ.get("NMSI_QEMU", os.path.join(BUILD, "obj", "qemu-system-aarch64"))
GUEST = os.environ.get("NMSI_GUEST_DIR", os.path.join(BUILD, "guest"))
# Debian's arm64 kernels the tests boot, by version (scripts/guest-artifacts.sh)
KERNELS = {v: os.path.join(GUEST, f"linux-{v}", "vmlinuz") for v in ("6.12", "7.2")}
BUSYBOX = os.path.join(GUEST, "busybox")
UEFI = os.environ.get("NMSI_GUEST_UEFI", "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd")

# Common TCG settings (reference/guest-boot-facts.md): pauth=off halves the
# boot time; one vCPU is faster than two on this machine.
BASE_ARGS = ["-cpu", "max,pauth=off", "-m", "1G", "-nographic",
             "-no-reboot", "-nic", "none"]
BASE_APPEND = "console=ttyAMA0 panic=-1 quiet"


def missing_artifacts(kernel="6.12"):
    """Names of what a boot needs and this machine lacks (for a skip)."""
    need = {"QEMU": QEMU, f"kernel {kernel}": KERNELS[kernel],
            "busybox": BUSYBOX, "UEFI firmware": UEFI}
    return [f"{k} ({v})" for k, v in need.items() if not os.path.exists(v)]


def _cpio_newc(entries):
    """A newc cpio archive of (name, mode, data) entries."""
    out = io.BytesIO()
    ino = 1
    for name, mode, data in entries + [("TRAILER!!!", 0, b"")]:
        nameb = name.encode() + b"\0"
        hdr = "070701" + "".join(f"{v:08x}" for v in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nameb), 0))
        out.write(hdr.encode() + nameb)
        out.write(b"\0" * (-(110 + len(nameb)) % 4))
        out.write(data)
        out.write(b"\0" * (-len(data) % 4))
        ino += 1
    return out.getvalue()


def make_initramfs(path, init_script, extra_files=()):
    """Write a gzip'd initramfs with busybox and INIT_SCRIPT as /init."""
    with open(BUSYBOX, "rb") as f:
        busybox = f.read()
    d = stat.S_IFDIR | 0o755
    entries = [("dev", d, b""), ("proc", d, b""), ("sys", d, b""),
               ("tmp", d, b""), ("bin", d, b""), ("sbin", d, b""),
               ("bin/busybox", stat.S_IFREG | 0o755, busybox),
               ("init", stat.S_IFREG | 0o755, init_script.encode())]
    for name, data in extra_files:
        entries.append((name, stat.S_IFREG | 0o644, data))
    with open(path, "wb") as f:
        f.write(gzip.compress(_cpio_newc(entries), compresslevel=1))


class Boot:
    """The result of one guest boot: console text and parsed '@@' facts."""

    def __init__(self, argv, console, returncode, seconds, timed_out):
        self.argv = argv
        self.console = console
        self.returncode = returncode
        self.seconds = seconds
        self.timed_out = timed_out
        self.facts = []
        for line in console.splitlines():
            m = re.search(r"@@(\w+) ?(.*)$", line)
            if m:
                self.facts.append((m.group(1), m.group(2).strip()))

    @property
    def completed(self):
        return any(k == "END" for k, _ in self.facts)

    def all(self, key):
        return [v for k, v in self.facts if k == key]

    def tail(self, n=25):
        return "\n".join(self.console.splitlines()[-n:])


def boot(machine, devices, init_script, workdir, acpi=True, timeout=300,
         extra_append="", kernel="6.12", env=None, extra_files=(),
         on_line=None):
    """Boot Debian's KERNEL on -M MACHINE with DEVICES (a list of QEMU
    arguments) and an initramfs running INIT_SCRIPT; return a Boot.

    ENV (a dict) is added to the QEMU process's environment; EXTRA_FILES
    ((name, data) pairs) go into the initramfs next to /init.  ON_LINE, if
    given, is called with each console line as it arrives (to act on the
    running guest, over QMP say).
    """
    os.makedirs(workdir, exist_ok=True)
    initrd = os.path.join(workdir, "initrd.gz")
    make_initramfs(initrd, init_script, extra_files)
    append = BASE_APPEND + (" acpi=force" if acpi else "")
    if extra_append:
        append += " " + extra_append
    argv = [QEMU, "-M", machine] + BASE_ARGS
    if acpi:
        argv += ["-bios", UEFI]
    argv += ["-kernel", KERNELS[kernel], "-initrd", initrd, "-append", append]
    argv += devices
    start = time.monotonic()
    proc_env = dict(os.environ, **env) if env else None
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         env=proc_env)
    killed = threading.Event()

    def kill():
        killed.set()
        p.kill()
    timer = threading.Timer(timeout, kill)
    timer.start()
    out = []
    try:
        for raw in p.stdout:
            out.append(raw)
            if on_line:
                on_line(raw.decode("utf-8", "replace").replace("\r", ""))
        rc = p.wait()
    finally:
        timer.cancel()
        if p.poll() is None:
            p.kill()
            p.wait()
    timed_out = killed.is_set()
    if timed_out:
        rc = None
    seconds = time.monotonic() - start
    console = b"".join(out).decode("utf-8", "replace").replace("\r", "")
    with open(os.path.join(workdir, "console.log"), "w") as f:
        prefix = "".join(f"{k}={v} " for k, v in (env or {}).items())
        f.write(prefix + " ".join(argv) + "\n\n" + console)
    return Boot(argv, console, rc, seconds, timed_out)


def qmp(path, *commands):
    """Run COMMANDS (dicts) on the QMP socket PATH; return their replies.
    Events on the way are skipped; an error reply raises RuntimeError."""
    replies = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sk:
        sk.settimeout(30)
        sk.connect(path)
        f = sk.makefile("rwb")

        def reply():
            while True:
                msg = json.loads(f.readline())
                if "event" not in msg:
                    return msg
        reply()                                 # the greeting
        for cmd in ({"execute": "qmp_capabilities"},) + commands:
            f.write(json.dumps(cmd).encode() + b"\n")
            f.flush()
            r = reply()
            if "error" in r:
                raise RuntimeError(f"{cmd['execute']}: {r['error']}")
            replies.append(r.get("return"))
    return replies[1:]


# --- the host model (tests/hostmodel), LD_PRELOADed into QEMU ---

HOSTMODEL_LIB = os.environ.get(
    "HOSTMODEL_LIB",
    os.path.join(BUILD, "obj", "tests", "hostmodel", "libqemu-hostmodel.so"))
HOSTMODEL_VFIO_MAJOR = 511      # tests/hostmodel/hostmodel-abi.h

# Debian's arm64 kernels build these as modules (xz-compressed, no
# dependencies); tests put them into the initramfs, /init loads them
_MODULE_DIRS = {
    "6.12": os.path.join(GUEST, "pkg", "linux-6.12", "usr", "lib", "modules",
                         "6.12.107+deb13-arm64", "kernel"),
    "7.2": os.path.join(GUEST, "pkg", "linux-7.2-modules", "usr", "lib",
                        "modules", "7.2.13+deb14-arm64", "kernel"),
}
MODULES = {"virtio-rng": os.path.join("drivers", "char", "hw_random",
                                      "virtio-rng.ko.xz"),
           "virtio-iommu": os.path.join("drivers", "iommu",
                                        "virtio-iommu.ko.xz"),
           "virtio-blk": os.path.join("drivers", "block", "virtio_blk.ko.xz")}


def module_path(kernel, name):
    return os.path.join(_MODULE_DIRS[kernel], MODULES[name])


def module(kernel, name):
    """(file name, contents) of module NAME of KERNEL, for extra_files."""
    with lzma.open(module_path(kernel, name)) as f:
        return (name + ".ko", f.read())


def make_sysfs(work, host_bdf, vfio_index):
    """The fake sysfs device directory QEMU's sysfsdev= points at."""
    sysfsdev = os.path.join(work, "sys", host_bdf)
    vdir = os.path.join(sysfsdev, "vfio-dev", f"vfio{vfio_index}")
    os.makedirs(vdir, exist_ok=True)
    with open(os.path.join(vdir, "dev"), "w") as f:
        f.write(f"{HOSTMODEL_VFIO_MAJOR}:{vfio_index}\n")
    return sysfsdev


def read_trace(path):
    """The model's trace records (a list of dicts); [] if there is none."""
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def summary(records, limit=8):
    """The first LIMIT records, one JSON line each, for a diagnostic."""
    return "\n".join(json.dumps(r) for r in records[:limit]) + (
        f"\n... {len(records) - limit} more" if len(records) > limit else "")


# --- ACPI IORT, as the guest read it from /sys/firmware/acpi/tables/IORT ---

IORT_NODE_TYPES = {0: "ITS group", 1: "named component", 2: "root complex",
                   3: "SMMUv1/v2", 4: "SMMUv3", 5: "PMCG", 6: "RMR"}


def parse_iort(hexstr):
    """Revision and nodes (type, length, revision, offset, body) of an IORT."""
    b = bytes.fromhex(hexstr)
    if len(b) < 48 or b[:4] != b"IORT":
        raise ValueError("not an IORT table")
    length = int.from_bytes(b[4:8], "little")
    rev = b[8]
    count = int.from_bytes(b[36:40], "little")
    off = int.from_bytes(b[40:44], "little")
    nodes = []
    for _ in range(count):
        ntype = b[off]
        nlen = int.from_bytes(b[off + 1:off + 3], "little")
        nrev = b[off + 3]
        nodes.append({"type": ntype, "name": IORT_NODE_TYPES.get(ntype, "?"),
                      "length": nlen, "revision": nrev, "offset": off,
                      "body": b[off:off + nlen]})
        off += nlen
    return {"length": length, "revision": rev, "nodes": nodes}


def smmuv3_base(node):
    """Base address of an IORT SMMUv3 node (offset 16 of the node)."""
    return int.from_bytes(node["body"][16:24], "little")


class Tap:
    """Minimal TAP producer: one line per check, the plan at the end."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, diag=""):
        self.n += 1
        print(f"{'ok' if cond else 'not ok'} {self.n} - {name}", flush=True)
        if not cond:
            self.failed += 1
            for line in str(diag).splitlines():
                print(f"#   {line}", flush=True)
        return cond

    def skip(self, name, reason):
        self.n += 1
        print(f"ok {self.n} - {name} # SKIP {reason}", flush=True)

    def done(self):
        print(f"1..{self.n}", flush=True)
        return 1 if self.failed else 0
