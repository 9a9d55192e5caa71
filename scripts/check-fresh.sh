#!/usr/bin/env bash
# make check-fresh (and CI): the README's commands, typed as a new user
# types them, on a fresh minimal Debian 12 root.
#
#  1. mmdebstrap makes a root (variant apt: the essential packages and apt)
#     of the machine's own release, from the Debian archive that the
#     machine's apt sources name, with the machine's own Acquire settings.
#  2. The project is cloned into it (what is committed: HEAD).
#  3. In a mount and PID namespace of its own, with /proc, /dev, /dev/pts,
#     /sys and a tmpfs on /tmp and /dev/shm, it runs the README's commands.
#  4. The root is removed, also when a test fails or the run is stopped; the
#     namespace's end kills every process the tests left.
#
# Only caches come from the machine (NMSI_FRESH_CACHE, default
# /var/cache/nested-smmuv3-msi): apt's .deb files, ccache, and the
# sha256-verified downloads (base, pinned packages, guest packages).
# QEMU_BASE_CACHE, when set, is offered read-only as well.  An empty cache
# directory gives a cold run.  The last line is make check's summary, or a
# failure summary when the run did not get that far.
set -euo pipefail
. "$(dirname "$0")/common.sh"

CACHE=${NMSI_FRESH_CACHE:-/var/cache/nested-smmuv3-msi}
ROOT=${NMSI_FRESH_ROOT:-$BUILD/fresh-root}
# The README's commands, in the order a new user types them.
COMMANDS=(
    "apt-get update"
    "apt-get install -y make"
    "make demo"
    "make check"
)

if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 ||
        die "a fresh root needs root (mmdebstrap, chroot, mounts): run as root"
    exec sudo -n --preserve-env=NMSI_FRESH_CACHE,NMSI_FRESH_ROOT,NMSI_BUILD,QEMU_BASE_CACHE \
        "$0" "$@" || die "'sudo -n $0' failed: run as root"
fi
export PATH="/usr/sbin:/sbin:$PATH"
case $ROOT in
/?*) ;;
*) die "NMSI_FRESH_ROOT must be an absolute path, not '$ROOT'" ;;
esac
# Only a directory this script made is ever removed: it leaves this next to it.
MARK=$ROOT.nmsi-fresh-root

elapsed() {
    local s=$(($(date +%s) - begin))
    printf '%d min %02d s' $((s / 60)) $((s % 60))
}
phase() {
    note "[$(elapsed)] $*"
}
begin=$(date +%s)
summary_done=

# --- cleanup, also on failure or interruption -----------------------------
# Mount points under the root as this namespace sees them (awk reads all
# of findmnt's output: 'grep -q' would stop early and fail the pipeline).
mounts_under_root() {
    findmnt -rn -o TARGET | awk -v p="$ROOT/" 'index($0, p) == 1' || true
}
remove_root() {
    [ -e "$ROOT" ] || { rm -f "$MARK"; return 0; }
    [ -e "$MARK" ] ||
        { note "$ROOT was not made by this script; not removing it"; return 1; }
    [ -z "$(mounts_under_root)" ] ||
        { note "mounts remain under $ROOT; not removing it (umount -R them)"; return 1; }
    rm -rf --one-file-system "$ROOT" && rm -f "$MARK"
}
ns_pid=
tail_pid=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [ -n "$ns_pid" ]; then
        # unshare ignores SIGTERM; its death kills the namespace (--kill-child)
        kill -KILL "$ns_pid" 2>/dev/null || true
        wait "$ns_pid" 2>/dev/null || true
    fi
    [ -z "$tail_pid" ] || wait "$tail_pid" 2>/dev/null || true
    remove_root || note "warning: $ROOT is left behind"
    if [ "$rc" != 0 ] && [ -z "$summary_done" ]; then
        note "the run failed before make check's summary (status $rc)"
        echo "0 passed, 1 failed, 0 skipped"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'note "interrupted"; exit 130' INT TERM HUP

