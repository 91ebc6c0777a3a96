#!/bin/bash
# Sandbox start-up, side by side on this machine: Airlock (rootless, as an ordinary user)
# against docker (root daemon), bwrap and plain runc, on the same root filesystem.
#
#   cold: airlock run shell WS -- -c true on a new sandbox (image cached)
#         vs docker run --rm IMAGE true (the same rootfs imported) vs bwrap ... true
#   warm: airlock exec NAME -- true vs docker exec CTR true vs runc exec ID true
#
# Usage (as root): bench/sandbox-startup.sh [RUNS]   (BENCH_USER picks the Airlock user)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-15}"
why="docker and the benchmark user need it"
. "$here/bench/lib.sh"

command -v dockerd >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null
if ! docker info >/dev/null 2>&1; then
    (dockerd >/tmp/airlock-bench-dockerd.log 2>&1 &)
    for _ in $(seq 100); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
fi

ws="$home/bench-ws"
as_user mkdir -p "$ws"
as_user "$airlock" template build shell >/dev/null
digest=$(as_user "$airlock" template ls --json | python3 -c 'import json,sys; print([t for t in json.load(sys.stdin) if t["name"]=="shell"][0]["digest"])')
rootfs=$(ls -d "$home"/.airlock-bench/images/"$digest"*/rootfs)

echo "importing the same root filesystem into docker and a runc bundle"
tar --numeric-owner -C "$rootfs" -c . | docker import - airlock-bench-shell >/dev/null
bundle=/tmp/airlock-bench-runc
rm -rf "$bundle" && mkdir -p "$bundle"
(cd "$bundle" && runc spec && python3 - "$rootfs" <<'PY'
import json, sys
c = json.load(open("config.json"))
c["root"] = {"path": sys.argv[1], "readonly": True}
c["process"]["terminal"] = False
c["process"]["args"] = ["sleep", "infinity"]
json.dump(c, open("config.json", "w"))
PY
)
runc delete -f airlock-bench >/dev/null 2>&1 || true
runc run -d --bundle "$bundle" airlock-bench >/dev/null 2>&1 </dev/null
docker rm -f airlock-bench >/dev/null 2>&1 || true
docker run -d --network none --name airlock-bench airlock-bench-shell sleep infinity >/dev/null
as_user "$airlock" rm -f shell-bench-ws >/dev/null 2>&1 || true
as_user "$airlock" run -d shell "$ws" >/dev/null
bwrap_cmd="bwrap --unshare-all --die-with-parent --ro-bind $rootfs / --proc /proc --dev /dev --tmpfs /tmp true"

echo
echo "cold start, $runs runs each (new sandbox, image cached)"
python3 "$here/bench/timeit.py" "$runs" \
    "airlock run@$user=AIRLOCK_HOME=$home/.airlock-bench $airlock run --name cold-{i} shell $ws -- -c true" \
    --teardown "airlock run=AIRLOCK_HOME=$home/.airlock-bench $airlock rm -f cold-{i}" \
    "docker run --rm=docker run --rm --network none airlock-bench-shell true" \
    "bwrap@$user=$bwrap_cmd"

echo
echo "warm exec, $runs runs each (running sandbox)"
python3 "$here/bench/timeit.py" "$runs" \
    "airlock exec@$user=AIRLOCK_HOME=$home/.airlock-bench $airlock exec shell-bench-ws -- true" \
    "docker exec=docker exec airlock-bench true" \
    "runc exec=runc exec airlock-bench true"

echo
echo "airlock and bwrap run as $user (rootless); docker and runc as root"
as_user "$airlock" rm -f shell-bench-ws >/dev/null
docker rm -f airlock-bench >/dev/null
runc delete -f airlock-bench >/dev/null 2>&1 || true
