#!/bin/bash
# Isolation tiers side by side on this machine: Airlock's container tier under runc and under
# crun, its gVisor tier (runsc), and docker (root daemon, runc), all on the same root filesystem
# (Airlock's image of the 'shell' template, imported into docker as bench/lib.sh does):
#
#   cold start   airlock run --name NEW shell WS -- -c true (a new sandbox, the image cached;
#                its rm -f after it untimed) vs docker run --rm --network none IMAGE true (as
#                bench/sandbox-startup.sh: docker's removal is in its time, and no network)
#   warm exec    airlock exec NAME -- true vs docker exec CTR true (a running sandbox/container)
#   python3      the same exec of python3 -c 'import json'
#   pip install  the same exec of python3 -m pip install --no-index --no-deps --target /tmp/pip-RUN
#                WHEEL: a small pure-Python wheel (20 modules) built on the host once and put in
#                the workspace, which docker's container (--network none) has bind-mounted at the
#                same path; a new target every run, removed after it, untimed
#   1 GiB        curl -o /dev/null of 1 GiB over HTTPS from an upstream on the host
#   download     (tests/e2e/upstream.py's handler, a throwaway CA): Airlock through its proxy's
#                CONNECT tunnel to 127.0.0.1 (--allow-cidr 127.0.0.1/32, as bench/egress.sh);
#                docker from a container on an --internal bridge network of this script's own,
#                to the host at that network's gateway address (the upstream listens there too).
#                curl's own time_total, without the exec around it; the bytes received are checked
#
# The Airlock peers run rootless as an ordinary user (setpriv, no PAM session, as bench/fork.sh),
# each tier picked at create: --runtime runc, --runtime crun, and --isolation gvisor (or
# --runtime runsc where the binary has no --isolation). Docker runs as root, with --user agent
# (uid 1000, the sandbox's user). Every measure gets one untimed warm-up per peer (but the
# download), then RUNS timed runs, the peers interleaved and their order rotating from run to
# run; the table shows medians and ratios. A failed command marks its cell "failed" and its
# error is printed; the run goes on.
#
# Usage (as root): bench/isolation.sh [RUNS]   (default 7; the download runs min(RUNS, 3) times)
#   AIRLOCK the binary (default /usr/local/bin/airlock), BENCH_USER the Airlock user.
#   Leaves nothing behind: sandboxes, containers, the docker network, the docker image (when
#   this script imported it) and the temporary files go on exit, and dockerd if it started it.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-7}"
download_runs=$((runs < 3 ? runs : 3))
why="docker and the benchmark user need it"
. "$here/bench/lib.sh"
command -v curl >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q curl >/dev/null
/usr/bin/python3 -c 'import pip, setuptools, wheel' 2>/dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-pip python3-setuptools python3-wheel >/dev/null

prefix=bench-iso           # sandboxes: bench-iso-PEER (warm), bench-iso-cold-PEER-RUN
container=airlock-bench-iso # docker: the warm container, and -net for the download
network=airlock-bench-iso
image=airlock-bench-shell # shared with bench/fork.sh: kept if it was there before
port=19444
gib=1073741824
work="$(mktemp -d /tmp/airlock-bench-isolation.XXXXXX)"
chmod 755 "$work"
ws="$home/bench-isolation"
results="$work/results"
upstream_pid=""
image_was_there=""

remove_all() {
    local name
    for name in $(as_user "$airlock" ls -q 2>/dev/null | grep "^$prefix-" || true); do
        as_user "$airlock" rm -f "$name" >/dev/null 2>&1 || true
    done
    if docker info >/dev/null 2>&1; then
        docker ps -aq --filter "name=^$container" | xargs -r docker rm -f >/dev/null 2>&1 || true
        docker network rm "$network" >/dev/null 2>&1 || true
    fi
}
cleanup() {
    remove_all
    if [ -z "$image_was_there" ] && docker info >/dev/null 2>&1; then
        docker rmi "$image" >/dev/null 2>&1 || true
    fi
    [ -z "$upstream_pid" ] || kill "$upstream_pid" 2>/dev/null || true
    stop_dockerd
    rm -rf "$work" "$ws"
}
trap cleanup EXIT

if as_user "$airlock" run --help 2>/dev/null | grep -q -- '--isolation'; then
    gvisor_flags="--isolation gvisor"
else
    gvisor_flags="--runtime runsc"
