#!/bin/bash
# End-to-end tests of a sandbox's proxy under load and stalls, loopback only, as an ordinary
# user: 1000 requests at once all answered; 1100 slow-header (slowloris) connections while
# normal requests keep being answered in under a second; a stalled head, a stalled body, an
# idle kept-alive connection and an idle relayed connection each closed at its timeout; past
# connections.max the newest are refused with a 503 and one log line. The load client runs
# inside the sandbox (tests/e2e/proxy_load.py), the upstream on the host's loopback. Then the
# network log at 100k lines, and a build killed with SIGKILL: nothing may be left behind.
# Prints "N passed, N failed".
set -uo pipefail
AIRLOCK="${AIRLOCK:-airlock}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

work="$(mktemp -d /var/tmp/airlock-load.XXXXXX)"
export AIRLOCK_HOME="$HOME/.airlock-e2e"
ws="$work/project"
mkdir -p "$ws"
name="load"
upstream_pid=""
cleanup() {
    a rm -f "$name" >/dev/null 2>&1
    [ -n "$upstream_pid" ] && kill "$upstream_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

port=18380
cp "$here/proxy_load.py" "$ws/"
python3 "$here/proxy_load.py" serve "$port" > "$work/upstream.out" 2>&1 &
upstream_pid=$!
for _ in $(seq 50); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break; sleep 0.1; done
url="http://127.0.0.1:$port/small"
a create --name "$name" --allow-cidr 127.0.0.1/32 shell "$ws" >/dev/null
# A network log of 100k lines (30 MB), as months of use left one before logs were rotated.
log_file="$AIRLOCK_HOME/sandboxes/$name/network.log"
python3 - "$log_file" <<'EOF'
import json, sys
entry = {"address": "127.0.0.1", "bytesIn": 0, "bytesOut": 65, "decision": "allow", "durationMs": 3.2,
         "host": "old.example", "method": "GET", "path": "/a/longer/path?with=a&query=string", "port": 80,
         "rule": "allow-cidr 127.0.0.1/32", "sandbox": "load", "scheme": "http", "time": "2026-01-01T00:00:00.000Z",
         "via": "proxy"}
with open(sys.argv[1], "w") as log:
    for index in range(100000):
        entry["bytesIn"] = index
        log.write(json.dumps(entry, separators=(",", ":"), sort_keys=True) + "\n")
EOF
echo "== the network log: the last lines of 100k, read from the end"
started=$(date +%s%N)
last="$(a network log "$name" --limit 5 --json)"
echo "      network log --limit 5 on 100000 lines took $(( ($(date +%s%N) - started) / 1000000 )) ms"
expect "--limit 5 gives the last five lines, in order" "99995 99996 99997 99998 99999" \
    "$(python3 -c "import json,sys; print(*[json.loads(l)['bytesIn'] for l in sys.stdin])" <<<"$last")"
a run -d shell "$ws" --name "$name" >/dev/null
# The workspace is at its own path inside.
inside() { a exec "$name" -- python3 "$ws/proxy_load.py" "$@"; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1]).get('$2'))" "$1"; }

echo "== the proxy shows its limits"
inspect="$(a inspect "$name")"
expect_match "inspect shows connections.max (default 2048)" '"max" : 2048' "$inspect"
expect_match "inspect shows the header timeout (30s)" '"headerTimeout" : "30s"' "$inspect"

echo "== 1000 requests at once, each on its own connection"
result="$(inside burst 1000 "$url")"
expect "all 1000 succeed" "1000" "$(field "$result" succeeded)"
[ "$(field "$result" succeeded)" = 1000 ] || echo "      $result"

echo "== 1100 slowloris connections beside normal requests"
result="$(inside slowloris 1100 8 "$url")"
echo "      $result"
expect "the 1100 slow connections were all opened" "1100" "$(field "$result" slow_connections)"
expect "and still open after 8 s (the header timeout is 30 s)" "1100" "$(field "$result" still_open)"
expect "no normal request failed meanwhile" "0" "$(field "$result" normal_failed)"
slowest="$(field "$result" normal_max_s)"
if python3 -c "import sys; sys.exit(0 if 0 < float(sys.argv[1]) < 1 else 1)" "$slowest"; then
    pass "every normal request answered in under 1 s (slowest ${slowest} s)"
