#!/usr/bin/env python3
"""make check: run every test suite of the project and report each test.

Suites speak TAP (glib's --tap for qtests, our own for the rest).  Each
test's result is printed as one line; the run ends with the line
'N passed, N failed, N skipped' and exits non-zero on any failure.  Tests
that are deliberately not run are reported as skipped with the reason.
"""

import atexit
import os
import re
import shutil
import signal
import subprocess
import tempfile
import sys
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("NMSI_BUILD", os.path.join(TOP, "build"))
OBJ = os.path.join(BUILD, "obj")
# the build without iommufd (NMSI_STUB=1 scripts/build.sh)
STUB_OBJ = os.path.join(BUILD, "obj-stub")
TMP = os.path.join(BUILD, "tmp")

# With Debian's edk2 (not the one the expected tables were made with), these
# cases differ in firmware-allocated addresses that the linker-loader patches
# into one table each; every other table matches byte for byte.  The case is
# reported as skipped; a second check runs it and passes only if that one
# expected file is the only mismatch, so the rest of its tables stay covered.
KNOWN_FIRMWARE_DIFFS = {
    "/aarch64/acpi/virt": "HEST",
    "/aarch64/acpi/virt/memhp": "SSDT.memhp",
}
KNOWN_SKIPS = {
    case: f"expected {table} differs only in firmware-allocated addresses "
          "with Debian's edk2 (not QEMU's bundled one)"
    for case, table in KNOWN_FIRMWARE_DIFFS.items()
}
MISMATCH_RE = re.compile(r"Warning! \S+ binary file mismatch\. .*"
                         r"Expected \[aml:[^\]]*/([^/\]]+)\]")


def known_diff_checks(binary, obj):
    """Run each KNOWN_FIRMWARE_DIFFS case; PASS iff its only mismatching
    expected table is the known one."""
    out = []
    for case, table in KNOWN_FIRMWARE_DIFFS.items():
        name = f"{case} [every table but {table}]"
        # a failing bios-tables-test leaves its aml-* files behind
        scratch = tempfile.mkdtemp(dir=TMP)
        env = dict(os.environ, TMPDIR=scratch, **qtest_env())
        try:
            r = subprocess.run([binary, "--tap", "-k", "-p", case], cwd=obj,
                               env=env, text=True, errors="replace",
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=300)
        except subprocess.TimeoutExpired:
            out.append(("FAIL", name, "timed out"))
            continue
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        got = sorted(set(MISMATCH_RE.findall(r.stdout)))
        if got == [table]:
            out.append(("PASS", name, ""))
        else:
            out.append(("FAIL", name, f"mismatching tables: {got or 'none'}"))
    return out


def qtest_env():
    return {"QTEST_QEMU_BINARY": "./qemu-system-aarch64"}


def qtest_binary(name, obj=OBJ):
    return os.path.join(obj, "tests", "qtest", name)


def qtest(name, prefix, timeout, skips=None, obj=OBJ, only=None):
    """A qtest binary of build directory OBJ run on the test cases under
    PREFIX (those matching the regex ONLY, if given).  Cases named in
    SKIPS (path -> reason) are not run and are reported as skipped."""
    def prepare():
        binary = qtest_binary(name, obj)
        if not skips and not only:
            return [binary, "--tap", "-k", "-r", prefix], []
        # glib's -s skips a whole subtree and /aarch64/acpi/virt is both a
        # case and the parent of the others: list the cases and name each
        # one to run with -p (an exact match).
        env = dict(os.environ, TMPDIR=TMP, **qtest_env())
        listed = subprocess.run([binary, "-l"], cwd=obj, env=env, text=True,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, timeout=60)
        cases = [c.strip() for c in listed.stdout.splitlines()
                 if c.startswith(prefix + "/") and
                 (not only or re.search(only, c))]
        if listed.returncode != 0 or not cases:
            raise RuntimeError(f"listing the cases failed: {listed.stdout[-500:]}")
        cmd = [binary, "--tap", "-k"]
        pre = []
        for c in cases:
            if skips and c in skips:
                pre.append(("SKIP", c, skips[c]))
            else:
                cmd += ["-p", c]
        return cmd, pre + (known_diff_checks(binary, obj) if skips else [])
    return {"name": name, "prepare": prepare, "cwd": obj, "env": qtest_env(),
            "timeout": timeout, "targets": [f"tests/qtest/{name}"],
            "obj": obj}


HOSTMODEL_LIB = "tests/hostmodel/libqemu-hostmodel.so"
# Host model kernel profiles besides Linux 7.2's (the default): the first
# release with vIOMMUs (QEMU must refuse it: no vEVENTQ) and the first with
# vEVENTQs (every nested attach needs a vDEVICE there)
KERNEL_PROFILES = ["release=6.13", "release=6.15"]


