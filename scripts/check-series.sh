#!/usr/bin/env bash
# make check-series: fail when patches/ does not hold exactly the series in
# build/src (base..HEAD), or when build/src has uncommitted changes.
set -euo pipefail
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/series.sh"

[ -e "$SRC/.git" ] || die "$SRC is not a git tree; run 'make tree' first"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/patches" "$tmp/src"
series_export "$tmp/src"
for f in "$TOP"/patches/0[0-9][0-9][0-9]-*.patch; do
    [ -f "$f" ] && cp "$f" "$tmp/patches/"
done
rc=0
if ! diff -r -q "$tmp/patches" "$tmp/src" >/dev/null; then
    note "patches/ and build/src differ:"
    (cd "$tmp" && diff -ru patches src | head -n 40) >&2 || true
    note "run 'make export' (build/src is newer) or 'make tree' (patches/ is newer)"
    rc=1
fi
dirty=$(git -C "$SRC" status --porcelain --untracked-files=normal) ||
    die "git status in $SRC failed (see above)"
if [ -n "$dirty" ]; then
    note "build/src has uncommitted changes that no patch holds:"
    echo "$dirty" | head -n 20 >&2
    rc=1
fi
[ "$rc" = 0 ] && note "patches/ holds the series in build/src ($(git -C "$SRC" rev-list --count base..HEAD) patches)"
exit "$rc"
