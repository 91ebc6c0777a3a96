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
