#!/usr/bin/env bash
# make export: rewrite patches/ from base..HEAD of build/src.
set -euo pipefail
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/series.sh"

[ -e "$SRC/.git" ] || die "$SRC is not a git tree; run 'make tree' first"
if [ -n "$(git -C "$SRC" status --porcelain --untracked-files=normal)" ]; then
    note "warning: $SRC has uncommitted changes; they are not exported:"
    git -C "$SRC" status --short | head -n 20 >&2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
series_export "$tmp"
mkdir -p "$TOP/patches"
find "$TOP/patches" -maxdepth 1 -name '0[0-9][0-9][0-9]-*.patch' -delete
if compgen -G "$tmp/*.patch" >/dev/null; then
    cp "$tmp"/*.patch "$TOP/patches/"
fi
note "patches/: $(series_files "$TOP/patches" | wc -l) patches and a cover letter"
