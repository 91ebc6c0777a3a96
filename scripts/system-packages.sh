#!/bin/bash
# Installs the Debian packages Airlock needs at run time and in its tests.
# Usage: scripts/system-packages.sh   (as root, or through sudo)
set -euo pipefail
packages=(
    runc crun              # OCI runtimes (crun is the default where it runs, runc the fallback)
    uidmap                 # newuidmap/newgidmap for rootless id maps
    mmdebstrap             # builds image root filesystems
    skopeo                 # pulls container images (airlock image pull, run --image)
    tini                   # tini-static: the sandbox init, added to images that lack one
    util-linux procps      # nsenter, unshare, setpriv, setsid; ps/pgrep for tests
    bubblewrap             # benchmark peer
    ca-certificates tar curl
    git                    # clone mode (the host fetches the agent's clone)
    openssl python3        # test upstreams (certificates, servers) in the egress tests
    python3-venv           # the real MCP client (the mcp package from PyPI) in the code-sandbox tests
    docker-registry        # the registry the image tests pull from, on loopback
    podman                 # the user's Podman store, which the image tests pull from (containers-storage:)
    docker.io              # Docker itself, which the image tests compare with (docker save, docker run)
    qemu-system-x86 qemu-utils  # a Debian 12 VM with systemd on cgroup v2, for the limits suite there
)
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
# gVisor (`--isolation gvisor`): Debian 12's own runsc (20221219) cannot serve the statx call
# coreutils makes, so on bookworm it comes from bookworm-backports (0.0~20240729), which runs
# rootless. Backports are pinned low by Debian: only what is asked for by name comes from there.
. /etc/os-release
if [ "${VERSION_CODENAME:-}" = bookworm ]; then
    backports=/etc/apt/sources.list.d/airlock-bookworm-backports.sources
    if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
        echo "adding Debian's bookworm-backports to apt's sources (for gVisor's runsc)" >&2
        as_root tee "$backports" >/dev/null <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    fi
    if ! dpkg-query -W -f='${Version}' runsc 2>/dev/null | grep -q "bpo12"; then
        echo "installing runsc from bookworm-backports" >&2
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            -t bookworm-backports runsc >/dev/null
    fi
else
    dpkg-query -W -f='${Status}' runsc 2>/dev/null | grep -q "install ok installed" || {
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends runsc >/dev/null ||
            echo "note: no runsc package here; --isolation gvisor needs one (https://gvisor.dev/docs/user_guide/install/)" >&2
    }
fi