def stub_suites():
    """QEMU built without iommufd, as on hosts that lack it: the qtests
    built there pass, their iommufd cases not registered or skipped; the
    others are not built at all (meson)."""
    out = [qtest("bios-tables-test", "/aarch64/acpi/virt", 300,
                 obj=STUB_OBJ, only=r"/smmuv3"),
           qtest("qos-test", "/aarch64/virt/generic-pcihost/"
                 "pci-bus-generic/pci-bus/virtio-iommu-pci", 300,
                 obj=STUB_OBJ),
           qtest("smmuv3-s2fwb-test", "/aarch64/smmuv3-s2fwb", 120,
                 obj=STUB_OBJ)]
    for name, prefix in (("vfio-hostmodel-test", "/aarch64/vfio-hostmodel"),
                         ("smmuv3-accel-test", "/aarch64/smmuv3-accel"),
                         ("virt-msi-window-test", "/aarch64/virt-msi-window"),
                         ("virtio-iommu-direct-test",
                          "/aarch64/virtio-iommu-direct")):
        suite = qtest(name, prefix, 300, obj=STUB_OBJ)
        suite["optional"] = "not built without CONFIG_IOMMUFD"
        out.append(suite)
    for s in out:
        s["name"] = "stub/" + s["name"]
        s.pop("targets")        # scripts/build.sh builds the stub's own
    return out


def suites():
    pdir = os.path.join(TOP, "patches")
    patches = sorted(p for p in (os.listdir(pdir) if os.path.isdir(pdir) else [])
                     if re.match(r"0\d{3}-.*\.patch$", p)
                     and p != "0000-cover-letter.patch")
    out = []
    if patches:
        out.append({"name": "checkpatch",
                    "cmd": [sys.executable, os.path.join(TOP, "scripts", "checkpatch-series.py")],
                    "cwd": TOP, "env": {}, "timeout": 600})
    out.append({"name": "scripts",
                "cmd": [sys.executable,
                        os.path.join(TOP, "tests", "scripts", "test-scripts.py")],
                "cwd": TOP, "env": {}, "timeout": 300})
    out.append(qtest("bios-tables-test", "/aarch64/acpi", 900, KNOWN_SKIPS))
    out.append(qtest("qos-test", "/aarch64/virt/generic-pcihost/"
                     "pci-bus-generic/pci-bus/virtio-iommu-pci", 300))
    out.append(qtest("smmuv3-s2fwb-test", "/aarch64/smmuv3-s2fwb", 120))
    # the host model's own tests, then QEMU's vfio-pci against it
    out.append({"name": "hostmodel",
                "cmd": [os.path.join(OBJ, "tests", "hostmodel", "test-hostmodel"),
                        "--tap", "-k"],
                "cwd": OBJ, "env": {}, "timeout": 300,
                "targets": [HOSTMODEL_LIB, "tests/hostmodel/test-hostmodel"]})
    for name, prefix in (("vfio-hostmodel-test", "/aarch64/vfio-hostmodel"),
                         ("smmuv3-accel-test", "/aarch64/smmuv3-accel"),
                         ("virt-msi-window-test", "/aarch64/virt-msi-window"),
                         ("virtio-iommu-direct-test",
                          "/aarch64/virtio-iommu-direct")):
        suite = qtest(name, prefix, 300)
        suite["targets"].append(HOSTMODEL_LIB)
        out.append(suite)
    # the accel qtests again on the host model's other kernel profiles
    for profile in KERNEL_PROFILES:
        suite = qtest("smmuv3-accel-test", "/aarch64/smmuv3-accel", 300)
        suite["name"] += f" [kernel {profile}]"
        suite["env"] = dict(suite["env"], QTEST_HOSTMODEL_KERNEL=profile)
        suite["targets"].append(HOSTMODEL_LIB)
        out.append(suite)
    for t in sorted(os.listdir(os.path.join(TOP, "tests", "guest"))):
        if t.startswith("test-") and t.endswith(".py"):
            out.append({"name": "guest/" + t[5:-3],
                        "cmd": [sys.executable,
                                os.path.join(TOP, "tests", "guest", t)],
                        "cwd": TOP, "env": {}, "timeout": 1200,
                        "targets": [HOSTMODEL_LIB]})
    # the real-kernel rig: L0 (this QEMU) -> Linux 7.2 -> L2 (docs/testing.md)
    for t in sorted(os.listdir(os.path.join(TOP, "tests", "rig"))):
        if t.startswith("test-") and t.endswith(".py"):
            out.append({"name": "rig/" + t[5:-3],
                        "cmd": [sys.executable,
                                os.path.join(TOP, "tests", "rig", t)],
                        "cwd": TOP, "env": {}, "timeout": 2400,
                        "targets": []})
    out += stub_suites()
    only = os.environ.get("CHECK_ONLY")
    if only:
        out = [s for s in out if re.search(only, s["name"])]
    return out


