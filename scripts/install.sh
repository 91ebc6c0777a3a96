#!/bin/bash
# Sets up Airlock on a Debian 12 machine: system packages, the release build, and
# /usr/local/bin/airlock. Then `airlock run shell` gives a sandboxed shell in the current directory.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
command -v swift >/dev/null || {
    echo "airlock: no Swift 6 toolchain on PATH (install one from https://www.swift.org/install/linux/ and retry)" >&2
    exit 1
}
"$here/scripts/system-packages.sh"
user="${SUDO_USER:-$(id -un)}"
if [ "$user" != root ] && ! grep -q "^$user:" /etc/subuid; then
    echo "giving $user subordinate ids for sandboxes" >&2
    as_root usermod --add-subuids 100000-165535 --add-subgids 100000-165535 "$user"
fi
# Limits for an ordinary user: on cgroup v1 and hybrid hosts, a subtree of its own in the
# memory, pids and cpu controllers; where systemd runs, a unit makes it again at each boot.
if [ "$user" != root ] && [ ! -e /sys/fs/cgroup/cgroup.controllers ]; then
    as_root install -D -m 755 "$here/scripts/cgroup-delegate.sh" /usr/local/lib/airlock/cgroup-delegate.sh
    as_root /usr/local/lib/airlock/cgroup-delegate.sh "$user"
    if [ -d /run/systemd/system ]; then
        unit="airlock-cgroups@$user.service"
        as_root tee /etc/systemd/system/airlock-cgroups@.service >/dev/null <<'UNIT'
[Unit]
Description=Airlock: cgroup v1 subtree for %i's sandboxes
After=local-fs.target

[Service]
Type=oneshot
ExecStart=/usr/local/lib/airlock/cgroup-delegate.sh %i

[Install]
WantedBy=multi-user.target
UNIT
        as_root systemctl daemon-reload
        as_root systemctl enable "$unit" >/dev/null 2>&1 || echo "note: could not enable $unit" >&2
    else
        echo "note: no systemd here; after a reboot run: sudo /usr/local/lib/airlock/cgroup-delegate.sh $user" >&2
    fi
fi
# On cgroup v2 each sandbox's supervisor starts in a scope of the user's systemd manager, which
# needs the memory, pids and cpu controllers delegated to it (Debian's default; older systemd
# delegates fewer): a drop-in adds them, from the user's next login.
if [ "$user" != root ] && [ -e /sys/fs/cgroup/cgroup.controllers ] && [ -d /run/systemd/system ]; then
    delegated=$(systemctl show "user@$(id -u "$user").service" -p DelegateControllers --value 2>/dev/null || true)
    for controller in memory pids cpu; do
        if ! grep -qw "$controller" <<<"$delegated"; then
            echo "delegating the memory, pids and cpu cgroup controllers to users' systemd managers" >&2
            as_root mkdir -p /etc/systemd/system/user@.service.d
            printf '[Service]\nDelegate=pids memory cpu\n' |
                as_root tee /etc/systemd/system/user@.service.d/airlock-delegate.conf >/dev/null
            as_root systemctl daemon-reload
            echo "note: log out everywhere and in again (or reboot) for sandbox limits" >&2
            break
        fi
    done
    # Sandboxes run in scopes of that manager, which systemd stops at the user's last logout
    # unless the user lingers: a sandbox left running on its own keeps running.
    if [ ! -e "/var/lib/systemd/linger/$user" ]; then
        echo "letting $user's systemd manager run after logout (loginctl enable-linger), so sandboxes do too" >&2
        as_root loginctl enable-linger "$user" || echo "note: could not enable lingering for $user" >&2
    fi
fi
# The git guard's filters: /dev/fuse open to the user (udev does this on most systems).
if [ "$(stat -c %a /dev/fuse 2>/dev/null)" != 666 ]; then
    as_root "$here/scripts/fuse-access.sh"
fi
echo "building airlock (release; the first build takes a few minutes)" >&2
log=$(mktemp)
if ! swift build -c release --static-swift-stdlib --package-path "$here" 2>&1 | tee "$log" | grep --line-buffered -E "^\[[0-9]+/[0-9]+\] (Compiling|Linking) (Airlock|airlock)" >&2; then
    :
fi
if ! grep -q "Build complete" "$log"; then
    grep -E "error:" "$log" >&2 || tail -20 "$log" >&2
    rm -f "$log"
    echo "airlock: the build failed" >&2
    exit 1
fi
rm -f "$log"
bin="$(swift build -c release --static-swift-stdlib --package-path "$here" --show-bin-path)/airlock"
test -x "$bin"
as_root install -m 755 "$bin" /usr/local/bin/airlock
echo "installed /usr/local/bin/airlock" >&2
