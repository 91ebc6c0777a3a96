#!/bin/bash
# Lets ordinary users open /dev/fuse, as udev's default rules do on a standard Debian system
# (mode 0666): the git guard mounts a filter in front of each repository's .git from inside
# the sandbox's user namespace. Needed where nothing set the mode (containers, machines
# without udev). Run as root; scripts/install.sh runs it with sudo.
set -euo pipefail
if [ ! -e /dev/fuse ]; then
    modprobe fuse 2>/dev/null || true
fi
if [ ! -c /dev/fuse ]; then
    echo "fuse-access: no /dev/fuse here (the fuse module is not available); .git stays read-only in sandboxes" >&2
    exit 0
fi
chmod 0666 /dev/fuse
echo "/dev/fuse: usable by every user (mode 0666)" >&2
