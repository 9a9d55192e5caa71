# Nested SMMUv3 with working MSIs: a patch series for QEMU 10.2.2.
# 'make help' lists the targets; docs/workflow.md explains them.

SHELL := /bin/bash
PYTHON := /usr/bin/python3

# The steps share build/ (one apt configuration, one tree): never in parallel.
.NOTPARALLEL:

.PHONY: all build deps base tree export check-series check-bisect guest rig check check-stub check-fresh demo bench help

all: build

help:
	@echo "make deps          install the Debian packages the project needs"
	@echo "make base          fetch and verify the pinned QEMU 10.2.2 (+ds) source"
	@echo "make tree          create build/src: base (tag 'base') + patches/"
	@echo "make               build build/obj/qemu-system-aarch64 and the qtests"
	@echo "make guest         download and unpack the pinned arm64 guest packages"
	@echo "make rig           build the real-kernel rig: Linux 7.2 for L1, the series' QEMU for aarch64"
	@echo "make check         install and build what is missing, run every test"
	@echo "make check-stub    build without iommufd (as hosts that lack it); its qtests skip cleanly"
	@echo "make check-fresh   what CI runs: the README's commands on a fresh Debian root"
	@echo "make demo          set everything up and run the main job"
	@echo "make bench         print figures: invalidations, accel SMMUv3 vs emulated; L2 disk I/O on the rig"
	@echo "make export        rewrite patches/ from build/src (base..HEAD)"
	@echo "make check-series  fail if patches/ and build/src differ"
	@echo "make check-bisect  build every prefix of the series (CHECK=1: and test it)"

deps:
	@scripts/deps.sh

base:
	@scripts/fetch-base.sh

tree:
	@scripts/tree.sh

build:
	@scripts/build.sh

export:
	@scripts/export.sh

check-series:
	@scripts/check-series.sh

check-bisect:
	@scripts/check-bisect.sh

guest:
	@scripts/guest-artifacts.sh

# The real-kernel rig's artifacts (docs/testing.md); needs 'make' first
rig: build
	@scripts/rig/kernel.sh && scripts/rig/qemu-aarch64.sh

# A build or download failure still ends with the summary line.
check: deps
	@scripts/build.sh && scripts/guest-artifacts.sh && \
	    scripts/rig/kernel.sh && scripts/rig/qemu-aarch64.sh || \
	    { echo "make check: building or fetching what the tests need failed"; \
	      echo "0 passed, 1 failed, 0 skipped"; exit 1; }
	@NMSI_STUB=1 scripts/build.sh >build/stub-build.log 2>&1 || \
	    echo "make check: the build without iommufd failed" \
	         "(build/stub-build.log); its suites fail"
	@$(PYTHON) scripts/check.py

# QEMU without iommufd, in build/obj-stub: the new tests skip, none fails
check-stub: deps
	@NMSI_STUB=1 scripts/build.sh || \
	    { echo "make check-stub: building failed"; \
	      echo "0 passed, 1 failed, 0 skipped"; exit 1; }
	@CHECK_ONLY='^stub/' $(PYTHON) scripts/check.py

# CI: a fresh Debian 12 root, the README's commands in it (needs root)
check-fresh:
	@scripts/check-fresh.sh

demo: deps
	@$(MAKE) --no-print-directory build guest
	@$(PYTHON) scripts/demo.py

# Figures, not a test: docs/benchmarks.md
bench: rig guest
	@$(PYTHON) scripts/bench.py