else
    fail "every normal request answered in under 1 s" "slowest: $slowest"
fi

echo "== stalls are closed at their timeouts"
a network policy "$name" --connection-limit headerTimeout=2s --connection-limit bodyTimeout=3s \
    --connection-limit idleTimeout=4s --connection-limit tunnelIdleTimeout=6s >/dev/null
expect_match "network policy --show lists them" 'header 2s, body 3s, idle 4s, tunnel idle 6s' \
    "$(a network policy "$name" --show)"
within() { # LABEL RESULT LOW HIGH FIRST_LINE_PATTERN
    local took first
    took="$(field "$2" closed_after_s)"
    first="$(field "$2" first_line)"
    if python3 -c "import sys; sys.exit(0 if $3 <= float(sys.argv[1]) <= $4 else 1)" "$took" \
        && [[ "$first" =~ $5 ]]; then
        pass "$1 (after $took s: $first)"
    else
        fail "$1" "closed after $took s, want $3..$4; first line [$first], want /$5/"
    fi
}
stalls=()
for kind in head body idle tunnel pipelined headfirst; do
    inside stall "$kind" "$url" > "$work/$kind" &
    stalls+=($!)
done
wait "${stalls[@]}"
within "a request head stalled: 408 at headerTimeout (2 s)" "$(cat "$work/head")" 1.8 4 '408 Request Timeout'
within "a request body stalled: 408 at bodyTimeout (3 s)" "$(cat "$work/body")" 2.8 5 '408 Request Timeout'
within "an idle kept-alive connection: closed at idleTimeout (4 s)" "$(cat "$work/idle")" 3.8 6 '200 OK'
within "an idle relayed connection (after a 101): closed at tunnelIdleTimeout (6 s)" "$(cat "$work/tunnel")" \
    5.8 8.5 '101 Switching'
within "a head whose first bytes came with the request before it: 408 at headerTimeout" \
    "$(cat "$work/pipelined")" 1.5 4 '200 OK'
expect_match "  the 408 comes after the first answer" "200 OK.*408 Request Timeout" \
    "$(field "$(cat "$work/pipelined")" statuses)"
headfirst="$(cat "$work/headfirst")"
expect "a long-poll whose head came at once gets its body 5 s later (past idleTimeout, within tunnelIdleTimeout)" \
    "0123456789" "$(field "$headfirst" body)"
log="$(a network log "$name" --json)"
expect_match "the stalled body is an error in the log, with its reason" \
    '"decision":"error".*"reason":"The request body stopped for 3s' "$log"

echo "== past connections.max, the newest connections are refused"
a network policy "$name" --connection-limit max=50 --connection-limit headerTimeout=30s >/dev/null
result="$(inside slowloris 60 2 "$url")"
echo "      $result"
expect "50 slow connections hold the cap; the rest were refused" "50" "$(field "$result" still_open)"
expect_match "a request past the cap gets 503 naming connections.max" \
    '503 Service Unavailable' "$(field "$result" failures)"
expect_match "the refusal is in the network log" \
    '"method":"LIMIT".*connection\(s\) refused since the last such line: the sandbox has 50 open \(connections.max\)' \
    "$(a network log "$name" --json)"
result="$(inside burst 20 "$url")"
expect "companion: once they close, requests go through again" "20" "$(field "$result" succeeded)"
a network policy "$name" --connection-limit max=0 >/dev/null 2>"$work/err"
expect "max=0 is refused with exit 64" "64" "$?"
expect_match "with one line" "connections.max must be at least 1" "$(cat "$work/err")"

