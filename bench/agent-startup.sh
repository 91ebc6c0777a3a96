#!/bin/bash
# Agent start-up as a user sees it: the time from typing the command to Claude Code's first
# request reaching the Anthropic API, on an image that is already built, side by side:
#
#   airlock new      airlock run claude WS --name bench-claude-N ... -- -p hi
#                    (a new sandbox every run: create + start + exec, as on a new project)
#   airlock stopped  airlock run claude WS --name bench-claude-stopped -- -p hi
#                    (the sandbox exists but was stopped: start + exec)
#   airlock running  airlock run claude WS --name bench-claude-running -- -p hi
#                    (the sandbox exists and runs, as after an earlier `airlock run`: exec)
#   docker           docker run --rm --network host ... IMAGE claude ... -p hi
#
# IMAGE is Airlock's own image of the claude template, imported into docker with its ids
# shifted back out of the user namespace, so both run the very same files. Each side runs
# what it gives a user by default: Airlock rootless, as an ordinary user, Claude Code going
# out through the sandbox's proxy, which holds the key and injects it (the sandbox sees only
# airlock-proxy-managed); docker as root through its daemon, with host networking, no proxy
# and the key in the container's environment, Claude Code talking to the API directly.
#
# The API is a fake on 127.0.0.3:443 (bench/first_request.py, which also does the timing):
# api.anthropic.com resolves to it (--add-host on both sides), its certificate comes from a
# throwaway CA (tests/e2e/certs.sh) that Airlock's proxy trusts through
# AIRLOCK_UPSTREAM_CA_FILE and docker's Claude Code through NODE_EXTRA_CA_CERTS. It answers
# /v1/messages with a streamed "ok", so `claude -p hi` prints ok and exits. All traffic stays
# on loopback.
#
# Timed per run, from just before the command is spawned: to the first request of any kind
# arriving at the fake (Claude Code's first are GETs of its organization's settings and policy
# limits, not the prompt; in docker a HEAD /api/hello that warms the connection comes before
# them, which Claude Code skips behind a proxy), to the first request but that HEAD, to the
# first POST /v1/messages, and to the command's exit. Peers are interleaved (airlock new,
# stopped, running, docker, airlock new, ...), one untimed warm-up run each first, a pause
# after every run; a sandbox made by a run is removed after it, untimed. Then a breakdown of
# a new sandbox's `airlock run` into its parts, each its own command (template check, create,
# start, exec, Claude Code), next to docker's plain container start.
#
# Usage (as root): sudo bash bench/agent-startup.sh
#   BENCH_RUNS runs per peer (default 10), BENCH_PAUSE seconds between runs (default 1),
#   BENCH_BREAKDOWN=0 skips the breakdown, BENCH_USER the Airlock user, AIRLOCK the binary.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
runs="${BENCH_RUNS:-10}"
pause="${BENCH_PAUSE:-1}"
why="docker, the fake API on port 443 and the benchmark user need it"
. "$here/bench/lib.sh"
template=claude
image="airlock-claude:bench"
fake_ip=127.0.0.3
ws="$home/bench-agent-startup"
prefix=bench-claude

work="$(mktemp -d /tmp/airlock-bench-agent-startup.XXXXXX)"
chmod 755 "$work" # the benchmark user reads the test CA here
sandboxes() { as_user "$airlock" ls -q 2>/dev/null | grep -E "^($prefix|bench-step)-" || true; }
cleanup() {
    for name in $(sandboxes); do as_user "$airlock" rm -f "$name" >/dev/null 2>&1 || true; done
    stop_dockerd
}
trap cleanup EXIT

if ss -Hltn "src $fake_ip:443" 2>/dev/null | grep -q .; then
    echo "something already listens on $fake_ip:443 (another run of this benchmark?)" >&2
    exit 1
fi

start_dockerd "$work"

# ArgumentParser's self-checks are compiled in debug builds only; they cost each `airlock run`
# and `create` about 0.1 s of parsing, and the proxy is unoptimised code too.
build_kind="release"
if [ "$(nm "$airlock" 2>/dev/null | grep -c NonsenseFlagsValidator)" -gt 0 ]; then
    build_kind="DEBUG"
    echo "warning: $airlock is a debug build: its numbers are not a release's (scripts/install.sh, or AIRLOCK=...)" >&2
fi

import_template "$template" "$image" "$work"
agent_home=$(awk -F: '$3 == 1000 { print $6 }' "$rootfs/etc/passwd")
agent_name=$(awk -F: '$3 == 1000 { print $1 }' "$rootfs/etc/passwd")
[ -n "$agent_home" ] || { echo "the image has no user 1000 (the agent)" >&2; exit 1; }

