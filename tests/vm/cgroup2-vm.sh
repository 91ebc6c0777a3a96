#!/bin/bash
# Runs a command as an ordinary user with a real login session in a Debian 12 VM that boots
# systemd on a pure cgroup v2 hierarchy, so Airlock's cgroup v2 + systemd path can be tested
# from a host that has neither. Run as root:
#
#   tests/vm/cgroup2-vm.sh --cache DIR --user NAME --uid N --subids START-END \
#       [--copy SRC:DEST]... [--root-setup 'shell command'] [--timeout 20m] \
#       [--accel auto|kvm|tcg] [--extra-packages 'pkg ...'] [--keep] [-v] -- 'command run as NAME'
#   tests/vm/cgroup2-vm.sh --cache DIR --build-only [--extra-packages 'pkg ...']
#
# The first run builds a bookworm image with mmdebstrap into DIR (a few minutes); later runs
# with the same package list reuse it. Each run boots a throwaway qcow2 overlay of that image,
# with no network, 2 vCPUs and 3 GiB of memory. In the guest, a oneshot unit that starts after
# multi-user.target creates NAME with uid and gid N and exactly the given subordinate ids,
# copies each SRC (owners and modes kept) to DEST, runs --root-setup as root, then runs the
# command through `su - NAME -c`, which opens a logind session: XDG_RUNTIME_DIR=/run/user/N,
# the user's manager user@N.service running, the shell in user.slice.
#
# The command's stdout and stderr (merged) are printed on stdout, nothing else; progress goes
# to stderr. Exit status: the command's own; 124 when --timeout ran out; 125 when the harness
# failed (build, boot, guest setup), with one line saying which step.
#
# --timeout (default 20m) covers the boot and the command, not the image build. --accel auto
# tries KVM and falls back to TCG (qemu's emulator; a boot takes 15-40 s here). -v streams the
# guest's steps and --root-setup's output to stderr; --keep leaves the run's files (console.log)
# in /tmp. --extra-packages adds packages to the image (a separate cached image). The guest has
# no network: whatever a test needs from the internet must be in the image or copied in.
set -uo pipefail

# The image's packages: everything a test of Airlock needs, in one place. udev and kmod
# make the guest bootable from minbase (device links, module loading).
PACKAGES=(
    systemd systemd-sysv dbus libpam-systemd udev kmod linux-image-amd64
    crun runc uidmap sudo python3 procps util-linux iproute2 ca-certificates curl
    fuse3 tini git mmdebstrap passwd login
)
SUITE=bookworm
MIRRORS=(
    "deb http://deb.debian.org/debian bookworm main"
    "deb http://deb.debian.org/debian bookworm-updates main"
    "deb http://deb.debian.org/debian-security bookworm-security main"
)
IMAGE_SIZE=16G
ROOT_LABEL=airlock-vm-root
VM_MEMORY=3G
VM_CPUS=2
KVM_BOOT_LIMIT=120 # seconds an "auto" KVM boot may take to reach the unit before TCG is tried
POWEROFF_GRACE=15  # seconds the guest gets to power off after reporting its status

me="cgroup2-vm"
say() { echo "$me: $*" >&2; }
die() { say "$*"; exit 125; }
usage() {
    sed -n '2,/^set -uo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit "${1:-125}"
}

cache="" user="" uid="" subids="" root_setup="" timeout=1200 accel=auto keep=0 verbose=0
extra_packages="" build_only=0
copies=()
while (($#)); do
    case "$1" in
    --cache) cache="${2:-}"; shift 2 ;;
    --user) user="${2:-}"; shift 2 ;;
    --uid) uid="${2:-}"; shift 2 ;;
    --subids) subids="${2:-}"; shift 2 ;;
    --copy) copies+=("${2:-}"); shift 2 ;;
    --root-setup) root_setup="${2:-}"; shift 2 ;;
    --timeout) timeout="${2:-}"; shift 2 ;;
    --accel) accel="${2:-}"; shift 2 ;;
    --extra-packages) extra_packages="${2:-}"; shift 2 ;;
    --keep) keep=1; shift ;;
    --build-only) build_only=1; shift ;;
    -v | --verbose) verbose=1; shift ;;
    -h | --help) usage 0 ;;
    --) shift; break ;;
    *) say "unknown option: $1"; usage ;;
    esac
