#!/bin/bash
# Proxy throughput and latency under many concurrent connections, side by side on this machine,
# against one plain-HTTP upstream on host loopback (bench/proxy_load.py --serve: asyncio, a
# fixed 64-byte answer to GET /small, keep-alive):
#   airlock   the load client inside an Airlock sandbox, through its proxy on 127.0.0.1:3128
#             (the sandbox is created with --allow-cidr 127.0.0.1/32 so the proxy may dial the
#             host's loopback)
#   tinyproxy the same client on the host, through Debian's tinyproxy (MaxClients 1100)
#   direct    the same client on the host straight to the upstream: the ceiling of client and
#             upstream on this machine, shown so a proxy's number can be told from theirs
# A cell is one path at one concurrency C: C connections held by one asyncio process
# (bench/proxy_load.py), each a client sending `GET http://127.0.0.1:PORT/small HTTP/1.1`
# (absolute form) one after another on its keep-alive connection, for a fixed DURATION
# (default 5 s) after every connection was opened and answered one untimed warm-up request.
# Latency is per request, send to last byte (including a reconnect when the proxy closed the
# connection: tinyproxy closes after every answer, so through it each request is a new
# connection). Failed requests (no answer within 5 s, reset, non-200) are counted, not fatal;
# each cell is bounded (the client gives up after setup + DURATION + timeout + 5 s, and
# is killed 20 s after that). Median of RUNS runs per cell (p50 and p99 are the medians of the
# per-run percentiles); the runs go round robin over concurrencies and paths.
#
# Usage (as root): bench/proxy-load.sh [RUNS] ["CONCURRENCY ..."]     e.g. bench/proxy-load.sh 1 "50 100"
#   defaults: 3 runs, "100 500 1000". BENCH_USER picks the Airlock user, AIRLOCK the binary,
#   DURATION the seconds per cell, UPSTREAM_PORT / TINYPROXY_PORT the host ports (19580, 18980).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-3}"
levels="${2:-100 500 1000}"
duration="${DURATION:-5}"
upstream_port="${UPSTREAM_PORT:-19580}"
tinyproxy_port="${TINYPROXY_PORT:-18980}"
request_timeout=5
setup_timeout=15
why="tinyproxy and the benchmark user need it"
. "$here/bench/lib.sh"
command -v tinyproxy >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q tinyproxy >/dev/null

name=bench-proxy-load
work="$(mktemp -d /tmp/airlock-bench-proxy-load.XXXXXX)"
chmod 755 "$work"
ws="$home/$name"
pids=()
cleanup() {
    as_user "$airlock" rm -f "$name" >/dev/null 2>&1 || true
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# Each of these holds a descriptor (or two) per connection: lift the soft limit to the hard one.
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 4096 ] ||
    echo "warning: only $(ulimit -n) descriptors; tinyproxy needs two per client" >&2

python3 "$here/bench/proxy_load.py" --serve "$upstream_port" >"$work/upstream.log" 2>&1 &
pids+=($!)
cat >"$work/tinyproxy.conf" <<EOF
Port $tinyproxy_port
Listen 127.0.0.1
Allow 127.0.0.1
MaxClients 1100
Timeout 60
LogLevel Critical
EOF
tinyproxy -d -c "$work/tinyproxy.conf" >"$work/tinyproxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q ready "$work/upstream.log" && break; sleep 0.1; done
grep -q ready "$work/upstream.log" || { cat "$work/upstream.log" >&2; echo "the upstream did not start" >&2; exit 1; }
url="http://127.0.0.1:$upstream_port/small"
curl -sf -o /dev/null --noproxy '' -x "http://127.0.0.1:$tinyproxy_port" "$url" ||
    { cat "$work/tinyproxy.log" >&2; echo "tinyproxy does not answer on $tinyproxy_port" >&2; exit 1; }

as_user mkdir -p "$ws"
install -m 644 "$here/bench/proxy_load.py" "$ws/proxy_load.py"
chown "$user:" "$ws/proxy_load.py"
as_user "$airlock" rm -f "$name" >/dev/null 2>&1 || true
as_user "$airlock" create shell "$ws" --name "$name" --allow-cidr 127.0.0.1/32 >/dev/null
as_user "$airlock" run -d shell "$ws" --name "$name" >/dev/null
inside() { as_user "$airlock" exec "$name" -- bash -c "$1"; }
echo "airlock $("$airlock" --version 2>/dev/null || echo "$airlock"), sandbox python $(inside 'python3 --version')," \
    "$(tinyproxy -v 2>&1 | head -1), host python $(python3 --version | cut -d' ' -f2), $(nproc) CPUs"

