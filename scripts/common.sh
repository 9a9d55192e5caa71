# Shared settings for the project's scripts.  Source it; do not run it.
# shellcheck shell=bash

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# NMSI_BUILD: where everything built or downloaded goes (default build/).
BUILD=${NMSI_BUILD:-$TOP/build}
SRC=$BUILD/src
# NMSI_STUB=1: the build without iommufd (what hosts without it get)
if [ -n "${NMSI_STUB:-}" ]; then
    OBJ=$BUILD/obj-stub
else
    OBJ=$BUILD/obj
fi
APTDIR=$BUILD/apt
BASEDIR=$BUILD/base
GUESTDIR=${NMSI_GUEST_DIR:-$BUILD/guest}
# NMSI_DOWNLOAD_CACHE: a directory that keeps the sha256-pinned downloads
# (base, pinned packages, guest packages) across build/ directories and
# clones; every file taken from it is verified again.  Unset: build/.
DOWNLOADS=${NMSI_DOWNLOAD_CACHE:-}

# downloads_dir NAME DEFAULT: where pinned downloads of kind NAME live.
downloads_dir() {
    if [ -n "$DOWNLOADS" ]; then
        echo "$DOWNLOADS/$1"
    else
        echo "$2"
    fi
}

# The pinned base: Debian source package qemu 1:10.2.2+ds-1.
QEMU_SRC_PKG=qemu
QEMU_SRC_VERSION=1:10.2.2+ds-1
QEMU_ORIG=qemu_10.2.2+ds.orig.tar.xz
QEMU_ORIG_SHA256=be05230fe47a6937cd29f28f562932c8125f9c93c2a82c625198f7a4aa601dfb
QEMU_DEBIAN=qemu_10.2.2+ds-1.debian.tar.xz
QEMU_DEBIAN_SHA256=ddf75aceab4f8f77374f3cb34fc97b41514895aeb293ce8b2ddd5e072bb0f5c0
QEMU_TOPDIR=qemu-10.2.2

# A safety net under 'set -e': a command that fails where no explicit
# check ('|| die ...') stands says which one, where, and with what status,
# instead of ending the script without a word.  -E carries the trap into
# functions, command substitutions and subshells.
set -E
trap 'on_error "$?" "${BASH_SOURCE[0]:-$0}" "$LINENO" "$BASH_COMMAND"' ERR
on_error() {
    # once, from the script's own shell (not again from each subshell)
    [ "$BASH_SUBSHELL" = 0 ] || return 0
    printf '%s: error: %s:%s: command failed with status %s: %s\n' \
        "${0##*/}" "${2#"$TOP"/}" "$3" "$1" "$4" >&2
    printf '%s: the messages above say why; if none does, this is a bug in' \
        "${0##*/}" >&2
    printf ' the script: report the line above\n' >&2
}

die() {
    printf '%s: error: %s\n' "${0##*/}" "$*" >&2
    exit 1
}

note() {
    printf '%s: %s\n' "${0##*/}" "$*" >&2
}

# Run a command as root: directly when we are root, else through sudo
# (never prompting: CI has no terminal).  dpkg needs sbin on PATH.
as_root() {
    if [ "$(id -u)" = 0 ]; then
        env PATH="/usr/sbin:/sbin:$PATH" "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n env PATH="/usr/sbin:/sbin:$PATH" "$@" ||
            die "'sudo -n $1 ...' failed: run as root, or allow sudo without a password"
    else
        die "need root for: $* (install sudo or run as root)"
    fi
}

sha256_ok() {
    # sha256_ok FILE SUM
    [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}
