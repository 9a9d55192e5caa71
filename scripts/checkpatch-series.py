#!/usr/bin/env python3
"""Run QEMU's scripts/checkpatch.pl on every patch of patches/ (TAP)."""

import os
import re
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(os.environ.get("BUILD", os.path.join(TOP, "build")), "src")


def main():
    pdir = os.path.join(TOP, "patches")
    patches = sorted(p for p in os.listdir(pdir)
                     if re.match(r"0\d{3}-.*\.patch$", p)
                     and p != "0000-cover-letter.patch")
    failed = 0
    for i, p in enumerate(patches, 1):
        r = subprocess.run(["perl", os.path.join(SRC, "scripts", "checkpatch.pl"),
                            "--color=never", os.path.join(pdir, p)],
                           cwd=SRC, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        bad = r.returncode != 0 or re.search(r"^(ERROR|WARNING):", r.stdout, re.M)
        print(f"{'not ok' if bad else 'ok'} {i} - {p}")
        if bad:
            failed += 1
            for line in r.stdout.splitlines()[-40:]:
                print(f"#   {line}")
    print(f"1..{len(patches)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