echo "== the network log stays bounded"
echo "      files and sizes: $(stat -c '%n %s' "$log_file"* | xargs -n2 sh -c 'printf "%s=%s " "$(basename "$0")" "$1"')"
expect "the 30 MB log was rotated away at the first new line (network.log.1)" "yes" \
    "$([ -e "$log_file.1" ] && echo yes)"
expect "the current file is under its 8 MiB bound" "yes" "$([ "$(stat -c %s "$log_file")" -lt 8388608 ] && echo yes)"
expect "at most three older files are kept" "yes" "$([ "$(ls "$log_file".* | wc -l)" -le 3 ] && echo yes)"
expect_match "network log reads across the rotation: the old entries, then the new ones" \
    '"host":"old.example".*"host":"127.0.0.1"' "$(a network log "$name" --json | sed -n '99999,100001p' | tr -d '\n')"

echo "== kill -9 of the CLI during an image build leaves nothing behind"
a rm -f "$name" >/dev/null 2>&1
templates="${XDG_CONFIG_HOME:-$HOME/.config}/airlock/templates"
mkdir -p "$templates"
template="killed-build-$$"
# A recipe of its own (a new digest): this build is never one that is already made.
printf 'name: %s\npackages: []\nuser: {name: agent, sudo: false}\nsteps:\n  - echo %s > /etc/marker\n' \
    "$template" "$(rand 8)" > "$templates/$template.yaml"
subuid_start="$(awk -F: -v u="$(id -un)" '$1 == u { print $2 }' /etc/subuid)"
subuid_count="$(awk -F: -v u="$(id -un)" '$1 == u { print $3 }' /etc/subuid)"
scratch="${TMPDIR:-/tmp}/airlock-builds-$(id -u)"
# What a subordinate id owns in /tmp before the build is not this build's (an earlier version's
# run may have left trees); dates cannot tell, as unpacked files keep their packages' times.
find /tmp -maxdepth 1 -uid "$subuid_start" > "$work/preexisting" 2>/dev/null
subuid_files() { # DEPTH: what a subordinate id owns in the scratch space and /tmp, earlier trees aside
    find "$scratch" /tmp -maxdepth "$1" -uid "$subuid_start" 2>/dev/null | grep -v -F -f "$work/preexisting" | head -3
}
"$AIRLOCK" template build "$template" > "$work/build.out" 2>&1 &
build_pid=$!
for _ in $(seq 600); do grep -q "extracting archives\|installing\|customize" "$work/build.out" && break; sleep 0.1; done
ours() { # the build's processes by uid (the user's and its subordinate ids'), the dead aside
    ps -eo uid=,pid=,stat=,args= | awk -v me="$(id -u)" -v lo="$subuid_start" -v n="$subuid_count" \
        '($1 == me || ($1 >= lo && $1 < lo + n)) && $3 !~ /^Z/ && $0 ~ /mmdebstrap|apt|dpkg|tar |sh -c/ && $0 !~ /awk|ps -eo/'
}
sleep 1
expect_match "companion: the probe sees the build's processes while it runs" "mmdebstrap" "$(ours)"
kill -9 "$build_pid"
wait "$build_pid" 2>/dev/null
sleep 1
expect_match "the build was under way when it was killed" "extracting archives|installing|customize" \
    "$(cat "$work/build.out")"
expect "no process of the build is left (by uid: the user's and its subordinate ids')" "" "$(ours)"
left="$(subuid_files 2)"
expect_match "companion: the probe finds the tree the killed build left for the next command" "mmdebstrap\." "$left"
doctor="$(a doctor 2>&1)"
expect_match "the next command (doctor) sweeps it and says so" "build leftovers: removed" "$doctor"
expect "no file owned by a subordinate id is left in the scratch space or /tmp" "" \
    "$(subuid_files 3)"
expect "no tarball or partial image is left in the image store" "" \
    "$(ls -A "$AIRLOCK_HOME/images" | grep -E '^\.(build|partial|removing)-' | head -3)"
expect_match "companion: a second doctor finds nothing" "build leftovers: none" "$(a doctor 2>&1)"
rm -f "$templates/$template.yaml"

report