# --- the machine's side: tools and apt settings ---------------------------
need=()
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
command -v git >/dev/null 2>&1 || need+=(git)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
if [ "${#need[@]}" -gt 0 ]; then
    phase "installing on this machine: ${need[*]}"
    apt-get update -qq >/dev/null ||
        die "apt-get update failed on this machine (is the Debian archive reachable?)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${need[@]}" >/dev/null ||
        die "apt-get install ${need[*]} failed on this machine"
fi

# The Debian entries of the machine's apt sources, as "deb URI SUITE COMP"
# (labels such as "Debian Backports" hold spaces: '|' separates fields).
debian_sources() {
    apt-get indextargets --format '$(TARGET_OF)|$(LABEL)|$(REPO_URI)|$(RELEASE)|$(COMPONENT)' \
        2>/dev/null |
        awk -F'|' '$1 == "deb" && $2 ~ /^Debian/ { print "deb", $3, $4, $5 }' |
        sort -u || true
}
mapfile -t sources < <(debian_sources)
if [ "${#sources[@]}" = 0 ]; then
    # No package lists yet on this machine: fetch them once.
    apt-get update -qq >/dev/null ||
        die "apt-get update failed on this machine (is the Debian archive reachable?)"
    mapfile -t sources < <(debian_sources)
fi
[ "${#sources[@]}" -gt 0 ] ||
    die "the machine's apt sources name no Debian archive (apt-get indextargets" \
        "lists none with Label Debian); a fresh root needs one"

# The machine's own Acquire settings (validity checks of an archive
# snapshot, proxies): what its configuration sets beyond apt's defaults.
# Index target definitions belong to the packages that ship them.
machine_acquire_settings() {
    local empty
    empty=$(mktemp -d)
    printf 'Dir::Etc::parts "%s";\nDir::Etc::main "/dev/null";\n' "$empty" > "$empty.conf"
    comm -13 <(APT_CONFIG=$empty.conf apt-config dump 2>/dev/null | sort) \
             <(apt-config dump 2>/dev/null | sort) |
        grep '^Acquire::' | grep -v '^Acquire::IndexTargets::' || true
    rm -rf "$empty" "$empty.conf"
}
mapfile -t acquire < <(machine_acquire_settings)

suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$suite" ] || die "/etc/os-release names no VERSION_CODENAME"

# git refuses a repository owned by another user (sudo): say it is safe,
# for these git commands only
gitcfg=$(mktemp)
printf '[safe]\n\tdirectory = *\n' > "$gitcfg"
project_git() {
    GIT_CONFIG_GLOBAL=$gitcfg git -C "$TOP" "$@"
}

if [ -e "$ROOT" ] || [ -e "$MARK" ]; then
    remove_root || die "cannot start: remove $ROOT (and $MARK) first"
fi
mkdir -p "$CACHE/apt" "$CACHE/ccache" "$CACHE/downloads" "${ROOT%/*}"
: > "$MARK"

# --- the root --------------------------------------------------------------
phase "making a fresh Debian $suite root in $ROOT (mmdebstrap, variant apt)"
aptopts=()
for a in "${acquire[@]}"; do
    aptopts+=(--aptopt="$a")