"$here/tests/e2e/certs.sh" "$work" "DNS:api.anthropic.com"
chmod 644 "$work/ca.pem"

# The workspace: the same small project on both sides, at the same path. Docker's copy
# belongs to the agent's uid, as the sandbox's does (the user is 1000 inside).
for name in $(sandboxes); do as_user "$airlock" rm -f "$name" >/dev/null; done
rm -rf "$ws" && as_user mkdir -p "$ws"
printf '# bench\n\nA workspace for bench/agent-startup.sh.\n' | as_user tee "$ws/README.md" >/dev/null
docker_ws="$work/docker-ws"
cp -a "$ws" "$docker_ws" && chown -R 1000:1000 "$docker_ws"

export ANTHROPIC_API_KEY="sk-ant-bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
a="AIRLOCK_HOME=$state AIRLOCK_UPSTREAM_CA_FILE=$work/ca.pem $airlock"
net="--add-host api.anthropic.com:$fake_ip --allow-cidr $fake_ip/32"
claude_args="-- -p hi"
docker_cmd="docker run --rm --network host --add-host api.anthropic.com:$fake_ip --user 1000:1000 \
-e HOME=$agent_home -e USER=$agent_name -e LANG=C.UTF-8 -e ANTHROPIC_API_KEY \
-e NODE_EXTRA_CA_CERTS=/etc/bench-ca.pem -v $work/ca.pem:/etc/bench-ca.pem:ro -v $docker_ws:$ws -w $ws \
$image claude --dangerously-skip-permissions -p hi"

# The sandboxes that exist before their runs: created and started once, untimed.
as_user env AIRLOCK_UPSTREAM_CA_FILE="$work/ca.pem" "$airlock" create claude "$ws" --name "$prefix-stopped" $net >/dev/null
as_user env AIRLOCK_UPSTREAM_CA_FILE="$work/ca.pem" "$airlock" run -d claude "$ws" --name "$prefix-running" $net >/dev/null

load_start=$(cut -d' ' -f1 /proc/loadavg)
echo
echo "$runs runs each, interleaved, ${pause}s pause after every run; fake API on https://$fake_ip:443 (load $load_start)"
python3 "$here/bench/first_request.py" "$runs" --listen "$fake_ip:443" --cert "$work/server.pem" \
    --key "$work/server.key" --pause "$pause" --out-dir "$work" --log "$work/requests.jsonl" \
    --agent "airlock new@$user=$a run claude $ws --name $prefix-{i} $net $claude_args" \
    --teardown "airlock new=$a rm -f $prefix-{i}" \
    --agent "airlock stopped@$user=$a run claude $ws --name $prefix-stopped $claude_args" \
    --setup "airlock stopped=$a stop $prefix-stopped" \
    --agent "airlock running@$user=$a run claude $ws --name $prefix-running $claude_args" \
    --agent "docker=$docker_cmd" \
    >"$work/result.json"

if [ "${BENCH_BREAKDOWN:-1}" != 0 ]; then
    logs="$work/logs" # the sandboxes' supervisor logs, which time the start's parts
    mkdir -p "$logs" && chown "$user" "$logs"
    echo
    echo "breakdown of a new sandbox's airlock run, $runs runs, in order within each run"
    python3 "$here/bench/first_request.py" "$runs" --listen "$fake_ip:443" --cert "$work/server.pem" \
        --key "$work/server.key" --pause "$pause" --out-dir "$work" --log "$work/requests.jsonl" \
        --step "airlock --version@$user=$a --version" \
        --step "template build (cached)@$user=$a template build $template" \
        --step "create@$user=$a create claude $ws --name bench-step-{i} $net" \
        --step "start (run -d)@$user=$a run -d claude $ws --name bench-step-{i}" \
        --step "exec true@$user=$a exec bench-step-{i} -- true" \
        --agent "exec claude@$user=$a exec bench-step-{i} -- claude --dangerously-skip-permissions -p hi" \
        --teardown "exec claude=cat $state/sandboxes/bench-step-{i}/supervisor.log >>$logs/supervisor.log; $a rm -f bench-step-{i}" \
        --step "docker run true=${docker_cmd% claude *} true" \
        >"$work/breakdown.json"
fi

for name in $(sandboxes); do as_user "$airlock" rm -f "$name" >/dev/null; done

docker_server=$(docker version -f '{{.Server.Version}}')
storage=$(docker info -f '{{.Driver}}')
claude_version=$(docker run --rm --network none --user 1000:1000 -e HOME="$agent_home" "$image" claude --version 2>/dev/null || echo "?")
python3 - "$work/result.json" "$work/breakdown.json" <<PY
import json, os, sys
r = json.load(open(sys.argv[1]))
peers = r["peers"]

