#!/usr/bin/env bash
# make tree: create build/src, a git tree whose first commit is the pristine
# base (tag 'base') with patches/ applied by git am.  An existing build/src
# is brought up to date with patches/ only when that loses nothing: no
# uncommitted changes and every commit on base..HEAD held by patches/.
set -euo pipefail
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/series.sh"

# The identity of the series' commits in build/src (override per developer).
SERIES_NAME=${SERIES_NAME:-"Nested SMMUv3 MSI developers"}
SERIES_EMAIL=${SERIES_EMAIL:-"nested-smmuv3-msi@lists.invalid"}

apply_patches() {
    local files
    mapfile -t files < <(series_files "$TOP/patches")
    [ "${#files[@]}" -gt 0 ] || return 0
    git -C "$SRC" am -q --committer-date-is-author-date "${files[@]}" || {
        git -C "$SRC" am --abort 2>/dev/null || true
        die "git am of patches/ onto base failed; build/src is left at base"
    }
    note "applied ${#files[@]} patches"
}

if [ -e "$SRC" ] && [ ! -e "$SRC/.git" ]; then
    die "$SRC exists but is not a git tree; move it away"
fi

if [ -e "$SRC/.git" ]; then
    git -C "$SRC" rev-parse -q --verify refs/tags/base >/dev/null ||
        die "$SRC has no tag 'base'; move it away and run 'make tree'"
    for op in rebase-merge rebase-apply MERGE_HEAD CHERRY_PICK_HEAD; do
        [ ! -e "$(git -C "$SRC" rev-parse --git-path "$op")" ] ||
            die "$SRC has a git operation in progress ($op); finish or abort it first"
    done
    dirty=$(git -C "$SRC" status --porcelain --untracked-files=normal) ||
        die "git status in $SRC failed (see above)"
    [ -z "$dirty" ] ||
        die "$SRC has uncommitted changes; commit them (and 'make export')" \
            "or stash them first:"$'\n'"$dirty"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    mapfile -t ours < <(series_files "$TOP/patches")
    # Every commit reachable from HEAD or from the branch 'series' must be
    # held by patches/ (a detached HEAD may leave work on the branch).
    held=yes
    for head in HEAD refs/heads/series; do
        git -C "$SRC" rev-parse -q --verify "$head" >/dev/null || continue
        rm -rf "${tmp:?}/$head"
        SERIES_HEAD=$head series_export "$tmp/$head"
        mapfile -t theirs < <(series_files "$tmp/$head")
        for f in "${theirs[@]}"; do
            found=no
            for p in "${ours[@]}"; do
                if cmp -s <(series_normalize "$f") <(series_normalize "$p"); then
                    found=yes
                    break
                fi
            done
            if [ "$found" = no ]; then
                held=no
                note "not in patches/ ($head): $(sed -n 's/^Subject: //p' "$f" | head -n1)"
            fi
        done
    done
    [ "$held" = yes ] ||
        die "$SRC holds commits that patches/ lacks; run 'make export'" \
            "(or move build/src away) before 'make tree'"
    mapfile -t theirs < <(series_files "$tmp/HEAD")
    if [ "${#theirs[@]}" = "${#ours[@]}" ] &&
       cat "${theirs[@]}" </dev/null | cmp -s - <(cat "${ours[@]}" </dev/null) &&
       [ "$(git -C "$SRC" rev-parse HEAD)" = "$(git -C "$SRC" rev-parse -q --verify refs/heads/series)" ]; then
        note "$SRC already holds patches/"
        exit 0
    fi
    note "re-applying patches/ onto base in $SRC"
    git -C "$SRC" checkout -q -B series base
    apply_patches
    exit 0
fi

"$TOP/scripts/fetch-base.sh"
note "extracting $QEMU_ORIG into $SRC"
rm -rf "$SRC.tmp"
trap 'rm -rf "$SRC.tmp"' EXIT
mkdir -p "$SRC.tmp"
tar --no-same-owner -xJf "$BASEDIR/$QEMU_ORIG" -C "$SRC.tmp" --strip-components=1
(
    cd "$SRC.tmp"
    git init -q -b series
    git config user.name "$SERIES_NAME"
    git config user.email "$SERIES_EMAIL"
    git config core.autocrlf false
    git add -A -f .
    GIT_AUTHOR_NAME="QEMU" GIT_AUTHOR_EMAIL="qemu-devel@nongnu.org" \
    GIT_COMMITTER_NAME="QEMU" GIT_COMMITTER_EMAIL="qemu-devel@nongnu.org" \
    GIT_AUTHOR_DATE="2026-01-01T00:00:00Z" GIT_COMMITTER_DATE="2026-01-01T00:00:00Z" \
        git commit -q -m "QEMU 10.2.2 (Debian source package qemu $QEMU_SRC_VERSION, orig tarball)"
    git tag base
)
mv "$SRC.tmp" "$SRC"
apply_patches
note "$SRC ready: base + $(git -C "$SRC" rev-list --count base..HEAD) patches"