options="--url $url --duration $duration --timeout $request_timeout --setup-timeout $setup_timeout"
limit=$((setup_timeout + duration + request_timeout + 25))
results="$work/results.jsonl"
# cell PATH C RUN COMMAND...: runs one cell, appends its JSON (or a failure record) to results.
cell() {
    local path="$1" level="$2" run="$3" out status=0
    shift 3
    out=$(timeout -k 5 "$limit" "$@" 2>"$work/stderr") || status=$?
    out=$(printf '%s\n' "$out" | grep '^{' | tail -1)
    if [ -z "$out" ]; then
        echo "    $path at $level: no result (exit $status): $(tail -3 "$work/stderr" | tr '\n' ' ')" >&2
        out="{\"ok\": 0, \"failed\": 0, \"errors\": {\"no result (exit $status)\": 1}, \"req_s\": 0}"
    fi
    printf '{"path": "%s", "level": %s, "run": %s, "result": %s}\n' "$path" "$level" "$run" "$out" >>"$results"
    sleep 1 # let closed connections drain before the next cell
}

echo "$runs runs of ${duration} s per cell at concurrency $levels (GET /small, keep-alive)"
for run in $(seq "$runs"); do
    for level in $levels; do
        cell direct "$level" "$run" python3 "$here/bench/proxy_load.py" $options -c "$level"
        cell tinyproxy "$level" "$run" python3 "$here/bench/proxy_load.py" $options -c "$level" \
            --proxy "127.0.0.1:$tinyproxy_port"
        # as_user, spelled out: timeout runs a program, not a shell function
        cell airlock "$level" "$run" runuser -u "$user" -- env HOME="$home" AIRLOCK_HOME="$state" \
            "$airlock" exec "$name" -- python3 proxy_load.py $options -c "$level" --proxy 127.0.0.1:3128
    done
    echo "  run $run done"
done

python3 - "$results" <<'PY'
import json, statistics, sys

cells = {}
for line in open(sys.argv[1]):
    row = json.loads(line)
    cells.setdefault((row["path"], row["level"]), []).append(row["result"])
levels = sorted({level for _, level in cells})


def summary(path, level):
    results = cells.get((path, level), [])
    def median(key):
        values = [r[key] for r in results if r.get(key) is not None]
        return statistics.median(values) if values else float("nan")
    failed = sum(r.get("failed") or 0 for r in results) + sum(r.get("setup_failed") or 0 for r in results)
    partial = any(r.get("setup_failed") or r.get("aborted") or r.get("p99_ms") is None for r in results)
    return median("req_s"), median("p50_ms"), median("p99_ms"), f"{failed}{'*' if partial else ''}"


def ratio(a, b):
    return a / b if b else float("nan")


print()
print(f"{'':13}{'airlock':^35}   | {'tinyproxy':^35}   | {'airlock/tinyproxy':^23}")
print(f"{'concurrency':>11}  {'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'failed':>8}   | "
      f"{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'failed':>8}   | {'ratio req/s':>12}{'ratio p99':>11}")
for level in levels:
    a, t = summary("airlock", level), summary("tinyproxy", level)
    print(f"{level:>11}  {a[0]:>9.0f}{a[1]:>9.2f}{a[2]:>9.2f}{a[3]:>8}   | "
          f"{t[0]:>9.0f}{t[1]:>9.2f}{t[2]:>9.2f}{t[3]:>8}   | {ratio(a[0], t[0]):>12.2f}{ratio(a[2], t[2]):>11.2f}")
print()
print("direct (client and upstream alone, no proxy), req/s:",
      ", ".join(f"{level}: {summary('direct', level)[0]:.0f}" for level in levels))
print("failed: requests that failed plus connections that could not be set up, summed over all runs;")
print("  * some connections never set up (or a run gave no result): req/s and latency are of the rest")

notes = []
for (path, level), results in sorted(cells.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    for n, r in enumerate(results, 1):
        extra = []
        if r.get("errors"):
            extra.append("errors " + ", ".join(f"{k}: {v}" for k, v in sorted(r["errors"].items())))
        if r.get("setup_failed"):
            kinds = ", ".join(f"{k}: {v}" for k, v in sorted((r.get("setup_errors") or {}).items()))
            extra.append(f"{r['setup_failed']} of {level} connections not set up in {r.get('setup_s')} s ({kinds})")
        if r.get("aborted"):
            extra.append("aborted (cell time limit)")
        if extra:
            notes.append(f"  {path} at {level}, run {n}: " + "; ".join(extra))
if notes:
    print("failures:")
    print("\n".join(notes))
print()
print("per run (req/s p50 p99 ms; TCP connections opened):")
for (path, level), results in sorted(cells.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    runs = "  ".join(f"{r.get('req_s', 0):.0f} {r.get('p50_ms')} {r.get('p99_ms')}; {r.get('connects', 0)}"
                     for r in results)
    print(f"  {path:<10}{level:>6}  {runs}")
PY
