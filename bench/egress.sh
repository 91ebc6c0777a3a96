#!/bin/bash
# Egress throughput and latency, side by side on this machine, against one HTTPS upstream on
# host loopback (tests/e2e/upstream.py):
#   direct    curl / the latency client on the host, no proxy
#   tinyproxy the same through Debian's tinyproxy (CONNECT), on the host
#   airlock   the same inside an Airlock sandbox, through its proxy (CONNECT tunnel, on the
#             proxy's event loop), through the same tunnel spliced in the kernel
#             (AIRLOCK_SPLICE=1, a second sandbox), and through the credential-injection path
#             (TLS terminated, key added)
# Throughput: a 1 GiB download, median of RUNS. Latency: p50/p99 of N small requests, each on
# a new connection (CONNECT + TLS handshake + GET), median of the per-run percentiles.
#
# Usage (as root): bench/egress.sh [RUNS] [N]   (BENCH_USER picks the Airlock user)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-5}"
requests="${2:-1000}"
why="tinyproxy and the benchmark user need it"
. "$here/bench/lib.sh"
command -v tinyproxy >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q tinyproxy >/dev/null
command -v curl >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q curl >/dev/null

work="$(mktemp -d /tmp/airlock-bench-egress.XXXXXX)"
chmod 755 "$work"
ws="$home/bench-egress"
pids=()
cleanup() {
    as_user "$airlock" rm -f bench-egress >/dev/null 2>&1 || true
    as_user "$airlock" rm -f bench-egress-splice >/dev/null 2>&1 || true
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

"$here/tests/e2e/certs.sh" "$work" "IP:127.0.0.1,DNS:api.anthropic.com"
chmod 644 "$work"/*

python3 "$here/tests/e2e/upstream.py" --https "19443:$work/server.pem:$work/server.key" >"$work/upstream.log" 2>&1 &
pids+=($!)
cat > "$work/tinyproxy.conf" <<EOF
Port 18888
Listen 127.0.0.1
Allow 127.0.0.1
ConnectPort 19443
MaxClients 200
LogLevel Critical
EOF
tinyproxy -d -c "$work/tinyproxy.conf" >/dev/null 2>&1 &
pids+=($!)
sleep 1

as_user mkdir -p "$ws"
install -m 644 "$work/ca.pem" "$ws/bench-ca.pem"
install -m 644 "$here/bench/https_latency.py" "$ws/https_latency.py"
chown "$user:" "$ws"/*
as_user "$airlock" rm -f bench-egress >/dev/null 2>&1 || true
as_user env ANTHROPIC_API_KEY=sk-bench-real "$airlock" create shell "$ws" --name bench-egress \
    --allow-cidr 127.0.0.1/32 --add-host api.anthropic.com:127.0.0.1 >/dev/null
as_user env AIRLOCK_UPSTREAM_CA_FILE="$work/ca.pem" "$airlock" run -d shell "$ws" --name bench-egress >/dev/null
as_user "$airlock" rm -f bench-egress-splice >/dev/null 2>&1 || true
as_user env AIRLOCK_SPLICE=1 "$airlock" run -d shell "$ws" --name bench-egress-splice \
    --allow-cidr 127.0.0.1/32 >/dev/null
inside() { as_user "$airlock" exec bench-egress -- bash -c "$1"; }
spliced() { as_user "$airlock" exec bench-egress-splice -- bash -c "$1"; }

gib=1073741824
blob="https://127.0.0.1:19443/bytes?n=$gib"
curl_speed='-s -o /dev/null -w %{speed_download}'
through_airlock="--noproxy '' -x http://127.0.0.1:3128"
declare -A throughput
echo "1 GiB HTTPS download, $runs runs each, interleaved (MB/s)"
for run in $(seq "$runs"); do
    throughput[direct]+="$(curl $curl_speed --cacert "$work/ca.pem" "$blob") "
    throughput[tinyproxy]+="$(curl $curl_speed --cacert "$work/ca.pem" -x http://127.0.0.1:18888 "$blob") "
    throughput[airlock]+="$(inside "curl $curl_speed --cacert bench-ca.pem $through_airlock '$blob'") "
    throughput[splice]+="$(spliced "curl $curl_speed --cacert bench-ca.pem $through_airlock '$blob'") "
    throughput[injection]+="$(inside "curl $curl_speed $through_airlock -H \"x-api-key: \$ANTHROPIC_API_KEY\" 'https://api.anthropic.com:19443/bytes?n=$gib'") "
    echo "  run $run done"
done

declare -A latency
echo "latency of $requests small HTTPS requests, each on a new connection, $runs runs (p50 p99 ms)"
small="https://127.0.0.1:19443/small"
for run in $(seq "$runs"); do
    latency[direct]+="$(python3 "$here/bench/https_latency.py" "$requests" "$small" --cafile "$work/ca.pem");"
    latency[tinyproxy]+="$(python3 "$here/bench/https_latency.py" "$requests" "$small" --cafile "$work/ca.pem" \
        --proxy 127.0.0.1:18888);"
    latency[airlock]+="$(inside "python3 https_latency.py $requests $small --cafile bench-ca.pem --proxy 127.0.0.1:3128");"
    latency[splice]+="$(spliced "python3 https_latency.py $requests $small --cafile bench-ca.pem --proxy 127.0.0.1:3128");"
    latency[injection]+="$(inside "python3 https_latency.py $requests https://api.anthropic.com:19443/small \
        --proxy 127.0.0.1:3128 --header \"x-api-key:\$ANTHROPIC_API_KEY\"");"
done

python3 - "${throughput[direct]}" "${throughput[tinyproxy]}" "${throughput[airlock]}" "${throughput[splice]}" \
    "${throughput[injection]}" "${latency[direct]}" "${latency[tinyproxy]}" "${latency[airlock]}" \
    "${latency[splice]}" "${latency[injection]}" <<'PY'
import statistics, sys
names = ["direct", "tinyproxy", "airlock tunnel", "  spliced", "airlock injection"]
speeds = [statistics.median(float(v) / 1e6 for v in arg.split()) for arg in sys.argv[1:6]]
lat = []
for arg in sys.argv[6:11]:
    pairs = [tuple(map(float, p.split())) for p in arg.split(";") if p.strip()]
    lat.append((statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)))
print()
print(f"{'path':<20}{'MB/s':>10}{'x direct':>10}{'p50 ms':>10}{'p99 ms':>10}{'+p50 ms':>10}")
for name, speed, (p50, p99) in zip(names, speeds, lat):
    print(f"{name:<20}{speed:>10.0f}{speed / speeds[0]:>10.2f}{p50:>10.3f}{p99:>10.3f}{p50 - lat[0][0]:>10.3f}")
print()
print(f"airlock tunnel / tinyproxy throughput: {speeds[2] / speeds[1]:.2f}x")
print(f"airlock tunnel, spliced / on the event loop: {speeds[3] / speeds[2]:.2f}x throughput, "
      f"{lat[3][0] - lat[2][0]:+.3f} ms p50")
PY