# The suite running: its process group goes with us (Ctrl-C, a crash)
RUNNING = []


@atexit.register
def kill_running():
    for p in RUNNING:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


TAP_RE = re.compile(r"^(ok|not ok)\s+(\d+)\s*(?:-\s*)?(.*?)\s*(?:#\s*(SKIP|TODO)\b\s*(.*))?$",
                    re.IGNORECASE)


def run_suite(s, counts):
    print(f"=== {s['name']}", flush=True)
    if s.get("obj") == STUB_OBJ and not os.path.exists(
            os.path.join(STUB_OBJ, ".build-ok")):
        print(f"FAIL {s['name']}: the build without iommufd failed or is "
              f"missing (build/stub-build.log, 'make check-stub')", flush=True)
        counts["FAIL"] += 1
        return
    if s.get("optional") and not os.path.exists(
            qtest_binary(s["name"].split("/")[-1], s["obj"])):
        # meson leaves it out of that build, as it should
        print(f"PASS {s['name']}: {s['optional']}", flush=True)
        counts["PASS"] += 1
        return
    env = dict(os.environ, TMPDIR=TMP, **s["env"])
    log = os.path.join(BUILD, "check-logs",
                       re.sub(r"[^A-Za-z0-9.=-]+", "_", s["name"]) + ".log")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    begin = time.monotonic()
    results = []
    plan = None
    try:
        cmd, pre = s["prepare"]() if "prepare" in s else (s["cmd"], [])
        start = time.monotonic()
        for r in pre:
            results.append(r)
            print(f"{r[0]} {s['name']}: {r[1]}" + (f"  [{r[2]}]" if r[2] else ""),
                  flush=True)
        with open(log, "w") as logf:
            # its own process group: a timeout kills what it started too
            p = subprocess.Popen(cmd, cwd=s["cwd"], env=env,
                                 stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True,
                                 errors="replace", start_new_session=True)

            def kill_group(p=p):
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            timer = threading.Timer(s["timeout"], kill_group)
            timer.start()
            RUNNING.append(p)
            for line in p.stdout:
                logf.write(line)
                line = line.rstrip("\n")
                m = TAP_RE.match(line)
                if m:
                    status, _, name, directive, reason = m.groups()
                    name = name or f"test {len(results) + 1}"
                    if directive and directive.upper() == "SKIP":
                        reason = KNOWN_SKIPS.get(name, reason or "skipped")
                        results.append(("SKIP", name, reason))
                    elif status == "ok":
                        results.append(("PASS", name, ""))
                    else:
                        results.append(("FAIL", name, ""))
                    tag, nm, why = results[-1]
                    print(f"{tag} {s['name']}: {nm}" + (f"  [{why}]" if why else ""),
                          flush=True)
                elif re.match(r"^1\.\.(\d+)", line):
                    # glib prints a plan after each -p; the last counts
                    plan = len(pre) + int(line[3:].split()[0])
                elif line.startswith("#") and results and results[-1][0] == "FAIL":
                    print("   " + line, flush=True)
            rc = p.wait()
            timer.cancel()
            RUNNING.remove(p)
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        results.append(("FAIL", "start", str(e)))
        print(f"FAIL {s['name']}: cannot start: {e}", flush=True)
        rc = 0
    elapsed = time.monotonic() - start if "start" in locals() else 0
    problems = []
    if elapsed >= s["timeout"]:
        problems.append(f"timed out after {s['timeout']} s")
    elif rc != 0 and not any(r[0] == "FAIL" for r in results):
        problems.append(f"exited with status {rc}")
    if plan is not None and plan != len(results):
        problems.append(f"planned {plan} tests, reported {len(results)}")
    if not results and not problems:
        problems.append("reported no test")
    for why in problems:
        results.append(("FAIL", "suite", why))
        print(f"FAIL {s['name']}: suite {why} (log: {log})", flush=True)
    for tag, *_ in results:
        counts[tag] += 1
    print(f"--- {s['name']}: {time.monotonic() - begin:.0f} s, log {log}",
          flush=True)


def main():
    if sys.argv[1:] == ["--list-targets"]:
        # the ninja targets the suites need, for scripts/build.sh
        for t in sorted({t for s in suites() for t in s.get("targets", [])}):
            print(t)
        return 0
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    for s in suites():
        run_suite(s, counts)
    print(f"{counts['PASS']} passed, {counts['FAIL']} failed, "
          f"{counts['SKIP']} skipped", flush=True)
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
