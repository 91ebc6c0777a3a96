#!/bin/bash
# Gives USER a cgroup v1 subtree of its own in the memory, pids and cpu controllers, where
# Airlock makes a group per sandbox and enforces its limits (cgroup v1 and hybrid hosts, where
# systemd does not delegate cgroups to users). Run as root; scripts/install.sh runs it with sudo.
# Usage: cgroup-delegate.sh USER...
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 USER..." >&2; exit 64; }
root=/sys/fs/cgroup
if [ -e "$root/cgroup.controllers" ]; then
    echo "cgroup v2 here: nothing to delegate by hand" >&2
    exit 0
fi
for user in "$@"; do
    id "$user" >/dev/null 2>&1 || { echo "cgroup-delegate: no user $user" >&2; exit 1; }
    for controller in memory pids cpu; do
        if [ ! -d "$root/$controller" ]; then
            echo "cgroup-delegate: the $controller controller is not mounted at $root/$controller" >&2
            exit 1
        fi
        dir="$root/$controller/airlock/$user"
        mkdir -p "$dir"
        chown "$user:" "$dir"
    done
    echo "cgroups delegated to $user: $root/{memory,pids,cpu}/airlock/$user" >&2
done
