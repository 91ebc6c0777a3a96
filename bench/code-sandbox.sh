#!/bin/bash
# Code sandboxes for MCP clients, side by side on this machine: one cycle
#   sandbox_initialize + sandbox_exec("true") + sandbox_stop
# through `airlock mcp serve code-sandbox` (rootless, as an ordinary user) with a warm pool
# (--pool 2) and without one (--pool 0), against the same cycle with docker (root daemon):
#   docker run -d --network none IMAGE sleep infinity + docker exec ID true + docker rm -f ID
# where IMAGE is Airlock's own image of the server's template, imported into docker.
# Median and p90 of the whole cycle, and of sandbox_initialize (docker run -d) alone.
# Target: sandbox_initialize from the pool in under 50 ms (median).
#
# The timing is bench/code_sandbox_bench.py: a minimal MCP client on each server's stdio,
# peers interleaved (pool, no pool, docker, pool, ...), a fixed pause after every cycle so
# the pool refills (BENCH_PAUSE, 1 s), and each pooled initialize checked to say "pooled".
#
# Usage (as root): bench/code-sandbox.sh [RUNS]   (default 20)
#   BENCH_USER picks the Airlock user, AIRLOCK the binary, BENCH_TEMPLATE the image imported
#   into docker (default code: it must be the server's default template), BENCH_PAUSE the
#   pause in seconds.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-20}"
why="docker and the benchmark user need it"
. "$here/bench/lib.sh"
template="${BENCH_TEMPLATE:-code}"
pause="${BENCH_PAUSE:-1}"
image="airlock-code:bench"

if ! as_user "$airlock" mcp serve code-sandbox --help >/dev/null 2>&1; then
    echo "$airlock has no 'mcp serve code-sandbox' (build and install the current tree)" >&2
    exit 1
fi

work="$(mktemp -d /tmp/airlock-bench-code-sandbox.XXXXXX)"
cleanup() {
    stop_dockerd
}
trap cleanup EXIT

start_dockerd "$work"

import_template "$template" "$image" "$work"

server() { # POOL: the server's command line, run as the benchmark user like as_user does
    printf '%q ' runuser -u "$user" -- env HOME="$home" AIRLOCK_HOME="$state" \
        "$airlock" mcp serve code-sandbox --pool "$1"
}
pool_cmd="$(server 2)"
nopool_cmd="$(server 0)"
before=$(as_user "$airlock" ls -q | wc -l)

echo
echo "$runs cycles each, interleaved, ${pause}s pause after every cycle"
(cd "$home" && python3 "$here/bench/code_sandbox_bench.py" "$runs" --pause "$pause" --warmup 2 \
    --stderr-dir "$work" \
    --mcp "airlock pool=$pool_cmd" --pooled "airlock pool" \
    --mcp "airlock no pool=$nopool_cmd" \
    --docker "docker=$image") >"$work/result.json"

after=$(as_user "$airlock" ls -q | wc -l)
[ "$after" -le "$before" ] ||
    echo "warning: $((after - before)) more sandboxes in 'airlock ls' than before the servers ran" >&2

docker_server=$(docker version -f '{{.Server.Version}}')
storage=$(docker info -f '{{.Driver}}')
cgroup=$(docker info -f '{{.CgroupVersion}}' 2>/dev/null || echo "?")
python3 - "$work/result.json" <<PY
import json, sys
r = json.load(open(sys.argv[1]))
peers = r["peers"]
d = peers["docker"]
print()
print(f"{'peer':<18}{'init med':>10}{'init p90':>10}{'exec med':>10}{'stop med':>10}"
      f"{'cycle med':>11}{'cycle p90':>11}{'pooled':>9}")
for label, p in peers.items():
    m, q = p["median_ms"], p["p90_ms"]
    pooled = f"{p['pooled_count']}/{r['runs']}" if p["kind"] == "mcp" else "-"
    print(f"{label:<18}{m['initialize']:>10.1f}{q['initialize']:>10.1f}{m['exec']:>10.1f}{m['stop']:>10.1f}"
          f"{m['cycle']:>11.1f}{q['cycle']:>11.1f}{pooled:>9}")
print("(ms; init = sandbox_initialize / docker run -d alone, cycle = init + exec true + stop / rm -f)")
print()
for label in ("airlock pool", "airlock no pool"):
    p = peers[label]
    for step, name in (("cycle", "cycle"), ("initialize", "initialize")):
        a, b = p["median_ms"][step], d["median_ms"][step]
        print(f"{label + ' vs docker, ' + name + ':':<40}{a:8.1f} / {b:8.1f} ms = {a / b:6.3f}x"
              f"  (docker / airlock = {b / a:6.1f})")
print()
pool = peers["airlock pool"]
init = pool["median_ms"]["initialize"]
print(f"target: sandbox_initialize with the pool under 50 ms (median): {init:.1f} ms, "
      f"{'met' if init < 50 else 'MISSED'}")
if pool["pooled_count"] < r["runs"]:
    print(f"warning: only {pool['pooled_count']} of {r['runs']} pooled initializes said pooled: true "
          f"(the pool did not refill within the pause; raise BENCH_PAUSE)")
print()
print("settings")
print(f"  runs {r['runs']} per peer, interleaved, {r['warmup']} untimed warm-up cycles each "
      f"(the pooled peer's until one is pooled), fixed {r['pause_s']} s sleep after every cycle")
print("  (the pool's refill is not polled: the contract does not say sandbox_list shows pooled sandboxes;")
print("   each timed initialize's 'pooled' flag is checked instead)")
print("  MCP: initialize + notifications/initialized once per server, then tools/call")
print('       sandbox_initialize {} ; sandbox_exec {"sandbox_id": ID, "command": "true"} ; sandbox_stop {"sandbox_id": ID}')
for label, p in peers.items():
    print(f"  {label}: {p['command']}")
    if p["kind"] == "mcp":
        print(f"      server start to initialize response {p['server_startup_ms']:.0f} ms, "
              f"exit after input closed {p['shutdown_ms']:.0f} ms, server {p['server_info']}")
print("  template $template, image $digest")
print("  docker image $image: tar of that rootfs (ids shifted out of the user namespace) | docker import")
print("  docker server $docker_server, storage driver $storage, cgroup v$cgroup, started by "
      + ("this script (dockerd, default flags)" if "$dockerd_pid" else "someone else"))
print("  airlock runs as $user (rootless), docker as root; samples and server logs: $work")
PY
