#!/usr/bin/env python3
"""The project's own shell scripts: no silent exits, and the README's
commands are the ones CI runs.  TAP output.

- shellcheck (warnings and errors) on every shell script under scripts/
  and tests/, and every Python file compiles;
- every script run under 'set -e' sources scripts/common.sh, whose ERR trap
  names the failing command instead of ending without a word;
- that trap, and deps.sh's installed_version on a package dpkg has never
  seen (the command substitution that used to end 'make deps' silently);
- scripts/check-fresh.sh types exactly the commands the README gives.
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = os.path.join(TOP, "scripts")


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def result(self, ok, name, diag=""):
        self.n += 1
        print(f"{'ok' if ok else 'not ok'} {self.n} - {name}", flush=True)
        if not ok:
            self.failed += 1
            for line in diag.splitlines()[:40]:
                print(f"# {line}", flush=True)

    def done(self):
        print(f"1..{self.n}", flush=True)
        return 1 if self.failed else 0


def shell_scripts():
    out = []
    for pat in ("scripts/*.sh", "scripts/rig/*.sh", "tests/**/*.sh",
                "tests/rig/l1-init", ".ci/run"):
        for f in sorted(glob.glob(os.path.join(TOP, pat), recursive=True)):
            out.append(f)
    return out


def run(cmd, **kw):
    return subprocess.run(cmd, text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=120, **kw)


def check_shellcheck(tap):
    sc = shutil.which("shellcheck")
    for f in shell_scripts():
        rel = os.path.relpath(f, TOP)
        if not sc:
            tap.result(False, f"shellcheck {rel}",
                       "shellcheck is not installed: run 'make deps'")
            continue
        # SC2034: the variables of the sourced common.sh look unused there
        r = run([sc, "-S", "warning", "-e", "SC2034", "-x", rel], cwd=TOP)
        tap.result(r.returncode == 0, f"shellcheck {rel}", r.stdout)


def check_error_net(tap):
    for f in sorted(glob.glob(os.path.join(SCRIPTS, "*.sh")) +
                    glob.glob(os.path.join(SCRIPTS, "rig", "*.sh"))):
        text = open(f).read()
        if not re.search(r"^set -e", text, re.M):
            continue
        rel = os.path.relpath(f, TOP)
        ok = re.search(r'^\. "\$\(dirname "\$0"\)/(\.\./)?common\.sh"$',
                       text, re.M)
        tap.result(bool(ok), f"{rel} runs under common.sh's error trap",
                   "it uses 'set -e' but does not source scripts/common.sh")


def check_trap_reports(tap):
    with tempfile.TemporaryDirectory() as d:
        script = os.path.join(d, "fails.sh")
        with open(script, "w") as f:
            f.write("#!/usr/bin/env bash\nset -euo pipefail\n"
                    f'. "{SCRIPTS}/common.sh"\n'
                    "f() { false | cat; }\n"
                    "x=$(f)\n"
                    "echo reached\n")
        r = run(["bash", script])
        ok = (r.returncode != 0 and "reached" not in r.stdout and
              re.search(r"fails\.sh:5: command failed with status 1: x=\$\(f\)",
                        r.stdout) is not None and
              r.stdout.count("command failed") == 1)
        tap.result(ok, "a failing command substitution is named once, with "
                   "its line", r.stdout)


def check_installed_version(tap):
    deps = open(os.path.join(SCRIPTS, "deps.sh")).read()
    m = re.search(r"^installed_version\(\) \{\n.*?^\}\n", deps, re.S | re.M)
    if not m:
        tap.result(False, "deps.sh: installed_version of an unknown package",
                   "no installed_version() in scripts/deps.sh")
        return
    body = ("set -euo pipefail\n" + m.group(0) +
            "v=$(installed_version nmsi-no-such-package)\n"
            'echo "version=[$v]"\n'
            "v=$(installed_version dpkg)\n"
            'echo "dpkg=[$v]"\n')
    r = run(["bash", "-c", body])
    ok = (r.returncode == 0 and "version=[]" in r.stdout and
          re.search(r"dpkg=\[\d", r.stdout) is not None)
    tap.result(ok, "deps.sh: installed_version of a package dpkg never saw "
               "is empty, not the end of the script", r.stdout)


def check_readme_commands(tap):
    fresh = open(os.path.join(SCRIPTS, "check-fresh.sh")).read()
    m = re.search(r"^COMMANDS=\(\n(.*?)^\)", fresh, re.S | re.M)
    cmds = re.findall(r'^\s*"([^"]+)"', m.group(1), re.M) if m else []
    readme = open(os.path.join(TOP, "README.md")).read()
    # the README's shell lines: indented code, comments dropped
    lines = [re.sub(r"\s+#.*$", "", l).strip()
             for l in readme.splitlines() if l.startswith("    ")]
    missing = [c for c in cmds if c not in lines]
    tap.result(bool(cmds) and not missing,
               "check-fresh types the README's commands",
               f"commands {cmds}; not in the README: {missing}")
    order = [lines.index(c) for c in cmds if c in lines]
    tap.result(bool(order) and order == sorted(order),
               "in the README's order", f"README line positions {order}")


def check_python(tap):
    """every Python file of the project compiles"""
    files = sorted(glob.glob(os.path.join(TOP, "scripts", "*.py")) +
                   glob.glob(os.path.join(TOP, "tests", "**", "*.py"),
                             recursive=True))
    for f in files:
        rel = os.path.relpath(f, TOP)
        r = run([sys.executable, "-c",
                 "import sys; compile(open(sys.argv[1]).read(), sys.argv[1], "
                 "'exec')", f])
        tap.result(r.returncode == 0, f"python {rel} compiles", r.stdout)


def main():
    tap = Tap()
    check_shellcheck(tap)
    check_python(tap)
    check_error_net(tap)
    check_trap_reports(tap)
    check_installed_version(tap)
    check_readme_commands(tap)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
