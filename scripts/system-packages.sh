#!/bin/bash
# Installs the Debian packages Airlock needs at run time and in its tests.
# Usage: scripts/system-packages.sh   (as root, or through sudo)
set -euo pipefail
packages=(
    runc crun runsc        # OCI runtimes (runc is the default)
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