done
((build_only)) || (($# == 1)) || { say "give the user's command as one argument after --"; usage; }
command_text="${1:-}"

[[ $EUID == 0 ]] || die "run as root (mmdebstrap, the image's owners and /dev/kvm need it)"
[[ -n $cache ]] || die "--cache DIR is required"
((build_only)) && user=nobody uid=1000 subids=1-1
[[ $user =~ ^[a-z_][a-z0-9_-]*$ ]] || die "--user: a user name such as vmtest"
[[ $uid =~ ^[0-9]+$ ]] && ((uid >= 1000 && uid < 60000)) || die "--uid: a number from 1000 to 59999"
[[ $subids =~ ^([0-9]+)-([0-9]+)$ ]] && ((BASH_REMATCH[1] <= BASH_REMATCH[2])) ||
    die "--subids: START-END, such as 400000-465535"
sub_start=${BASH_REMATCH[1]} sub_count=$((BASH_REMATCH[2] - BASH_REMATCH[1] + 1))
case "$timeout" in
*h) timeout=$((${timeout%h} * 3600)) ;;
*m) timeout=$((${timeout%m} * 60)) ;;
*s) timeout=${timeout%s} ;;
esac
[[ $timeout =~ ^[0-9]+$ ]] || die "--timeout: seconds, or N followed by s, m or h"
[[ $accel =~ ^(auto|kvm|tcg)$ ]] || die "--accel: auto, kvm or tcg"
for c in "${copies[@]}"; do
    [[ $c == /*:/* ]] || die "--copy $c: give SRC:DEST, both absolute"
    [[ -e ${c%%:*} ]] || die "--copy $c: ${c%%:*} does not exist"
done
for tool in mmdebstrap mkfs.ext4 qemu-img qemu-system-x86_64 tar flock; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
read -r -a extra <<<"$extra_packages"
packages=("${PACKAGES[@]}" "${extra[@]}")

# --- the cached base image -------------------------------------------------------------------

# Builds DIR/base.raw (ext4, labelled ROOT_LABEL), DIR/vmlinuz and DIR/initrd.img. The unit
# baked in here only unpacks the per-run payload disk and hands over to its guest.sh, so the
# guest's logic can change without a rebuild; this function's text is part of the cache key.
build_base() {
    local dir="$1" rootfs="$1/rootfs"
    local include
    include="$(
        IFS=,
        echo "${packages[*]}"
    )"
    mmdebstrap --variant=minbase --include="$include" "$SUITE" "$rootfs" "${MIRRORS[@]}" \
        >"$dir/build.log" 2>&1 || return 1
    echo airlock-vm >"$rootfs/etc/hostname"
    printf '127.0.0.1\tlocalhost\n127.0.1.1\tairlock-vm\n' >"$rootfs/etc/hosts"
    echo "LABEL=$ROOT_LABEL / ext4 defaults,errors=remount-ro 0 1" >"$rootfs/etc/fstab"
    # A machine id now means no first boot, so systemd-firstboot never waits at the console.
    chroot "$rootfs" systemd-machine-id-setup >>"$dir/build.log" 2>&1 || return 1
    cat >"$rootfs/etc/systemd/system/airlock-vm.service" <<'EOF'
[Unit]
Description=Airlock VM test run
After=multi-user.target systemd-logind.service dbus.service user-sessions.service
After=dev-disk-by\x2did-virtio\x2dairlock\x2dpayload.device
Wants=systemd-logind.service dbus.service
Requires=dev-disk-by\x2did-virtio\x2dairlock\x2dpayload.device
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
TimeoutStartSec=infinity
StandardInput=null
StandardOutput=journal+console
StandardError=journal+console
ExecStartPre=/bin/udevadm settle --timeout=60
ExecStart=/bin/sh -c 'rm -rf /var/lib/airlock-vm && mkdir -p /var/lib/airlock-vm && tar -xpf /dev/disk/by-id/virtio-airlock-payload --numeric-owner --xattrs --acls -C /var/lib/airlock-vm && exec /var/lib/airlock-vm/guest.sh'

[Install]
WantedBy=multi-user.target
EOF
    ln -s ../airlock-vm.service "$rootfs/etc/systemd/system/multi-user.target.wants/airlock-vm.service"
    local kernel initrd
    kernel="$(ls "$rootfs"/boot/vmlinuz-* 2>/dev/null | tail -n 1)"
    initrd="$(ls "$rootfs"/boot/initrd.img-* 2>/dev/null | tail -n 1)"
    [[ -n $kernel && -n $initrd ]] || { echo "no kernel or initrd in /boot" >>"$dir/build.log"; return 1; }
    cp "$kernel" "$dir/vmlinuz" && cp "$initrd" "$dir/initrd.img" || return 1
    truncate -s "$IMAGE_SIZE" "$dir/base.raw" || return 1
    mkfs.ext4 -q -L "$ROOT_LABEL" -E lazy_itable_init=0,lazy_journal_init=0 -d "$rootfs" "$dir/base.raw" \
        >>"$dir/build.log" 2>&1 || { echo "mkfs.ext4 failed" >>"$dir/build.log"; return 1; }
    rm -rf "$rootfs"
}

mkdir -p "$cache" || die "cannot create $cache"
cache="$(cd "$cache" && pwd)"
key="$( (
    declare -f build_base
    printf '%s\n' "$SUITE" "${MIRRORS[@]}" "$IMAGE_SIZE" "$ROOT_LABEL" "${packages[@]}"
) | sha256sum | cut -c1-16)"
image="$cache/$SUITE-$key"
exec 9>"$cache/.lock"
flock 9 || die "cannot lock $cache/.lock"
if [[ -f $image/base.raw ]]; then
    say "image: $image (cached)"
else
    say "image: building $image with mmdebstrap (log: $image.building/build.log)"
    rm -rf "$image.building" && mkdir -p "$image.building" || die "cannot create $image.building"
    started=$SECONDS
    if ! build_base "$image.building"; then
        tail -n 20 "$image.building/build.log" >&2
        die "building the image failed (mmdebstrap or mkfs.ext4); whole log: $image.building/build.log"
    fi
    mv "$image.building" "$image" || die "cannot move the image into $image"
    say "image: built in $((SECONDS - started))s"
fi
flock -u 9
((build_only)) && exit 0

# --- the per-run payload ---------------------------------------------------------------------

work="$(mktemp -d /tmp/cgroup2-vm.XXXXXX)" || die "cannot create a temporary directory"
qemu_pid="" tail_pid="" log_pid=""
cleanup() {
    [[ -n $qemu_pid ]] && kill "$qemu_pid" 2>/dev/null
    [[ -n $tail_pid ]] && kill "$tail_pid" 2>/dev/null
    [[ -n $log_pid ]] && kill "$log_pid" 2>/dev/null
    if ((keep)); then say "kept $work (console.log, log, payload)"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

payload="$work/payload"
mkdir -p "$payload/copies"
{
    printf 'NAME=%q\nUSER_ID=%q\nSUB_START=%q\nSUB_COUNT=%q\n' "$user" "$uid" "$sub_start" "$sub_count"
} >"$payload/config"
printf '%s' "$command_text" >"$payload/command"
printf '%s' "$root_setup" >"$payload/root-setup"
i=0
for c in "${copies[@]}"; do
    mkdir -p "$payload/copies/$i"
    cp -a -H "${c%%:*}" "$payload/copies/$i/item" || die "--copy $c: copying failed"
    printf '%s' "${c#*:}" >"$payload/copies/$i/dest"
    i=$((i + 1))
done

# Runs in the guest as root from airlock-vm.service. Its only output on the "out" port is the
# user command's; its steps go to the "log" port and the console, its result to "status".
cat >"$payload/guest.sh" <<'GUEST'
#!/bin/bash
set -u
here=/var/lib/airlock-vm
ports=/dev/virtio-ports
exec 3>"$ports/airlock.log"
log() { echo "$*" >&3; echo "airlock-vm: $*"; }
result() { echo "$*" >"$ports/airlock.status"; echo "AIRLOCK-VM-STATUS $*"; exit 0; }
step() {
    local what="$1"; shift
    "$@" >&3 2>&1 || { log "failed: $what"; result "setup-failed $what"; }
}
. "$here/config"
log "guest-started uptime=$(cut -d' ' -f1 /proc/uptime)s kernel=$(uname -r) systemd=$(systemctl --version | head -n 1)"
if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
    log "cgroup v2 root controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
else
    result "setup-failed the guest is not on a pure cgroup v2 hierarchy"
fi
step "groupadd" groupadd -g "$USER_ID" "$NAME"
step "useradd" useradd -m -u "$USER_ID" -g "$USER_ID" -s /bin/bash "$NAME"
for f in /etc/subuid /etc/subgid; do
    step "write $f" sed -i "/^$NAME:/d" "$f"
    echo "$NAME:$SUB_START:$SUB_COUNT" >>"$f"
done
for d in "$here"/copies/*/; do
    [[ -f $d/dest ]] || continue
    dest="$(cat "$d/dest")"
    step "copy to $dest" mkdir -p "$(dirname "$dest")"
    step "copy to $dest" cp -aT "$d/item" "$dest"
done
if [[ -s $here/root-setup ]]; then
    log "running --root-setup"
    step "--root-setup" bash -c "$(cat "$here/root-setup")"
fi
log "running the command as $NAME uptime=$(cut -d' ' -f1 /proc/uptime)s"
su - "$NAME" -c "$(cat "$here/command")" </dev/null >"$ports/airlock.out" 2>&1
status=$?
log "command ended with status $status uptime=$(cut -d' ' -f1 /proc/uptime)s"
result "exit $status"
GUEST
chmod 755 "$payload/guest.sh"
tar --numeric-owner --xattrs --acls -cf "$work/payload.tar" -C "$payload" . || die "cannot pack the payload"

# --- booting ---------------------------------------------------------------------------------

# Boots the image once with accelerator $1 and follows it until it powers off, the deadline
# passes, or (with a probe limit $2 > 0) the guest fails to reach the unit within $2 seconds.
# Sets boot_result: done, timeout, qemu-failed or no-boot.
boot() {
    local accel="$1" probe_limit="$2" cpu=max
    [[ $accel == kvm ]] && cpu=host
    rm -f "$work"/{overlay.qcow2,out,status,log,console.log,qemu.err}
    touch "$work"/{out,status,log,console.log}
    qemu-img create -q -f qcow2 -b "$image/base.raw" -F raw "$work/overlay.qcow2" >"$work/qemu.err" 2>&1 ||
        { cat "$work/qemu.err" >&2; die "qemu-img could not create the overlay"; }
    local start=$SECONDS started="" commanded="" status_at=""
    qemu-system-x86_64 -nodefaults -no-user-config -no-reboot -display none \
        -accel "$accel" -cpu "$cpu" -smp "$VM_CPUS" -m "$VM_MEMORY" -nic none \
        -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
        -append "console=ttyS0 root=LABEL=$ROOT_LABEL rw panic=-1 systemd.firstboot=off" \
        -serial "file:$work/console.log" \
        -drive "file=$work/overlay.qcow2,format=qcow2,if=none,id=root,discard=unmap" \
        -device virtio-blk-pci,drive=root \
        -drive "file=$work/payload.tar,format=raw,if=none,id=payload,readonly=on" \
        -device virtio-blk-pci,drive=payload,serial=airlock-payload \
        -device virtio-serial-pci \
        -chardev "file,id=out,path=$work/out" -device virtserialport,chardev=out,name=airlock.out \
        -chardev "file,id=status,path=$work/status" -device virtserialport,chardev=status,name=airlock.status \
        -chardev "file,id=log,path=$work/log" -device virtserialport,chardev=log,name=airlock.log \
        2>"$work/qemu.err" &
    qemu_pid=$!
    tail -c +1 -f --pid="$qemu_pid" "$work/out" &
    tail_pid=$!
    if ((verbose)); then
        tail -c +1 -f --pid="$qemu_pid" "$work/log" | sed -u "s/^/$me: guest: /" >&2 &
        log_pid=$!
    fi
    boot_result=done
    while kill -0 "$qemu_pid" 2>/dev/null; do
        local now=$SECONDS
        if [[ -z $started ]] && grep -q '^guest-started' "$work/log"; then
            started=$now
            say "$accel: guest reached the unit in $((now - start))s"
        fi
        if [[ -z $commanded ]] && grep -q '^running the command' "$work/log"; then
            commanded=$now
            say "$accel: command started $((now - start))s after qemu did ($(sed -n 's/^running the command .*uptime=\([0-9.]*\)s/\1/p' "$work/log")s of guest uptime)"
        fi
        if [[ -z $started ]] && ((probe_limit > 0 && now - start > probe_limit)); then
            boot_result=no-boot
            break
        fi
        if ((now - start > timeout)); then
            boot_result=timeout
            break
        fi
        if [[ -s $work/status ]]; then
            [[ -n $status_at ]] || status_at=$now
            ((now - status_at > POWEROFF_GRACE)) && break
        fi
        sleep 0.5
    done
    kill "$qemu_pid" 2>/dev/null
    wait "$qemu_pid" 2>/dev/null
    local qemu_status=$?
    qemu_pid=""
    wait "$tail_pid"
    tail_pid=""
    if [[ -n $log_pid ]]; then wait "$log_pid"; log_pid=""; fi
    if [[ $boot_result == done && -z $started ]]; then
        ((qemu_status != 0)) && [[ -s $work/qemu.err ]] && boot_result=qemu-failed || boot_result=no-boot
    fi
    [[ $boot_result == done && -n $started ]] && say "$accel: qemu ran $((SECONDS - start))s in all"
}

kvm_broken="$cache/kvm-broken-$(uname -r)"
if [[ $accel == auto ]]; then
    if [[ ! -w /dev/kvm ]] || [[ -f $kvm_broken ]]; then
        accel=tcg
    elif [[ -d /sys/module/kvm_pvm ]] && ! grep -qw -E 'vmx|svm' /proc/cpuinfo; then
        # PVM runs only guests whose kernel is built for it, which Debian's is not.
        say "kvm: this host's KVM is PVM (no VT-x/AMD-V), which cannot run Debian's kernel; using TCG"
        accel=tcg
    else
        accel=kvm-probe
    fi
fi
if [[ $accel == kvm-probe ]]; then
    boot kvm "$KVM_BOOT_LIMIT"
    if [[ $boot_result == no-boot || $boot_result == qemu-failed ]]; then
        say "kvm: the guest did not boot ($(head -c 300 "$work/qemu.err" | tr '\n' ' ')); trying TCG, and skipping KVM from now on ($kvm_broken)"
        touch "$kvm_broken"
        boot tcg 0
    fi
else
    boot "$accel" 0
fi

show_failure() {
    say "guest log:"
    sed "s/^/  /" "$work/log" >&2
    say "last lines of the console:"
    tail -n 30 "$work/console.log" | sed "s/^/  /" >&2
    [[ -s $work/qemu.err ]] && { say "qemu said:"; sed "s/^/  /" "$work/qemu.err" >&2; }
}
case "$boot_result" in
timeout)
    say "timed out after ${timeout}s; qemu killed"
    ((verbose)) && show_failure
    exit 124
    ;;
qemu-failed) show_failure; die "qemu failed to start ($accel)" ;;
no-boot) show_failure; die "the guest did not boot to the test unit ($accel)" ;;
esac
read -r kind value <"$work/status" || { show_failure; die "the guest powered off without reporting a status"; }
case "$kind" in
exit) exit "$value" ;;
setup-failed) show_failure; die "guest setup failed: $value" ;;
*) show_failure; die "the guest reported an unknown status: $kind $value" ;;
esac
