# A private apt configuration under build/apt, used to download Debian
# source and binary packages (including arm64 ones for the guest) without
# touching the machine's own apt setup.  Source it after common.sh.
# shellcheck shell=bash

# Suites the project reads from.  The base source package lives in sid;
# meson, pycotap and the 6.12 guest kernel come from trixie, busybox from
# bookworm; the 7.2 guest kernel from sid (arm64 only).
APT_SRC_SUITES=${APT_SRC_SUITES:-"sid"}
APT_BIN_SUITES=${APT_BIN_SUITES:-"trixie bookworm"}
APT_ARM64_SUITES=${APT_ARM64_SUITES:-"sid"}

# The Debian archive URI, read from the machine's apt configuration (the
# source entry whose Release file says Label: Debian), or DEBIAN_ARCHIVE.
debian_archive_uri() {
    local uri
    if [ -n "${DEBIAN_ARCHIVE:-}" ]; then
        echo "${DEBIAN_ARCHIVE%/}"
        return
    fi
    uri=$(apt-get indextargets --format '$(LABEL) $(REPO_URI)' 2>/dev/null |
          awk '$1 == "Debian" { print $2; exit }')
    if [ -z "$uri" ]; then
        # No release information yet: take the first plain Debian entry.
        uri=$(apt-get indextargets --no-release-info \
                  --format '$(REPO_URI) $(RELEASE)' 2>/dev/null |
              awk '$2 !~ /-(security|updates|backports)$/ { print $1; exit }')
    fi
    [ -n "$uri" ] ||
        die "cannot find a Debian archive in the machine's apt configuration" \
            "(apt-get indextargets lists none); run 'apt-get update' or set" \
            "DEBIAN_ARCHIVE=URI"
    echo "${uri%/}"
}

APT_OPTS=(
    -o "Dir::Etc::SourceList=$APTDIR/sources.list"
    -o "Dir::Etc::SourceParts=$APTDIR/sources.list.d"
    -o "Dir::State::Lists=$APTDIR/lists"
    -o "Dir::Cache=$APTDIR/cache"
    -o "Dir::State::status=$APTDIR/status"
    -o "APT::Architectures::=amd64"
    -o "APT::Architectures::=arm64"
    -o "APT::Sandbox::User=root"
    -o "Acquire::Languages=none"
    -o "Debug::NoLocking=1"
)

apt_private_setup() {
    local uri keyring=/usr/share/keyrings/debian-archive-keyring.gpg s
    mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" \
             "$APTDIR/sources.list.d"
    : > "$APTDIR/status"
    uri=$(debian_archive_uri) || exit 1
    [ -r "$keyring" ] || die "$keyring missing: install debian-archive-keyring"
    {
        echo "# Written by scripts/apt-private.sh from the machine's apt configuration."
        for s in $APT_SRC_SUITES; do
            echo "deb-src [signed-by=$keyring] $uri $s main"
        done
        for s in $APT_BIN_SUITES; do
            echo "deb [arch=amd64,arm64 signed-by=$keyring] $uri $s main"
        done
        for s in $APT_ARM64_SUITES; do
            echo "deb [arch=arm64 signed-by=$keyring] $uri $s main"
        done
    } > "$APTDIR/sources.list.new"
    if ! cmp -s "$APTDIR/sources.list.new" "$APTDIR/sources.list"; then
        mv "$APTDIR/sources.list.new" "$APTDIR/sources.list"
        rm -f "$APTDIR/updated"
    else
        rm -f "$APTDIR/sources.list.new"
    fi
}

apt_private() {
    apt-get "${APT_OPTS[@]}" "$@"
}

apt_private_cache() {
    apt-cache "${APT_OPTS[@]}" "$@"
}

# Download the indexes once; 'apt_private_update force' refreshes them.
apt_private_update() {
    apt_private_setup
    if [ -f "$APTDIR/updated" ] && [ "${1:-}" != force ]; then
        return 0
    fi
    note "downloading package indexes into $APTDIR"
    apt_private -qq --error-on=any update >"$APTDIR/update.log" 2>&1 ||
        die "apt-get update with the private configuration failed;" \
            "see $APTDIR/update.log (is the Debian archive reachable?)"
    touch "$APTDIR/updated"
}

# find_pinned DIR NAME SHA256: print the .deb of NAME in DIR with that sum.
find_pinned() {
    local f
    for f in "$1/${2%%:*}"_*.deb; do
        if sha256_ok "$f" "$3"; then
            echo "$f"
            return 0
        fi
    done
    return 1
}

# apt_private_download DIR NAME=VERSION SHA256 ...: fetch binary packages
# into DIR unless a file with the pinned checksum is already there.
apt_private_download() {
    local dir=$1 spec sum name ver
    shift
    mkdir -p "$dir"
    while [ $# -ge 2 ]; do
        spec=$1 sum=$2
        shift 2
        name=${spec%%=*} ver=${spec#*=}
        find_pinned "$dir" "$name" "$sum" >/dev/null && continue
        apt_private_update
        note "downloading $name $ver"
        if ! (cd "$dir" && apt_private -qq download "$name=$ver" \
                  >"$APTDIR/download.log" 2>&1); then
            apt_private_update force
            (cd "$dir" && apt_private -qq download "$name=$ver" \
                 >"$APTDIR/download.log" 2>&1) ||
                die "cannot download $name version $ver" \
                    "(see $APTDIR/download.log); the archive may no longer" \
                    "carry this version: update the pin in the project"
        fi
        find_pinned "$dir" "$name" "$sum" >/dev/null ||
            die "$name $ver: downloaded, but its sha256 is not the pinned" \
                "$sum; refusing it"
    done
}
