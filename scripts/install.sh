#!/bin/bash
# Sets up Airlock on a Debian 12 machine: system packages, the release build, and
# /usr/local/bin/airlock. Then `airlock run shell` gives a sandboxed shell in the current directory.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
"$here/scripts/system-packages.sh"
user="${SUDO_USER:-$(id -un)}"
if [ "$user" != root ] && ! grep -q "^$user:" /etc/subuid; then
    echo "giving $user subordinate ids for sandboxes" >&2
    as_root usermod --add-subuids 100000-165535 --add-subgids 100000-165535 "$user"
fi
echo "building airlock (release)" >&2
swift build -c release --static-swift-stdlib --package-path "$here" 2>&1 | grep -E "error|warning: |Compiling airlock|Build complete" >&2 || true
bin="$(swift build -c release --static-swift-stdlib --package-path "$here" --show-bin-path)/airlock"
test -x "$bin"
as_root install -m 755 "$bin" /usr/local/bin/airlock
echo "installed /usr/local/bin/airlock" >&2
