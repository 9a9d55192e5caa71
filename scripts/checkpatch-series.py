#!/usr/bin/env python3
"""Run QEMU's scripts/checkpatch.pl on every patch of patches/ (TAP).

A patch passes when checkpatch reports no error and no warning, with one
exception: checkpatch reminds every change to the headers imported from
Linux (linux-headers/, include/standard-headers/) to come from
scripts/update-linux-headers.sh.  A patch that adds proposed uAPI values
(not in any Linux release) cannot; that reminder is accepted, and printed,
for a patch that touches nothing but those headers (checkpatch itself
makes mixing them with other changes an error).

A second exception: checkpatch asks of every new file without an SPDX
line whether it needs one.  Expected ACPI tables (tests/data/acpi/) are
binary blobs that cannot carry one; the bios-tables-test process adds
them as empty files first.  That question is accepted, and printed, for
those files only.
"""

import os
import re
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMPORTED = re.compile(r"^(linux-headers|include/standard-headers)/")
HEADERS_REMINDER = "are you using scripts/update-linux-headers.sh?"
ACPI_DATA_SPDX = re.compile(r"^Does new file 'tests/data/acpi/[^']+' need "
                            r"'SPDX-License-Identifier'\?$")
SRC = os.path.join(os.environ.get("NMSI_BUILD", os.path.join(TOP, "build")), "src")


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
        with open(os.path.join(pdir, p)) as f:
            files = re.findall(r"^\+\+\+ b/(\S+)", f.read(), re.M)
        only_imported = files and all(IMPORTED.match(x) for x in files)
        problems = re.findall(r"^(ERROR|WARNING): (.*)$", r.stdout, re.M)
        accepted = [m for k, m in problems
                    if k == "WARNING" and
                    ((only_imported and HEADERS_REMINDER in m) or
                     ACPI_DATA_SPDX.match(m))]
        bad = len(problems) != len(accepted) or (r.returncode != 0 and not accepted)
        print(f"{'not ok' if bad else 'ok'} {i} - {p}")
        for m in accepted:
            print(f"# accepted: {m}")
        if bad:
            failed += 1
            for line in r.stdout.splitlines()[-40:]:
                print(f"#   {line}")
    print(f"1..{len(patches)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
