# shellcheck shell=dash
# Functions for L1's /rig/run.sh (tests/rig/rig.py writes the run.sh that
# sources this).  Everything reaches the console: lines of L1 start with
# "@@L1 ", an L2's own report lines with "@@", each L2 run sits between
# "@@SCENARIO NAME" and "@@SCENARIO_END NAME rc=N", QEMU's own messages
# and traces after "@@QEMU_STDERR" at its end.
Q=/rig/qemu-system-aarch64
EFI=/rig/QEMU_EFI.fd
# the series' traces: iommufd ioctls with their results, VFIO's binds and
# attaches, the accel SMMU
TRACES="-trace iommufd_backend_* -trace iommufd_cdev_* -trace smmuv3_accel_*"

say() { echo "@@L1 $*"; }

# to_vfio BDF [VAR]: hand an L0 function to vfio-pci; says its VFIO cdev
# and sets VAR to its name (vfioN)
to_vfio() {
    d=/sys/bus/pci/devices/$1
    echo vfio-pci > "$d/driver_override"
    [ -e "$d/driver" ] && echo "$1" > "$d/driver/unbind"
    echo "$1" > /sys/bus/pci/drivers_probe
    v=$(ls "$d/vfio-dev" 2>/dev/null)
    drv=-
    [ -e "$d/driver" ] && drv=$(basename "$(readlink "$d/driver")")
    say "vfio $1 ${v:-none} driver $drv group $(basename "$(readlink "$d/iommu_group")")"
    [ -z "$2" ] || eval "$2=\$v"
}

# run_l2 KERNEL MACHINE-OPTIONS APPEND [QEMU ARGS...]: one L2 under KVM,
# UEFI and ACPI, to its power-off (or 300 s); its console on stdout,
# QEMU's own messages and traces ($L2_TRACES) in /tmp/l2.err
L2_TRACES=$TRACES
run_l2() {
    kver=$1 mopts=$2 append=$3
    shift 3
    # shellcheck disable=SC2086 # L2_TRACES is a list of options
    timeout 300 "$Q" -M "virt,gic-version=3$mopts" -accel kvm -cpu host \
        -smp 1 -m 512M -nographic -no-reboot -nic none -bios "$EFI" \
        -kernel "/rig/l2/$kver/vmlinuz" -initrd "/rig/l2/$kver/initrd.gz" \
        -append "console=ttyAMA0 panic=-1 $append" $L2_TRACES "$@" \
        2> /tmp/l2.err
}

# end_scenario NAME RC: L2's console, then what QEMU said, then the end
end_scenario() {
    cat /tmp/l2.out
    echo
    echo "@@QEMU_STDERR"
    cat /tmp/l2.err
    echo "@@SCENARIO_END $1 rc=$2"
}

# l2 NAME KERNEL MACHINE-OPTIONS APPEND [QEMU ARGS...]: a scenario of one
# L2; redirections on the call (fds for QEMU) apply to it
l2() {
    name=$1
    shift
    echo "@@SCENARIO $name"
    run_l2 "$@" > /tmp/l2.out
    end_scenario "$name" $?
}

# wait_line TEXT PID: until L2's console so far has TEXT; false when the
# QEMU process PID has gone first (or after 300 s)
wait_line() {
    n=0
    until grep -q "$1" /tmp/l2.out; do
        kill -0 "$2" 2>/dev/null && [ $n -lt 1200 ] || return 1
        sleep 0.25
        n=$((n + 1))
    done
}

# monitor COMMAND: to the monitor of l2_plug's QEMU, never blocking on a
# QEMU that has gone
monitor() {
    say "monitor: $1"
    timeout 10 sh -c 'echo "$1" > /tmp/mon.in' sh "$1" ||
        say "monitor: not delivered"
}

