#!/bin/bash
# End-to-end tests of a malformed network policy file (the user's policy.yaml): `create` and
# `run` refuse with one line that names the file and the YAML error and make nothing; a
# running sandbox whose file breaks refuses every request and says why in its network log; a
# valid file is used again at once. Runs as an ordinary user, in the suites' shared state store,
# against a test upstream on host loopback (tests/e2e/upstream.py). The user's policy file is
# put back as it was. The organisation's file (/etc/airlock/policy.yaml) has no override a test
# could point elsewhere: its unit test (PolicyStoreTests) covers it with the same code.
# Prints "N passed, N failed".
set -uo pipefail
AIRLOCK="${AIRLOCK:-airlock}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

work="$(mktemp -d /var/tmp/airlock-policy-errors.XXXXXX)"
# The shared state store of the ordinary-user suites: the shell image is built once.
export AIRLOCK_HOME="$HOME/.airlock-e2e"
ws="$work/project"
fresh="$work/fresh"
mkdir -p "$ws" "$fresh"
name="policy-errors"
policy="${XDG_CONFIG_HOME:-$HOME/.config}/airlock/policy.yaml"
saved=""
[ -e "$policy" ] && saved="$work/policy.yaml.saved" && cp -p "$policy" "$saved"
upstream_pid=""
cleanup() {
    a rm -f "$name" >/dev/null 2>&1
    [ -n "$upstream_pid" ] && kill "$upstream_pid" 2>/dev/null
    if [ -n "$saved" ]; then cp -p "$saved" "$policy"; else rm -f "$policy"; fi
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$(dirname "$policy")"
broken() { printf 'preset: [bad\n' > "$policy"; }
valid() { printf 'blockHosts: [blocked.test]\n' > "$policy"; }

port=18280
python3 "$here/upstream.py" --http "$port" > "$work/upstream.out" 2>&1 &
upstream_pid=$!
for _ in $(seq 50); do grep -q ready "$work/upstream.out" 2>/dev/null && break; sleep 0.1; done
expect "the upstream is up" "ready" "$(cat "$work/upstream.out")"
flags=(--allow-host allowed.test --add-host allowed.test:127.0.0.1 --allow-cidr 127.0.0.1/32)

echo "== companion: with a valid policy file, run works"
valid
if a run --name "$name" "${flags[@]}" shell "$ws" -- -c true >/dev/null 2>"$work/run.err"; then
    pass "run ... -- -c true succeeds"
else
    fail "run ... -- -c true succeeds" "$(tail -n 3 "$work/run.err")"
fi
fetch() { a exec "$name" -- curl -s -o /dev/null -w '%{http_code}' "http://allowed.test:$port/"; }
expect "companion: an allowed request goes through" "200" "$(fetch)"
a stop "$name" >/dev/null

echo "== a broken file stops create and run before anything is made"
broken
check_error "create: one line naming the file" "policy error: $policy: line 2, column 1: did not find expected" \
    a create shell "$fresh"
a create shell "$fresh" >/dev/null 2>&1
expect "create exits 78 (a configuration file cannot be used)" "78" "$?"
check_error "run: the same line" "policy error: $policy: " a run shell "$fresh" -- -c true
a run shell "$fresh" -- -c true >/dev/null 2>&1
expect "run exits 125 (Airlock failed, not the command)" "125" "$?"
expect "no sandbox was made" "$name" "$(a ls -q | xargs)"
expect "no supervisor was started" "0" "$(pgrep -cf "_supervise --state $AIRLOCK_HOME " || true)"
check_error "run on the existing, stopped sandbox refuses too" "policy error: $policy: " \
    a run --name "$name" shell "$ws" -- -c true
expect "and leaves it stopped" "stopped" \
    "$(a inspect "$name" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')"
check_error "network policy: the same line" "policy error: $policy: " a network policy "$name"

echo "== a running sandbox whose file breaks refuses, and its log says why"
valid
a run -d --name "$name" shell "$ws" >/dev/null 2>&1
expect "companion: started with the valid file, the request goes through" "200" "$(fetch)"
broken
expect "with the file broken, the same request is refused" "403" "$(fetch)"
expect_match "the refusal says why" "Reason: policy error: $policy: line 2, column 1" \
    "$(a exec "$name" -- curl -s "http://allowed.test:$port/")"
save_network_log "$name" "$work/net.jsonl"
expect "--json: each refusal carries the reason" "True" \
    "$(net "len([x for x in e if x['decision'] == 'deny']) >= 2 and all(x['reason'].startswith('policy error: $policy: ') for x in e if x['decision'] == 'deny')")"
expect_match "the table shows it too" "deny +GET +http://allowed.test:$port/ .* policy error: $policy: line 2" \
    "$(a network log "$name" | tail -n 1)"
valid
expect "a valid file again is used at once" "200" "$(fetch)"

report
