#!/bin/bash
# Published ports side by side on this machine: one server (bench/port_bench.py serve) reached
# from a client on the host at 127.0.0.1 by three paths:
#   direct    the server runs on the host itself, on 127.0.0.1: no forwarding, the floor
#   docker    the server in a container (the 'shell' template's root filesystem imported into
#             docker, so the same files and the same python3), on the default bridge,
#             published with `docker run -p 127.0.0.1:HOSTPORT:8000`: docker-proxy carries the
#             host's loopback connections (checked below with ss, and printed)
#   airlock   the server in an Airlock sandbox of template 'shell', run as the ordinary bench
#             user, published with `--publish HOSTPORT:8000`: the sandbox's supervisor accepts
#             on the host and carries each connection into the sandbox's namespace
# Throughput: the client asks for MB megabytes (default 200), which the server sends from a
# buffer in memory as fast as it can and closes; the client reads all of it; MB/s from connect
# to the end of the data, the median of TRANSFERS (3) per run. Latency: N (500) fresh
# connections one after another, each timed from the start of connect() to the first byte of
# the server's 1-byte answer to a 1-byte request; p50 and p99 per run. Each figure is the
# median over RUNS runs; within a run the paths are interleaved and their order rotates from
# run to run, so machine noise and warm caches fall on each path alike. One transfer and 50
# connections per path warm up first, untimed. Client and servers share the machine's cores,
# as do the forwarders (docker-proxy, the supervisor): a two-core box measures that too.
#
# Usage (as root): bench/ports.sh [RUNS]   (default 5). BENCH_USER picks the Airlock user,
# AIRLOCK the binary, BENCH_MB, BENCH_TRANSFERS and BENCH_CONNECTIONS the sizes above.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-5}"
mb="${BENCH_MB:-200}"
transfers="${BENCH_TRANSFERS:-3}"
connections="${BENCH_CONNECTIONS:-500}"
why="a docker daemon and the benchmark user need it"
. "$here/bench/lib.sh"
if ! as_user "$airlock" port --help >/dev/null 2>&1; then
    echo "$airlock has no 'port' command (build and install the current tree)" >&2
    exit 1
fi

name="bench-ports"           # the sandbox and the container: nothing else is touched
image="airlock-bench-shell"  # the docker image of the 'shell' template (bench/lib.sh)
inner=8000                   # the server's port inside the sandbox and the container
work="$(mktemp -d /tmp/airlock-bench-ports.XXXXXX)"
chmod 755 "$work"
ws="$home/bench-ports-ws"
pids=()
cleanup() {
    as_user "$airlock" rm -f "$name" >/dev/null 2>&1 || true
    docker rm -f "$name" >/dev/null 2>&1 || true
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    stop_dockerd
    rm -rf "$work" "$ws"
}
trap cleanup EXIT
start_dockerd "$work"
import_template shell "$image" "$work"

# The server's file, at the same path on the host, in the sandbox (the workspace is mounted at
# its host path) and in the container (bind-mounted there, read-only).
as_user mkdir -p "$ws"
install -m 644 -o "$user" "$here/bench/port_bench.py" "$ws/port_bench.py"
bench() { python3 "$ws/port_bench.py" "$@"; }
# A free host port: bound and released, so the next listener can have it.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -A port
port[direct]=$(free_port)
port[docker]=$(free_port)
port[airlock]=$(free_port)

echo "starting the three servers (not timed)"
python3 "$ws/port_bench.py" serve 127.0.0.1 "${port[direct]}" "$mb" >"$work/direct.log" 2>&1 &
pids+=($!)

docker rm -f "$name" >/dev/null 2>&1 || true
docker run -d --name "$name" -p "127.0.0.1:${port[docker]}:$inner" -v "$ws:$ws:ro" "$image" \
    python3 "$ws/port_bench.py" serve 0.0.0.0 "$inner" "$mb" >/dev/null

as_user "$airlock" rm -f "$name" >/dev/null 2>&1 || true
as_user "$airlock" run -d --name "$name" --publish "${port[airlock]}:$inner" shell "$ws" >/dev/null
# Detached from the exec: setsid, and all three streams redirected, or exec waits for it.
as_user "$airlock" exec "$name" -- bash -c \
    "setsid python3 $ws/port_bench.py serve 0.0.0.0 $inner $mb > /tmp/port-bench.log 2>&1 < /dev/null &"

for path in direct docker airlock; do bench ready 127.0.0.1 "${port[$path]}" 30; done

# Who holds the host end of a connection to each port: python3 itself for direct, and the
# forwarder for the other two. docker-proxy must be it for docker (were the connection
# DNATed by the kernel instead, this would not be the comparison it claims to be).
owner() {
    bench hold 127.0.0.1 "$1" 5 &
    local holder=$!
    sleep 0.5
    ss -tnpH state established "( sport = :$1 )" | grep -o 'users:(("[^"]*"' | cut -d'"' -f2 | sort -u | paste -sd, -
    kill "$holder" 2>/dev/null || true
    wait "$holder" 2>/dev/null || true
}
echo "the host end of each path's connections is held by:"
declare -A held
for path in direct docker airlock; do
    held[$path]=$(owner "${port[$path]}")
    echo "  $path (127.0.0.1:${port[$path]}): ${held[$path]}"
done
if [ "${held[docker]}" != docker-proxy ]; then
    echo "  warning: docker-proxy is not what carries docker's loopback connections here" >&2
else
    echo "  docker-proxy is in docker's path: $(pgrep -a docker-proxy | grep -e "-host-port ${port[docker]}" | head -1)"
fi

echo "warming up each path (one transfer, 50 connections; not timed)"
for path in direct docker airlock; do
    bench throughput 127.0.0.1 "${port[$path]}" "$mb" 1 >/dev/null
    bench latency 127.0.0.1 "${port[$path]}" 50 >/dev/null
done

# RESULTS lines: PATH METRIC VALUE, one per path, metric and run; port_bench.py reports them.
results="$work/results"
paths=(direct docker airlock)
echo
echo "$runs runs: $transfers x $mb MB and $connections connections per path per run, paths interleaved"
for run in $(seq "$runs"); do
    # This run's order: the three paths rotated by the run number.
    order=()
    for i in 0 1 2; do order+=("${paths[$(((run + i) % 3))]}"); done
    line="  run $run:"
    for path in "${order[@]}"; do
        speed=$(bench throughput 127.0.0.1 "${port[$path]}" "$mb" "$transfers")
        echo "$path mbps $speed" >>"$results"
        line+=" $path ${speed} MB/s"
    done
    for path in "${order[@]}"; do
        read -r p50 p99 < <(bench latency 127.0.0.1 "${port[$path]}" "$connections")
        echo "$path p50 $p50" >>"$results"
        echo "$path p99 $p99" >>"$results"
        line+=", $path p50 $p50 ms"
    done
    echo "$line"
done

echo
echo "medians of $runs runs ($(nproc) cores; airlock: $airlock as $user; docker $(docker version -f '{{.Server.Version}}'))"
bench report "$results"
