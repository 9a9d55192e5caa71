#!/usr/bin/env bash
# make check-bisect: build every prefix of the series (base + patch 1,
# base + patches 1-2, ...) in a worktree of build/src, so that each patch is
# known to build on its own.  With CHECK=1 it also runs make check's suites
# on each (slow).  Uses build/bisect/{src,obj}; ccache keeps it quick.
set -euo pipefail
. "$(dirname "$0")/common.sh"

[ -e "$SRC/.git" ] || die "$SRC is not a git tree; run 'make tree' first"
WT=$BUILD/bisect/src
mapfile -t commits < <(git -C "$SRC" rev-list --reverse base..HEAD)
[ "${#commits[@]}" -gt 0 ] || { note "no patches on base"; exit 0; }

if [ ! -d "$WT" ]; then
    git -C "$SRC" worktree add -q --detach "$WT" base
fi
n=0
for c in "${commits[@]}"; do
    n=$((n + 1))
    subject=$(git -C "$SRC" log -1 --format=%s "$c")
    note "[$n/${#commits[@]}] $subject"
    git -C "$WT" checkout -q --detach "$c"
    NMSI_BUILD=$BUILD/bisect NMSI_NO_SERIES_CHECK=1 "$TOP/scripts/build.sh" >"$BUILD/bisect/build-$n.log" 2>&1 || {
        tail -n 30 "$BUILD/bisect/build-$n.log" >&2
        die "patch $n ($subject) does not build; log: $BUILD/bisect/build-$n.log"
    }
    if [ "${CHECK:-0}" = 1 ]; then
        NMSI_BUILD=$BUILD/bisect NMSI_GUEST_DIR=$GUESTDIR \
            /usr/bin/python3 "$TOP/scripts/check.py" ||
            die "patch $n ($subject) fails make check"
    fi
done
note "every prefix of the series builds (${#commits[@]} patches)"