# l2_plug NAME KERNEL MACHINE-OPTIONS APPEND DEVICE [QEMU ARGS...]: an L2
# whose /init waits for a device (WAIT_FOR= in APPEND): when it says so,
# "device_add DEVICE,id=plugged" on QEMU's monitor; when it waits for the
# device to go (WAIT_GONE=), "device_del plugged"
l2_plug() {
    name=$1 kver=$2 mopts=$3 append=$4 dev=$5
    shift 5
    echo "@@SCENARIO $name"
    rm -f /tmp/mon.in /tmp/mon.out /tmp/l2.out
    mkfifo /tmp/mon.in /tmp/mon.out
    cat /tmp/mon.out > /tmp/mon.log &
    drain=$!
    run_l2 "$kver" "$mopts" "$append" -monitor pipe:/tmp/mon "$@" \
        > /tmp/l2.out &
    qemu=$!
    wait_line "@@WAITING" $qemu && monitor "device_add $dev,id=plugged"
    wait_line "@@UNPLUG_WAIT" $qemu && monitor "device_del plugged"
    wait $qemu
    rc=$?
    # the monitor's reader ends at QEMU's close, or here if QEMU never
    # opened its end
    timeout 2 sh -c ': > /tmp/mon.out' 2>/dev/null
    wait $drain
    # what the monitor said, without its line editing
    tr -d '\033\r' < /tmp/mon.log | grep -v '\[K' |
        sed 's/^/@@L1 monitor-out /'
    end_scenario "$name" $rc
}

# refused NAME MACHINE-OPTIONS [QEMU ARGS...]: QEMU must stop at startup
refused() {
    name=$1 mopts=$2
    shift 2
    echo "@@SCENARIO $name"
    timeout 60 "$Q" -M "virt,gic-version=3$mopts" -accel kvm -cpu host \
        -m 128M -display none -S -monitor none -serial none -nic none "$@" 2>&1
    rc=$?
    echo "@@SCENARIO_END $name rc=$rc"
}

# l1_events TAG: what L1's SMMU driver logged (events, faults) since the
# last call, each line tagged
l1_events() {
    dmesg | grep -iE 'arm-smmu-v3.*(event|fault|unexpected|error|timeout|abort)' \
        > /tmp/ev.all
    seen=$(cat /tmp/ev.seen 2>/dev/null || echo 0)
    tail -n +$((seen + 1)) /tmp/ev.all |
        while IFS= read -r l; do say "smmu-event $1 $l"; done
    wc -l < /tmp/ev.all > /tmp/ev.seen
    say "smmu-events-end $1"
}

# bench_counts TAG: the traces counted so far (bench_l2's log)
bench_counts() {
    l=/tmp/bench.log
    say "bench-counts $1 syncs=$(grep -c '<--- SMMU_CMD_SYNC' $l)" \
        "inval=$(grep -cE '<--- SMMU_CMD_(TLBI|CFGI|ATC)' $l)" \
        "ioctls=$(grep -c 'iommufd_backend_invalidate_cache' $l)" \
        "unmaps=$(grep -c 'virtio_iommu_unmap ' $l)"
}

# bench_l2 NAME KERNEL MACHINE-OPTIONS APPEND [QEMU ARGS...]: an L2 that
# writes and reads its disk (BLK_MIB= in APPEND); only the counted traces,
# into a file in L1, counted when L2 starts and ends its I/O
bench_l2() {
    name=$1 kver=$2 mopts=$3 append=$4
    shift 4
    echo "@@SCENARIO $name"
    rm -f /tmp/l2.out /tmp/bench.log
    L2_TRACES="-trace smmuv3_cmdq_opcode -trace virtio_iommu_unmap"
    L2_TRACES="$L2_TRACES -trace iommufd_backend_invalidate_cache"
    run_l2 "$kver" "$mopts" "$append" -D /tmp/bench.log "$@" > /tmp/l2.out &
    qemu=$!
    L2_TRACES=$TRACES
    wait_line "@@BLK_BEGIN" $qemu && bench_counts "$name begin"
    wait_line "@@BLK " $qemu && bench_counts "$name end"
    wait $qemu
    end_scenario "$name" $?
}
