#!/bin/bash
# The MCP gateway's added latency, side by side on this machine: tools/call get_current_time
# {"timezone": "UTC"} to one long-lived mcp-server-time (PyPI, the catalog's `time` server)
#   direct, host     the client spawns mcp-server-time from a venv on the host, on its stdio
#   direct, sandbox  the client spawns `airlock exec -i SANDBOX -- mcp-server-time ...` in a
#                    running sandbox of the same image (template mcp-servers, --network none):
#                    the same program behind the same runc exec, without the gateway
#   gateway, stdio   the client spawns `airlock mcp gateway run --servers time --long-lived`
#   gateway, HTTP    the same gateway with --transport streaming (one gateway for all clients)
# Sequential: 1000 calls after 50 warm-up calls, one client; p50, p90, p99, mean.
# Concurrent: 100 clients x 20 calls at once; over stdio 100 calls in flight on one session
# (one server process), over HTTP 100 sessions of their own; and 100 separate direct server
# processes (host and sandbox), a session each, when memory allows.
# Target: the gateway adds at most 2 ms to the p50 (gateway minus direct in the sandbox).
#
# The timing is bench/gateway_bench.py with the Python `mcp` SDK as the client (in a venv
# made here, with the mcp and mcp-server-time versions of the image), in rounds whose peers
# are interleaved; the table shows medians over the rounds. A minimal JSON-RPC client adds
# sequential rows without the SDK's own cost (over stdio, and over HTTP to the same gateway),
# and one more gateway runs with --log-calls to show its own share of each call.
#
# Usage (as root): bench/gateway.sh [ROUNDS]   (default 3)
#   BENCH_USER picks the Airlock user, AIRLOCK the binary, BENCH_CALLS (1000),
#   BENCH_CLIENTS (100) and BENCH_PER_CLIENT (20) the sizes, BENCH_VENV the client's venv
#   (default /var/tmp/airlock-bench-gateway-venv, kept for the next run).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
rounds="${1:-3}"
why="the benchmark user needs it"
. "$here/bench/lib.sh"
state="$home/.airlock-bench" # AIRLOCK_HOME of as_user (bench/lib.sh)
venv="${BENCH_VENV:-/var/tmp/airlock-bench-gateway-venv}"
sandbox="bench-gateway-direct"
ws="$home/bench-gateway"

if ! as_user "$airlock" mcp gateway run --help >/dev/null 2>&1; then
    echo "$airlock has no 'mcp gateway run' (build and install the current tree)" >&2
    exit 1
fi

work="$(mktemp -d /tmp/airlock-bench-gateway.XXXXXX)"
cleanup() { as_user "$airlock" rm -f "$sandbox" >/dev/null 2>&1 || true; }
trap cleanup EXIT

echo "building (or finding) the 'mcp-servers' image as $user"
digest=$(as_user "$airlock" template build mcp-servers)
site=$(ls -d "$state/images/$digest"/rootfs/opt/mcp-servers/lib/python3*/site-packages 2>/dev/null | head -1)
[ -n "$site" ] || { echo "no /opt/mcp-servers in the image $digest" >&2; exit 1; }
version() { ls "$site" | sed -n "s/^$1-\(.*\)\.dist-info$/\1/p" | head -1; }
mcp_version=$(version mcp)
time_version=$(version mcp_server_time)
[ -n "$mcp_version" ] && [ -n "$time_version" ] || { echo "no mcp / mcp-server-time in $site" >&2; exit 1; }

# The client, and the host's server, at the image's versions.
if ! "$venv/bin/python" -c "import mcp" 2>/dev/null ||
    [ "$("$venv/bin/pip" show mcp 2>/dev/null | sed -n 's/^Version: //p')" != "$mcp_version" ] ||
    [ "$("$venv/bin/pip" show mcp-server-time 2>/dev/null | sed -n 's/^Version: //p')" != "$time_version" ]; then
    echo "making the client's venv $venv (mcp $mcp_version, mcp-server-time $time_version)"
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "mcp==$mcp_version" "mcp-server-time==$time_version"
fi