def ms(p, kind, name):
    return p[kind + "_ms"].get(name, float("nan"))

print()
print("time to Claude Code's first request at the API (ms), and to its exit")
print(f"{'peer':<18}{'first req':>10}{'p90':>8}{'first call':>11}{'p90':>8}{'messages':>10}{'p90':>8}{'exit':>9}{'p90':>8}"
      f"{'ok':>7}{'key':>7}")
for label, p in peers.items():
    print(f"{label:<18}{ms(p, 'median', 'first_request_ms'):>10.0f}{ms(p, 'p90', 'first_request_ms'):>8.0f}"
          f"{ms(p, 'median', 'first_call_ms'):>11.0f}{ms(p, 'p90', 'first_call_ms'):>8.0f}"
          f"{ms(p, 'median', 'first_messages_ms'):>10.0f}{ms(p, 'p90', 'first_messages_ms'):>8.0f}"
          f"{ms(p, 'median', 'wall_ms'):>9.0f}{ms(p, 'p90', 'wall_ms'):>8.0f}"
          f"{str(p['ok_count']) + '/' + str(r['runs']):>7}{str(p['key_ok_count']) + '/' + str(r['runs']):>7}")
print("(medians and p90s; first req = any request; first call = the first but a HEAD /api/hello, which Claude Code")
print(" sends to warm the connection only without a proxy, i.e. in docker; messages = the first POST /v1/messages;")
print(" exit = the command's; ok = runs that printed the fake's reply; key = runs whose /v1/messages carried the")
print(" real key: Airlock's proxy put it in place of the sentinel, docker passed it in the environment)")
print()
d = peers["docker"]
for label in [l for l in peers if l != "docker"]:
    for name, what in (("first_request_ms", "first request"), ("first_call_ms", "first call"), ("wall_ms", "exit")):
        a, b = peers[label]["median_ms"][name], d["median_ms"][name]
        print(f"{'docker / ' + label + ', ' + what + ':':<42}{b:7.0f} / {a:7.0f} ms = {b / a:5.2f}")
if os.path.exists(sys.argv[2]):
    b = json.load(open(sys.argv[2]))
    print()
    import re, statistics
    parts = [tuple(map(float, m.groups())) for m in re.finditer(
        r"running \(user namespace ([0-9.]+) ms, init and container ([0-9.]+) ms\)",
        open("$work/logs/supervisor.log").read())] if os.path.exists("$work/logs/supervisor.log") else []
    print("breakdown (ms; median, p90)")
    for label, p in b["peers"].items():
        name = "first_request_ms" if p["kind"] == "agent" else "wall_ms"
        extra = (f"   (exit {p['median_ms']['wall_ms']:.0f}, first POST /v1/messages "
                 f"{p['median_ms'].get('first_messages_ms', float('nan')):.0f})") if p["kind"] == "agent" else ""
        what = "to first request" if p["kind"] == "agent" else "to exit"
        print(f"  {label:<26}{p['median_ms'][name]:>7.0f}{p['p90_ms'][name]:>7.0f}  {what}{extra}")
        if label.startswith("start") and parts:
            print(f"  {'  user namespace':<26}{statistics.median(p[0] for p in parts):>7.0f}"
                  f"{'':>7}  (of start: the supervisor's own timing, from its log, n={len(parts)} with warm-up)")
            print(f"  {'  init and container':<26}{statistics.median(p[1] for p in parts):>7.0f}"
                  f"{'':>7}  (of start: sandbox init, network namespace, egress listeners, runc run)")
print()
print("settings")
print(f"  runs {r['runs']} per peer, interleaved, {r['warmup']} untimed warm-up run each, {r['pause_s']} s pause after every run")
for label, p in peers.items():
    print(f"  {label} (as {p['user']}): {p['command']}")
    for part in ("setup", "teardown"):
        if p[part]:
            print(f"      {part}, untimed: {p[part]}")
    print(f"      first requests seen: {', '.join(p['first_paths'])}; requests per run {min(p['requests_per_run'])}..{max(p['requests_per_run'])}")
print("  airlock $airlock ($build_kind build), template $template, image $digest, Claude Code $claude_version")
print("  docker image $image: tar of that rootfs (ids shifted out of the user namespace) | docker import")
print("  docker server $docker_server, storage driver $storage, started by "
      + ("this script (dockerd, default flags)" if "$dockerd_pid" else "someone else"))
print(f"  {os.cpu_count()} CPUs, load average $load_start at the start, {os.getloadavg()[0]:.2f} at the end "
      "(Claude Code's start-up is CPU-bound: other work on the machine shows in every peer)")
print("  airlock runs as $user (rootless, through its proxy); docker as root (daemon, host network, no proxy)")
print("  requests, outputs and JSON results: $work")
PY
