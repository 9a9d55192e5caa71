#!/usr/bin/env bash
# Fetch the pinned base (Debian source package qemu 1:10.2.2+ds-1) into
# build/base, verified by sha256.  Looks in $QEMU_BASE_CACHE and the
# download cache (NMSI_DOWNLOAD_CACHE) first, then downloads with apt's
# source download through the private apt config (and keeps a copy in the
# download cache).
set -euo pipefail
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/apt-private.sh"

mkdir -p "$BASEDIR"

have_all() {
    sha256_ok "$BASEDIR/$QEMU_ORIG" "$QEMU_ORIG_SHA256" &&
        sha256_ok "$BASEDIR/$QEMU_DEBIAN" "$QEMU_DEBIAN_SHA256"
}

have_all && exit 0

# Directories that may hold the files: QEMU_BASE_CACHE, the download cache.
cached=$(downloads_dir base "")
for dir in ${QEMU_BASE_CACHE:+"$QEMU_BASE_CACHE"} ${cached:+"$cached"}; do
    for f in "$QEMU_ORIG:$QEMU_ORIG_SHA256" "$QEMU_DEBIAN:$QEMU_DEBIAN_SHA256"; do
        name=${f%%:*} sum=${f#*:}
        sha256_ok "$BASEDIR/$name" "$sum" && continue
        if sha256_ok "$dir/$name" "$sum"; then
            note "taking $name from $dir"
            cp "$dir/$name" "$BASEDIR/$name.tmp"
            mv "$BASEDIR/$name.tmp" "$BASEDIR/$name"
        elif [ -e "$dir/$name" ]; then
            note "ignoring $dir/$name: its sha256 is not the pinned $sum"
        fi
    done
    have_all && exit 0
done

apt_private_update
note "downloading source package $QEMU_SRC_PKG $QEMU_SRC_VERSION"
dl=$BASEDIR/download
rm -rf "$dl"
mkdir -p "$dl"
download() {
    (cd "$dl" && apt_private -qq source --download-only \
         "$QEMU_SRC_PKG=$QEMU_SRC_VERSION" >"$BASEDIR/download.log" 2>&1)
}
if ! download && ! { apt_private_update force && download; }; then
    die "apt-get source $QEMU_SRC_PKG=$QEMU_SRC_VERSION failed" \
        "(see $BASEDIR/download.log).  If the archive no longer carries" \
        "this version, put $QEMU_ORIG and $QEMU_DEBIAN in a directory" \
        "and run with QEMU_BASE_CACHE=DIR."
fi
for f in "$QEMU_ORIG:$QEMU_ORIG_SHA256" "$QEMU_DEBIAN:$QEMU_DEBIAN_SHA256"; do
    name=${f%%:*} sum=${f#*:}
    sha256_ok "$dl/$name" "$sum" ||
        die "$name: sha256 is not the pinned $sum; refusing it" \
            "(downloaded file kept in $dl)"
    mv "$dl/$name" "$BASEDIR/$name"
done
rm -rf "$dl"
have_all
note "base verified in $BASEDIR"
if [ -n "$cached" ]; then
    mkdir -p "$cached"
    for name in "$QEMU_ORIG" "$QEMU_DEBIAN"; do
        cp "$BASEDIR/$name" "$cached/$name.tmp" && mv "$cached/$name.tmp" "$cached/$name" ||
            note "warning: could not keep $name in $cached"
    done
fi
