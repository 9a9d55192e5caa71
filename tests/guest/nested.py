"""Boots of real arm64 guests whose passed-through device is the host
model's virtio-rng function, behind a vIOMMU: shared by the real-guest
tests and make demo.

The host model (tests/hostmodel) is LD_PRELOADed into QEMU; QEMU passes
its function through with vfio-pci and the iommufd backend.  The guest's
/init (init-nested.sh) prints what it sees as '@@' lines; the model's
trace says what the host did.
"""

import concurrent.futures
import os

import guestlib as g

HOST_BDF = "0000:01:00.0"
VFIO_INDEX = 3
MODEL_CONFIG = f"""\
smmu smmu0
device {HOST_BDF} vfio={VFIO_INDEX} smmu=smmu0 sid=0x100 function=virtio-rng
"""
GUEST_BDF = "0000:00:02.0"
HWRNG_BYTES = 64
MACHINE = "virt,gic-version=3"
WINDOW = (0x0b000000, 0x0b0fffff)       # the machine's default
# the model puts the host ITS page first in the window; GITS_TRANSLATER
# is at offset 0x40
DOORBELL = hex(WINDOW[0] + 0x40)
OPT_SW_MSI_START = 2                    # proposed, see linux-headers
IORT_RMR = 6


def resv_line(b, kind, bdf=None):
    """Whether the guest lists the window as KIND for GUEST_BDF's group."""
    groups = {p.split()[0]: p.split()[-1] for p in b.all("PCI")}
    want = [groups.get(bdf or GUEST_BDF), f"0x{WINDOW[0]:016x}", f"0x{WINDOW[1]:016x}",
            kind]
    return any(r.split() == want for r in b.all("RESV"))


def rmr_nodes(b):
    """The guest's IORT revision and its RMR nodes, each a dict: flags,
    StreamIDs (first, last), the SMMU node it names (offset), and its one
    memory range (base, length)."""
    iort = b.all("IORT")
    if not iort:
        return None, []
    t = g.parse_iort(iort[0])
    out = []
    for node in t["nodes"]:
        if node["type"] != IORT_RMR:
            continue
        body = node["body"]
        ids = int.from_bytes(body[12:16], "little")
        desc = int.from_bytes(body[24:28], "little")
        u32 = [int.from_bytes(body[ids + 4 * i:ids + 4 * i + 4], "little")
               for i in range(5)]
        out.append({"flags": int.from_bytes(body[16:20], "little"),
                    "sids": (u32[2], u32[2] + u32[1]), "smmu": u32[3],
                    "base": int.from_bytes(body[desc:desc + 8], "little"),
                    "length": int.from_bytes(body[desc + 8:desc + 16],
                                             "little")})
    return t["revision"], out


def workdir(kernel, tag, workroot=None):
    """Where boot() keeps the files of the boot TAG of KERNEL; the
    sysfsdev of host function BDF is its sys/BDF."""
    return os.path.join(workroot or os.path.join(g.BUILD, "tests"),
                        f"msi-window-{tag}-{kernel}")


def boot(kernel, tag, devices, modules, machine=MACHINE, append="",
         workroot=None, config=MODEL_CONFIG, vfio=None, on_line=None):
    """Boot KERNEL on MACHINE with DEVICES (QEMU arguments) and the model's
    functions passed through: VFIO lists (host BDF, vfio index, vfio-pci
    options), by default the one function at 00:02.0; a function not
    listed can be hot-plugged with the sysfsdev in Boot.sysfs.  MODULES go
    into the initramfs, ON_LINE sees the console as it comes.  Returns the
    Boot and the model's trace records."""
    if vfio is None:
        vfio = [(HOST_BDF, VFIO_INDEX, "addr=0x2")]
    work = workdir(kernel, tag, workroot)
    os.makedirs(work, exist_ok=True)
    config_path = os.path.join(work, "hostmodel.conf")
    trace_path = os.path.join(work, "trace.jsonl")
    with open(config_path, "w") as f:
        f.write(config)
    if os.path.exists(trace_path):
        os.unlink(trace_path)
    sysfs = {}
    for line in config.splitlines():
        f = line.split()
        if f and f[0] == "device":
            index = int(dict(x.split("=", 1) for x in f[2:])["vfio"])
            sysfs[f[1]] = g.make_sysfs(work, f[1], index)
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "init-nested.sh")) as f:
        init = f.read()
    env = {"LD_PRELOAD": g.HOSTMODEL_LIB, "HOSTMODEL_CONFIG": config_path,
           "HOSTMODEL_TRACE": trace_path}
    for bdf, _, opts in vfio:
        devices = devices + ["-device", f"vfio-pci,iommufd=iommufd0,{opts},"
                             f"sysfsdev={sysfs[bdf]}"]
    b = g.boot(machine, ["-object", "iommufd,id=iommufd0"] + devices,
               init, work, kernel=kernel, env=env,
               extra_append=f"HWRNG_BYTES={HWRNG_BYTES} {append}",
               extra_files=[g.module(kernel, m) for m in modules],
               on_line=on_line)
    b.work = work
    b.trace_path = trace_path
    b.sysfs = sysfs
    return b, g.read_trace(trace_path)


def missing(kernel, modules=("virtio-rng", "virtio-iommu")):
    """What these boots need and this machine lacks."""
    lacking = g.missing_artifacts(kernel)
    if not os.path.exists(g.HOSTMODEL_LIB):
        lacking.append(f"host model library ({g.HOSTMODEL_LIB})")
    for m in modules:
        if not os.path.exists(g.module_path(kernel, m)):
            lacking.append(f"{m} module ({g.module_path(kernel, m)})")
    return lacking




def faults(trace):
    """The model's records of anything that went wrong: host events,
    walks and DMA that did not translate (a walk that ends at the ITS
    doorbell is an MSI write, not a fault)."""
    return [r for r in trace if r["kind"] == "event-host" or
            (r["kind"] in ("walk", "dma") and
             r.get("result") not in ("ok", "doorbell"))]


def booted(tap, name, b, count):
    """Report the boot; on failure, fail the COUNT checks that follow."""
    print(f"# {name}: boot took {b.seconds:.1f} s; console log in "
          f"{b.work}/console.log, model trace in {b.trace_path}")
    if tap.ok(b.completed, f"{name}: guest boots and reports",
              f"timed out: {b.timed_out}, exit: {b.returncode}\n{b.tail()}"):
        return True
    for _ in range(count):
        tap.ok(False, f"{name}: (no guest report)")
    return False


def run_jobs(tap, jobs):
    """Run the boots of JOBS, (kernel, run, check) triples, two at a time
    (the machine has two cores), then their checks in order."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(run, kernel) for kernel, run, _ in jobs]
        for (kernel, _, check), fut in zip(jobs, futures):
            check(tap, kernel, fut.result())