fi
peers=(runc crun gvisor docker)
airlock_peers=(runc crun gvisor)
declare -A flags=([runc]="--runtime runc" [crun]="--runtime crun" [gvisor]="$gvisor_flags")

start_dockerd "$work"
docker image inspect "$image" >/dev/null 2>&1 && image_was_there=1
import_template shell "$image" "$work"
remove_all
as_user mkdir -p "$ws"
cd "$work"

echo "building a small pure-Python wheel on the host (not timed)"
project="$work/project"
mkdir -p "$project/src/airlock_bench_pkg"
cat >"$project/pyproject.toml" <<'EOF'
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "airlock-bench-pkg"
version = "1.0"
EOF
touch "$project/src/airlock_bench_pkg/__init__.py"
for i in $(seq 20); do
    printf 'def f%d(x):\n    return x + %d\n' "$i" "$i" >"$project/src/airlock_bench_pkg/m$i.py"
done
(cd "$project" && /usr/bin/python3 -m pip wheel -q --no-deps --no-build-isolation --no-index -w dist . >/dev/null)
wheel="$ws/$(basename "$project"/dist/*.whl)"
install -o "$user" -m 644 "$project"/dist/*.whl "$wheel"

echo "creating the docker network $network and starting the upstream (not timed)"
docker network create --internal "$network" >/dev/null
gateway=$(docker network inspect -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}' "$network")
[ -n "$gateway" ] || { echo "the docker network $network has no gateway address" >&2; exit 1; }
"$here/tests/e2e/certs.sh" "$work" "IP:127.0.0.1,IP:$gateway"
install -o "$user" -m 644 "$work/ca.pem" "$ws/bench-ca.pem"
# tests/e2e/upstream.py's handler on 127.0.0.1 (Airlock's proxy) and on the gateway (docker).
python3 - "$here/tests/e2e" "$work" "$port" 127.0.0.1 "$gateway" >"$work/upstream.log" 2>&1 <<'PY' &
import ssl, sys, threading
from http.server import ThreadingHTTPServer
sys.path.insert(0, sys.argv[1])
from upstream import Echo
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(f"{sys.argv[2]}/server.pem", f"{sys.argv[2]}/server.key")
for address in sys.argv[4:]:
    server = ThreadingHTTPServer((address, int(sys.argv[3])), Echo)
    server.daemon_threads = True
    server.label = address
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
threading.Event().wait()
PY
upstream_pid=$!
for _ in $(seq 50); do
    curl -sf -o /dev/null --cacert "$work/ca.pem" "https://127.0.0.1:$port/small" && break
    sleep 0.1
done
curl -sf -o /dev/null --cacert "$work/ca.pem" "https://127.0.0.1:$port/small" ||
    { cat "$work/upstream.log" >&2; echo "the upstream did not start on port $port" >&2; exit 1; }

echo "starting a running sandbox per tier and the docker containers (not timed)"
declare -A started
for peer in "${airlock_peers[@]}"; do
    # shellcheck disable=SC2086 # the flags are words
    if as_user "$airlock" run -d --name "$prefix-$peer" ${flags[$peer]} --allow-cidr 127.0.0.1/32 shell "$ws" \
        >"$work/start-$peer.log" 2>&1; then
        started[$peer]=1
    else
        echo "  $peer: the sandbox did not start:" >&2
        sed 's/^/    /' "$work/start-$peer.log" >&2
    fi
done
docker run -d --name "$container" --network none --user agent -v "$ws:$ws:ro" "$image" sleep infinity >/dev/null
docker run -d --name "$container-net" --network "$network" --user agent -v "$ws:$ws:ro" "$image" \
    sleep infinity >/dev/null
started[docker]=1

# The airlock commands that are timed: the user's ids set directly, as bench/fork.sh does.
uid=$(id -u "$user")
gid=$(id -g "$user")
user_direct() {
    setpriv --reuid="$uid" --regid="$gid" --clear-groups env -i HOME="$home" USER="$user" \
        PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 AIRLOCK_HOME="$state" "$@"
}
# inside PEER COMMAND...: COMMAND in PEER's running sandbox or container.
inside() {
    local peer="$1"
    shift
    if [ "$peer" = docker ]; then
        docker exec "$container" "$@"
    else
        user_direct "$airlock" exec "$prefix-$peer" -- "$@"
    fi
}
# fail MEASURE PEER WHAT: records a failed run; a cell's first error ($work/err) is kept, and
# shown when it happens.
fail() {
    echo "$1 $2 failed $run" >>"$results"
    [ ! -e "$work/error-$1-$2" ] || return 0
    { echo "$3"; tail -12 "$work/err"; } >"$work/error-$1-$2"
    echo "    $2 failed ($3):" >&2
    tail -5 "$work/err" | sed 's/^/      /' >&2
}
# timed MEASURE PEER COMMAND...: the wall clock of COMMAND in $seconds, and as a line
# MEASURE PEER SECONDS RUN of the results ($run: the run under way; a warm-up is not recorded).
# $seconds is empty when COMMAND failed, which is recorded as a failure.
timed() {
    local measure="$1" peer="$2" t0 t1 status=0
    shift 2
    seconds=""
    t0=$EPOCHREALTIME
    "$@" </dev/null >"$work/out" 2>"$work/err" || status=$?
    t1=$EPOCHREALTIME
    if [ "$status" != 0 ]; then
        [ "$run" = warmup ] || fail "$measure" "$peer" "exit $status: $*"
        return 0
    fi
    seconds=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')
    [ "$run" = warmup ] || [ "$measure" = download ] || echo "$measure $peer $seconds $run" >>"$results"
}

cold() { # PEER RUN
    if [ "$1" = docker ]; then
        timed cold docker docker run --rm --network none --user agent "$image" true
    else
        # shellcheck disable=SC2086
        timed cold "$1" user_direct "$airlock" run --name "$prefix-cold-$1-$2" ${flags[$1]} shell "$ws" -- -c true
        as_user "$airlock" rm -f "$prefix-cold-$1-$2" >/dev/null 2>&1 || true
    fi
}
exec_true() { timed exec "$1" inside "$1" true; }
python_start() { timed python "$1" inside "$1" python3 -c 'import json'; }
pip_install() { # PEER RUN
    timed pip "$1" inside "$1" python3 -m pip install -q --disable-pip-version-check --no-cache-dir \
        --no-index --no-deps --target "/tmp/pip-$2" "$wheel"
    inside "$1" rm -rf "/tmp/pip-$2" </dev/null >/dev/null 2>&1 || true
}
curl_get=(curl -sS -o /dev/null -w '%{size_download} %{time_total}')
download() { # PEER: curl's own time, from "SIZE SECONDS" on its output
    local size
    case "$1" in
    docker) timed download docker docker exec "$container-net" "${curl_get[@]}" --cacert "$ws/bench-ca.pem" \
        "https://$gateway:$port/bytes?n=$gib" ;;
    host) timed download host "${curl_get[@]}" --cacert "$work/ca.pem" "https://127.0.0.1:$port/bytes?n=$gib" ;;
    *) timed download "$1" inside "$1" "${curl_get[@]}" --noproxy '' -x http://127.0.0.1:3128 \
        --cacert "$ws/bench-ca.pem" "https://127.0.0.1:$port/bytes?n=$gib" ;;
    esac
    [ -n "$seconds" ] || return 0
    read -r size seconds <"$work/out" || true # no newline after it
    if [ "$size" = "$gib" ]; then
        echo "download $1 $seconds $run" >>"$results"
    else
        echo "received $size bytes, not $gib" >"$work/err"
        fail download "$1" "short download"
    fi
}

# measure KEY NAME FUNCTION RUNS PEER...: a warm-up (but of the download) and RUNS runs of
# FUNCTION PEER RUN, which records under KEY; the peers interleaved, their order rotating.
measure() {
    local key="$1" name="$2" fn="$3" n="$4" i line
    shift 4
    local order=("$@")
    echo
    echo "$name: $n runs each"
    if [ "$key" != download ]; then
        run=warmup
        for peer in "${order[@]}"; do [ -z "${started[$peer]:-}" ] || "$fn" "$peer" 0; done
    fi
    for run in $(seq "$n"); do
        line="  run $run:"
        for i in $(seq 0 $((${#order[@]} - 1))); do
            peer="${order[$(((run + i) % ${#order[@]}))]}"
            if [ -z "${started[$peer]:-}" ] && [ "$key" != cold ]; then
                cp "$work/start-$peer.log" "$work/err"
                fail "$key" "$peer" "its sandbox did not start"
                continue
            fi
            "$fn" "$peer" "$run"
            line+=" $peer $(awk -v m="$key" -v p="$peer" -v r="$run" '$1 == m && $2 == p && $4 == r {
                print ($3 == "failed" ? "failed" : sprintf("%.3fs", $3)) }' "$results");"
        done
        echo "$line"
    done
}

: >"$results"
started[host]=1
echo
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
measure cold "cold start" cold "$runs" "${peers[@]}"
measure exec "warm exec" exec_true "$runs" "${peers[@]}"
measure python "python3 -c 'import json'" python_start "$runs" "${peers[@]}"
measure pip "pip install of a local wheel" pip_install "$runs" "${peers[@]}"
measure download "1 GiB HTTPS download" download "$download_runs" "${peers[@]}" host
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "medians ($(nproc) cores; airlock $(as_user "$airlock" --version) as $user, rootless; docker" \
    "$(docker version -f '{{.Server.Version}}') as root)"
python3 - "$results" "$work" "$runs" "$download_runs" <<'PY'
import os, statistics, sys
from collections import defaultdict
results, work, runs, download_runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
values, failures = defaultdict(list), defaultdict(int)
for line in open(results):
    measure, peer, value, _ = line.split()
    if value == "failed":
        failures[measure, peer] += 1
    else:
        values[measure, peer].append(float(value))
rows = [("cold", "cold start", "ms", 1000), ("exec", "warm exec", "ms", 1000),
        ("python", "python3 import json", "ms", 1000), ("pip", "pip install wheel", "ms", 1000),
        ("download", "1 GiB download", "s", 1)]
peers = ["runc", "crun", "gvisor", "docker"]
ratios = [("gvisor", "runc"), ("gvisor", "docker"), ("crun", "docker")]

def median(measure, peer):
    if failures[measure, peer] or not values[measure, peer]:
        return None
    return statistics.median(values[measure, peer])

def cell(measure, peer, scale):
    if failures[measure, peer]:
        n = failures[measure, peer] + len(values[measure, peer])
        return f"failed {failures[measure, peer]}/{n}"
    m = median(measure, peer)
    return "-" if m is None else f"{m * scale:.0f}" if scale > 1 else f"{m:.2f}"

header = f"{'':<22}{'':>3}" + "".join(f"{p if p != 'gvisor' else 'gVisor':>12}" for p in peers)
header += "".join(f"{(a if a != 'gvisor' else 'gVisor') + '/' + b:>15}" for a, b in ratios)
print(header)
for measure, label, unit, scale in rows:
    line = f"{label:<22}{unit:>3}" + "".join(f"{cell(measure, p, scale):>12}" for p in peers)
    for a, b in ratios:
        x, y = median(measure, a), median(measure, b)
        line += f"{(f'{x / y:.2f}x' if x is not None and y else 'n/a'):>15}"
    print(line)
print(f"(medians of {runs} runs, the download of {download_runs}; ratios > 1: the first is slower)")
host = median("download", "host")
if host is not None:
    speeds = ", ".join(f"{p if p != 'gvisor' else 'gVisor'} {1024 / m:.0f}" for p in peers + ["host"]
                       if (m := median("download", p)) is not None)
    print(f"1 GiB download, MiB/s: {speeds} (host: curl on the host, no sandbox, the upstream's ceiling)")
errors = sorted(f for f in os.listdir(work) if f.startswith("error-"))
if errors:
    print()
    print("failures (the first error of each failed cell):")
    for name in errors:
        _, measure, peer = name.split("-", 2)
        print(f"  {measure} / {peer}:")
        for text in open(os.path.join(work, name)).read().rstrip().splitlines():
            print(f"    {text}")
PY
echo
echo "settings"
echo "  airlock $airlock: runc = ${flags[runc]}, crun = ${flags[crun]}, gVisor = ${flags[gvisor]};" \
    "warm sandboxes with --allow-cidr 127.0.0.1/32"
echo "  runtimes: $(runc --version | head -1), $(crun --version | head -1)," \
    "$(runsc --version 2>/dev/null | head -1)"
echo "  docker: runc, image $image (the 'shell' template $digest, ids shifted out of the user namespace);" \
    "cold: --network none; exec, python3, pip: a --network none container with $ws bind-mounted read-only;" \
    "download: a container on the --internal bridge network $network, to the host at $gateway"
echo "  the airlock commands run as $user through setpriv, docker's as root; wall clock by bash's EPOCHREALTIME," \
    "but the download: curl's time_total"