done
log=${ROOT%/*}/mmdebstrap.log
# shellcheck disable=SC2016 # $1 is the hook's argument, expanded by mmdebstrap
unshare --mount --propagation private -- \
    mmdebstrap --variant=apt --skip=essential/unlink --quiet "${aptopts[@]}" \
        --setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
        --setup-hook="mount --bind '$CACHE/apt' \"\$1/var/cache/apt/archives\"" \
        --customize-hook='umount "$1/var/cache/apt/archives"' \
        "$suite" "$ROOT" "${sources[@]}" >"$log" 2>&1 || {
    tail -n 20 "$log" >&2
    die "mmdebstrap failed; log: $log"
}
# The machine's name resolution (mmdebstrap copies resolv.conf only).
cp /etc/hosts "$ROOT/etc/hosts"

phase "cloning the project (HEAD) into the root"
[ -z "$(project_git status --porcelain --untracked-files=no 2>/dev/null)" ] ||
    note "warning: uncommitted changes in $TOP are not part of this run"
GIT_CONFIG_GLOBAL=$gitcfg git clone -q --no-hardlinks "$TOP" "$ROOT/root/project" ||
    die "git clone of $TOP into the root failed"
rm -f "$gitcfg"

# --- the run ---------------------------------------------------------------
# Every command runs even when an earlier one failed (make check still
# reports what it can); the status is the first failure's.
script=$ROOT/root/fresh-run.sh
{
    echo 'cd /root/project || exit 1'
    echo 'rc=0'
    for c in "${COMMANDS[@]}"; do
        printf 'echo "check-fresh: # %s" >&2; t=$(date +%%s)\n' "$c"
        printf '%s || { r=$?; echo "check-fresh: %s: exit status $r" >&2; [ $rc != 0 ] || rc=$r; }\n' "$c" "$c"
        printf 'echo "check-fresh: %s took $(($(date +%%s) - t)) s" >&2\n' "$c"
    done
    echo 'exit $rc'
} > "$script"

base_ro=
if [ -n "${QEMU_BASE_CACHE:-}" ] && [ -d "$QEMU_BASE_CACHE" ]; then
    base_ro=$(cd "$QEMU_BASE_CACHE" && pwd)
fi

inside() {
    # runs in the new namespaces, as PID 1 of its PID namespace
    set -eu
    local r=$ROOT
    mount -t proc proc "$r/proc"
    mount --bind /dev "$r/dev"
    mount --bind /dev/pts "$r/dev/pts"
    mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm"
    mount --rbind /sys "$r/sys"
    mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
    mount --bind "$CACHE/apt" "$r/var/cache/apt/archives"
    mkdir -p "$r/var/cache/nmsi/ccache" "$r/var/cache/nmsi/downloads" "$r/var/cache/nmsi/base"
    mount --bind "$CACHE/ccache" "$r/var/cache/nmsi/ccache"
    mount --bind "$CACHE/downloads" "$r/var/cache/nmsi/downloads"
    local env=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
               LANG=C.UTF-8 TERM=dumb USER=root LOGNAME=root
               CCACHE_DIR=/var/cache/nmsi/ccache
               NMSI_DOWNLOAD_CACHE=/var/cache/nmsi/downloads)
    if [ -n "$base_ro" ]; then
        mount --bind -o ro "$base_ro" "$r/var/cache/nmsi/base"
        env+=(QEMU_BASE_CACHE=/var/cache/nmsi/base)
    fi
    exec chroot "$r" /usr/bin/env -i "${env[@]}" /bin/bash /root/fresh-run.sh
}
export -f inside
export ROOT CACHE base_ro

runlog=${ROOT%/*}/fresh-run.log
: > "$runlog"
phase "running in the root: $(printf '%s; ' "${COMMANDS[@]}")(log: $runlog)"
# --kill-child: if unshare dies, the namespace's first process is killed,
# and with it every process of the namespace.
unshare --mount --pid --fork --kill-child --propagation private -- \
    bash -c inside >"$runlog" 2>&1 &
ns_pid=$!
# the run's output as it comes; tail exits once unshare has, after the rest
tail -n +1 -f --pid="$ns_pid" "$runlog" &
tail_pid=$!
rc=0
wait "$ns_pid" || rc=$?
ns_pid=
wait "$tail_pid" || true
tail_pid=
phase "the README's commands ended with status $rc; removing the root"
# make check's summary stays the last line of the run
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$runlog" | tail -n 1 || true)
if [ -n "$summary" ]; then
    remove_root || note "warning: $ROOT is left behind"
    echo "$summary"
    summary_done=1
fi
exit "$rc"
