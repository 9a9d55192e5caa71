# Writing and comparing the patch series.  Source it after common.sh.
# shellcheck shell=bash

COVER_TEXT=$TOP/docs/cover-letter.txt

# series_export OUTDIR: write base..HEAD (or base..$SERIES_HEAD) of build/src as a git format-patch
# series plus 0000-cover-letter.patch into OUTDIR.  The same commits give
# byte-identical files: no commit ids, no signature, dates from the commits.
series_export() {
    local out=$1 n subject head=${SERIES_HEAD:-HEAD}
    mkdir -p "$out"
    n=$(git -C "$SRC" rev-list --count "base..$head") ||
        die "$SRC: cannot list base..$head (no tag 'base'? run 'make tree')"
    [ "$n" -gt 0 ] || return 0
    # Only build/src's own config counts: a developer's global settings
    # (diff.algorithm, format.*, color.ui, ...) would change the bytes.
    export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
    git -C "$SRC" -c core.abbrev=12 -c diff.noprefix=false \
        -c diff.mnemonicPrefix=false -c diff.renames=true \
        -c format.signoff=false -c format.thread=false \
        format-patch -q --zero-commit --no-signature --numbered \
        --diff-algorithm=myers --no-color \
        --no-cover-letter --subject-prefix=PATCH -o "$out" "base..$head" >/dev/null
    [ -f "$COVER_TEXT" ] || die "$COVER_TEXT missing (first line: subject, then the blurb)"
    subject=$(head -n1 "$COVER_TEXT")
    {
        echo "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001"
        git -C "$SRC" log -1 --format='From: %an <%ae>%nDate: %aD' "$head"
        printf 'Subject: [PATCH %0*d/%d] %s\n\n' "${#n}" 0 "$n" "$subject"
        tail -n +3 "$COVER_TEXT"
        echo
        git -C "$SRC" shortlog "base..$head"
        git -C "$SRC" -c diff.renames=true diff --no-color --diff-algorithm=myers \
            --stat=72 --summary base "$head"
    } > "$out/0000-cover-letter.patch"
}

# Patches of a directory in order, without the cover letter.
series_files() {
    [ -d "$1" ] || return 0
    find "$1" -maxdepth 1 -name '0[0-9][0-9][0-9]-*.patch' \
         ! -name '0000-cover-letter.patch' | sort
}

# A patch file with its position in the series taken out, so that the same
# commit compares equal wherever it stands.
series_normalize() {
    sed -e 's/^Subject: \[PATCH [0-9]*\/[0-9]*\]/Subject: [PATCH]/' "$1"
}