echo "starting the sandbox $sandbox (template mcp-servers, --network none)"
as_user mkdir -p "$ws"
as_user "$airlock" rm -f "$sandbox" >/dev/null 2>&1 || true
as_user "$airlock" create shell "$ws" --name "$sandbox" --template mcp-servers --network none >/dev/null
as_user "$airlock" run -d shell "$ws" --name "$sandbox" >/dev/null

port=""
for candidate in $(seq 18831 18840); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then port=$candidate; break; fi
done
[ -n "$port" ] || { echo "no free port in 18831-18840" >&2; exit 1; }
AIRLOCK_MCP_TOKEN="bench-$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
export AIRLOCK_MCP_TOKEN

quoted() { printf '%q ' "$@"; }
user_cmd() { quoted runuser -u "$user" -- env HOME="$home" AIRLOCK_HOME="$state" "$airlock" "$@"; }
host_server="$(quoted "$venv/bin/mcp-server-time" --local-timezone UTC)"
sandbox_server="$(user_cmd exec -i "$sandbox" -- mcp-server-time --local-timezone UTC)"
gateway="$(user_cmd mcp gateway run --servers time --long-lived)"
gateway_http="$(user_cmd mcp gateway run --servers time --long-lived --transport streaming --port "$port")"
gateway_logged="$(user_cmd mcp gateway run --servers time --long-lived --log-calls)"

leftovers() { as_user "$airlock" ls -q | grep -c '^mcp-time-' || true; } # the gateways' server sandboxes
before=$(leftovers)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo
echo "$rounds rounds; free memory $(free -m | awk '/^Mem:/ { print $7 }') MiB; load $load_before"
(cd "$home" && "$venv/bin/python" "$here/bench/gateway_bench.py" --rounds "$rounds" \
    --calls "${BENCH_CALLS:-1000}" --warmup 50 --clients "${BENCH_CLIENTS:-100}" \
    --per-client "${BENCH_PER_CLIENT:-20}" --port "$port" --stderr-dir "$work" --json "$work/result.json" \
    --stdio "direct, host=$host_server" \
    --stdio "direct, sandbox=$sandbox_server" \
    --stdio "gateway, stdio=$gateway" \
    --http "gateway, HTTP=$gateway_http" \
    --fanout "direct, host x N=$host_server" \
    --fanout "direct, sandbox x N=$sandbox_server" \
    --raw "raw: direct, sandbox=$sandbox_server" \
    --raw "raw: gateway, stdio=$gateway" \
    --raw "raw: gateway --log-calls=$gateway_logged" --call-log "raw: gateway --log-calls" \
    --raw-http "raw: gateway, HTTP=gateway, HTTP" --raw-baseline "raw: direct, sandbox" \
    --headline-direct "direct, sandbox" --headline-gateway "gateway, stdio" --headline-gateway "gateway, HTTP")
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

after=$(leftovers)
[ "$after" -le "$before" ] ||
    echo "warning: $((after - before)) more mcp-time-* sandboxes in 'airlock ls' than before the gateways ran" >&2

echo
echo "settings"
echo "  tools/call get_current_time {\"timezone\": \"UTC\"}; the client is the Python mcp SDK $mcp_version"
echo "  (ClientSession over stdio_client / streamable_http_client), one asyncio process for all clients"
echo "  server: mcp-server-time $time_version (--local-timezone UTC), image mcp-servers $digest"
echo "  host python $("$venv/bin/python" -V 2>&1 | cut -d' ' -f2); airlock $("$airlock" --version 2>&1) ($airlock), runs as $user (rootless)"
echo "  concurrent rows: the stdio paths multiplex the calls over one session (one server process);"
echo "  HTTP opens a session (and HTTP client) per client against one gateway; 'x N' rows start a server each"
echo "  $(nproc) cores; load average before $load_before, after $load_after"
echo "  commands, samples (result.json) and stderr of every server and gateway: $work"
