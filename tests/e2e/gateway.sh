#!/bin/bash
# End-to-end tests of the MCP gateway, `airlock mcp gateway run` (README, "MCP gateway"), with
# the real MCP client: the `mcp` package from PyPI, in a venv, runs tests/e2e/gateway_client.py
# against the gateway over stdio, SSE and streamable HTTP, with the real PyPI servers time and
# git and with tests/e2e/gateway_test_server.py in sandboxes of different reach (a user
# catalog): the HTTP guards, isolation (no network, allowHosts, secrets), name clashes, the
# dynamic tools, a remote server (streamable HTTP on loopback, its header from its own secret),
# a server crash, and stopping the gateway every way with nothing left behind.
# This script adds `airlock mcp tools` and the command-line errors. Test upstreams (HTTP and
# DNS) run on host loopback; ports 18811-18830 only. Runs as an ordinary user. MCP_PIP_SPEC
# picks the client (default: the newest `mcp`). Prints "N passed, N failed"; exits non-zero on
# any failure.
set -uo pipefail
AIRLOCK="${AIRLOCK:-airlock}"
export AIRLOCK_HOME="${AIRLOCK_HOME:-$HOME/.airlock-e2e}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

work="$(mktemp -d /tmp/airlock-gateway.XXXXXX)"
mcp_spec="${MCP_PIP_SPEC:-mcp}"
run_id="$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
upstream_port=18821
dns_port=18822
https_port=18825
upstream_pid=""
secret_names=(srva.token srvb.token gwt-remote.token gwt-inject.key)
remote_token="remote-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# Sandboxes named like a gateway's servers before the test: not the test's to remove.
before=$(a ls -q 2>/dev/null | grep '^mcp-' | sort)
mcp_made_here() { comm -13 <(printf '%s\n' "$before") <(a ls -q 2>/dev/null | grep '^mcp-' | sort) | grep -v '^$'; }
cleanup() {
    local name
    # Only sandboxes a gateway of this test owned (the client writes their names down).
    for name in $(sort -u "$work/made.txt" 2>/dev/null); do a rm -f "$name" >/dev/null 2>&1; done
    [ -n "$upstream_pid" ] && kill "$upstream_pid" 2>/dev/null
    for name in "${secret_names[@]}"; do a mcp secret rm "$name" >/dev/null 2>&1; done
    rm -rf "$work"
}
trap cleanup EXIT

mcp_client_venv "$work" "$mcp_spec"

echo "== setup: a git repository, two secrets, test upstreams"
repo="$work/repo"
commit_subject="gateway e2e commit $run_id"
untracked="untracked-$run_id.txt"
mkdir -p "$repo" &&
    git -C "$repo" init -q -b main &&
    echo "hello" > "$repo/README.md" &&
    git -C "$repo" add README.md &&
    git -C "$repo" -c user.name="Airlock E2E" -c user.email=e2e@airlock.test commit -q -m "$commit_subject" &&
    echo "not yet added" > "$repo/$untracked"
expect "a test repository with one commit" "$commit_subject" "$(git -C "$repo" log -1 --format=%s 2>&1)"
echo v1 | a mcp secret set srva.token
echo v2 | a mcp secret set srvb.token
echo "$remote_token" | a mcp secret set gwt-remote.token
inject_key="inject-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
echo "$inject_key" | a mcp secret set gwt-inject.key
expect "airlock mcp secret set srva.token, srvb.token, gwt-remote.token, gwt-inject.key (values from stdin)" \
    "gwt-inject.key gwt-remote.token srva.token srvb.token" \
    "$(a mcp secret ls | grep -E '^(srv[ab]\.token|gwt-remote\.token|gwt-inject\.key)$' | sort | xargs)"
"$here/certs.sh" "$work" "DNS:allowed.test,DNS:other.test"
export AIRLOCK_UPSTREAM_CA_FILE="$work/ca.pem"
python3 "$here/upstream.py" --http "$upstream_port" --https "$https_port:$work/server.pem:$work/server.key" \
    --dns "$dns_port" --dns-log "$work/dns.log" \
    > "$work/upstream.out" 2>&1 &
upstream_pid=$!
for _ in $(seq 50); do grep -q ready "$work/upstream.out" 2>/dev/null && break; sleep 0.1; done
expect "the test upstreams (HTTP and DNS on host loopback) are up" "ready" "$(cat "$work/upstream.out")"
touch "$work/dns.log"

check_status() { if [ "$2" -ne 0 ]; then pass "$1"; else fail "$1" "exit status 0: $3"; fi; }

echo "== airlock mcp tools (the command line)"
out=$(cd "$work" && XDG_CONFIG_HOME="$work/config" a mcp tools ls --servers time 2>"$work/tools-ls.err")
status=$?
expect_match "tools ls --servers time: a table of the tools" \
    "^TOOL +DESCRIPTION.*get_current_time +Get current time.*convert_time +Convert time" "$(echo $out)"
expect "  exit status 0" 0 "$status"
out=$(cd "$work" && XDG_CONFIG_HOME="$work/config" a mcp tools ls --servers time --tools time:convert_time 2>/dev/null)
expect "tools ls --tools time:convert_time offers only that tool" "convert_time" \
    "$(echo "$out" | awk 'NR > 1 {print $1}' | xargs)"
out=$(cd "$work" && XDG_CONFIG_HOME="$work/config" a mcp tools call get_current_time --servers time \
    --arg timezone=UTC 2>"$work/tools-call.err")
status=$?
expect "tools call get_current_time --arg timezone=UTC: exit status 0" 0 "$status"
expect "  prints the time server's JSON for UTC, with the current date" "UTC $(date -u +%Y-%m-%d)" \
    "$(echo "$out" | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["timezone"], d["datetime"][:10])' \
        2>&1)"
out=$(cd "$work" && XDG_CONFIG_HOME="$work/config" a mcp tools call convert_time --servers time --json \
    --arg source_timezone=UTC --arg time=12:00 --arg target_timezone=Asia/Tokyo 2>/dev/null)
expect "tools call convert_time --json: the whole result, not an error, 21:00 in Tokyo" "False 21:00" \
    "$(echo "$out" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(r.get("isError", False), json.loads(r["content"][0]["text"])["target"]["datetime"][11:16])' 2>&1)"
out=$(cd "$work" && XDG_CONFIG_HOME="$work/config" a mcp tools call no_such_tool --servers time 2>&1)
status=$?
check_status "tools call of an unknown tool exits non-zero" "$status" "$out"
expect_match "  and says the tool is unknown" "unknown tool 'no_such_tool'" "$out"
out=$(cd "$work" && XDG_CONFIG_HOME="$work/config" a mcp tools call get_current_time --servers time \
    --arg timezone=Not/AZone 2>/dev/null)
status=$?
check_status "tools call whose tool reports an error (bad time zone) exits non-zero" "$status" "$out"
check_error "tools call of a server not in the catalogs: one error line" "no server 'no-such-server'" \
    env XDG_CONFIG_HOME="$work/config" "$AIRLOCK" mcp tools call get_current_time --servers no-such-server
expect "the tools commands leave no server sandbox behind" "" "$(mcp_made_here | xargs)"

echo "== gateway run: bad command lines"
check_error "--port with stdio: one error line, non-zero exit" "--port" \
    "$AIRLOCK" mcp gateway run --port 18811
check_error "an unknown transport: one error line" "foo" "$AIRLOCK" mcp gateway run --transport foo
check_error "--servers and --profile together: one error line" "--profile" \
    "$AIRLOCK" mcp gateway run --servers time --profile x
printf 'registry:\n  notemplate:\n    command: [x]\n' > "$work/notemplate.yaml"
check_error "a catalog entry without a template: one error line naming it" "server 'notemplate'" \
    env XDG_CONFIG_HOME="$work/config" "$AIRLOCK" mcp gateway run --servers time --catalog "$work/notemplate.yaml"
check_error "a missing catalog file: one error line" "does not exist" \
    env XDG_CONFIG_HOME="$work/config" "$AIRLOCK" mcp gateway run --servers time --catalog "$work/none.yaml"
check_error "--servers naming a server not in the catalogs: one error line" "no server 'nope'" \
    env XDG_CONFIG_HOME="$work/config" "$AIRLOCK" mcp gateway run --servers nope
cat > "$work/thief.yaml" <<'EOF'
registry:
  gwt-thief:
    template: mcp-servers
    command: [mcp-server-time]
    secrets: [{name: srva.token, env: TOKEN}]
EOF
check_error "a catalog entry asking for another server's secret is refused: one error line" \
    "secret 'srva.token' must be named gwt-thief.KEY" \
    env XDG_CONFIG_HOME="$work/config" "$AIRLOCK" mcp tools ls --servers time --catalog "$work/thief.yaml"
cat > "$work/nosecret.yaml" <<'EOF'
registry:
  gwt-nosecret:
    template: mcp-servers
    command: [mcp-server-time]
    disableNetwork: true
    secrets: [{name: gwt-nosecret.key, env: KEY}]
EOF
check_error "a server whose secret is not set: one error line that says how to set it" \
    "airlock mcp secret set gwt-nosecret.key" \
    env XDG_CONFIG_HOME="$work/config" "$AIRLOCK" mcp tools ls --servers gwt-nosecret --catalog "$work/nosecret.yaml"
cat > "$work/broken.yaml" <<'EOF'
registry:
  gwt-broken:
    template: mcp-servers
    disableNetwork: true
    command: [/opt/mcp-servers/bin/python, -c, 'import sys; print("broken on purpose", file=sys.stderr); sys.exit(3)']
EOF
err=$(cd "$work" && XDG_CONFIG_HOME="$work/config" a mcp tools ls --servers gwt-broken --catalog "$work/broken.yaml" \
    2>&1 >/dev/null)
status=$?
check_status "a server that exits at once: tools ls exits non-zero" "$status" "$err"
expect_match "  its error line says it did not start, with the server's stderr" \
    "^airlock: .*server gwt-broken did not start.*broken on purpose" "$(echo "$err" | tail -n 1)"
expect "  no stack trace" "" "$(echo "$err" | grep -iE 'traceback|fatal error|stack' | head -1)"
expect "the bad command lines and catalogs leave no server sandbox behind" "" "$(mcp_made_here | xargs)"

echo "== the gateway through the client"
# The client bounds every call; this bounds the whole run (the first start may build an image).
GW_WORK="$work" GW_REPO="$repo" GW_COMMIT="$commit_subject" GW_UNTRACKED="$untracked" GW_RUN="$run_id" \
    GW_UPSTREAM_PORT="$upstream_port" GW_DNS_PORT="$dns_port" GW_DNS_LOG="$work/dns.log" GW_LISTEN_PORT=18823 \
    GW_SSE_PORT=18811 GW_STREAM_PORT=18812 GW_KILL_PORT=18813 GW_REMOTE_PORT=18824 GW_REMOTE_TOKEN="$remote_token" \
    GW_HTTPS_PORT="$https_port" GW_INJECT_KEY="$inject_key" \
    AIRLOCK="$AIRLOCK" \
    timeout -k 10 1200 "$work/venv/bin/python" -u "$here/gateway_client.py" 2>&1 | tee "$work/client.log"
client_status=${PIPESTATUS[0]}
client_failed=$(grep -c '^FAIL - ' "$work/client.log")
passed=$((passed + $(grep -c '^ok - ' "$work/client.log")))
failed=$((failed + client_failed))
if [ "$client_status" -ne 0 ] && [ "$client_failed" = 0 ]; then
    fail "the client ran to the end" "exit status $client_status (124: the whole run took over 1200 s)"
fi

echo "== --log-calls, --block-secrets, code-mode"
long_secret="srva-secret-$run_id-0123456789"
echo "$long_secret" | a mcp secret set srva.token
gw_call() { (cd "$work" && XDG_CONFIG_HOME="$work/config" a mcp tools call "$@" --servers srva --catalog "$work/catalog.yaml"); }
out=$(gw_call env --block-secrets 2>/dev/null)
expect_match "--block-secrets: a stored secret in a result is redacted" "\[redacted: srva.token\]" "$out"
expect "  and its value is not there" "0" "$(grep -c "$long_secret" <<<"$out")"
expect_match "companion: without it the server's own secret comes back as it is" "$long_secret" "$(gw_call env 2>/dev/null)"
out=$(gw_call resolve --arg "name=$long_secret.example" --block-secrets 2>&1)
rc=$?
expect_match "--block-secrets: a call whose arguments hold a stored secret is refused" \
    "blocked: the arguments hold the value of the stored secret srva.token" "$out"
expect_match "  with a non-zero exit" "^[1-9]" "$rc"
log_line=$(gw_call whoami --log-calls 2>&1 >/dev/null | grep '"duration_ms"')
expect "--log-calls: one JSON line with client, server, tool, argument names, duration, outcome" \
    "airlock mcp tools call srva whoami [] ok True" \
    "$(python3 -c 'import json,sys; e=json.loads(sys.argv[1]); print(e["client"], e["server"], e["tool"], e["arguments"], e["outcome"], isinstance(e["duration_ms"], (int, float)) and "time" in e)' "$log_line" 2>&1)"
log_line=$(gw_call resolve --arg "name=value-$run_id.example" --log-calls 2>&1 >/dev/null | grep '"duration_ms"')
expect "  argument names, never values" "['name'] 0" \
    "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["arguments"])' "$log_line" 2>&1) $(grep -c "value-$run_id" <<<"$log_line")"
gw_call whoami --call-log "$work/calls.log" >/dev/null 2>&1
gw_call resolve --arg "name=value-$run_id.example" --call-log "$work/calls.log" >/dev/null 2>&1
expect "--call-log: each call is a line in the file" "2" "$(grep -c '"duration_ms"' "$work/calls.log")"
expect "mcp log --file --limit 1 --json: the last call, as stored" "resolve ['name']" \
    "$(a mcp log --file "$work/calls.log" --limit 1 --json | python3 -c 'import json,sys; e=json.loads(sys.stdin.read()); print(e["tool"], e["arguments"])' 2>&1)"
expect_match "mcp log --file: a table of the calls, oldest first" "ok +[0-9]+ +srva / whoami.*srva / resolve +name" \
    "$(a mcp log --file "$work/calls.log" | tr '\n' ' ')"
check_error "mcp log with neither a sandbox nor --file: one line" "name a sandbox or give --file" a mcp log
# code-mode: a script composes two tools of time in one call, in a sandbox with no network.
cat > "$work/code_mode.py" <<'EOF'
import asyncio, json, os, sys
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
def error_of(r): return r.is_error if hasattr(r, "is_error") else r.isError
async def main():
    params = StdioServerParameters(
        command=sys.argv[1], args=["mcp", "gateway", "run"], env=dict(os.environ))
    async with stdio_client(params) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            await s.call_tool("mcp-add", {"name": "time"})
            made = await s.call_tool("code-mode", {"servers": ["time"], "name": "clock"})
            names = [t.name for t in (await s.list_tools()).tools]
            script = (
                "a = get_current_time(timezone='UTC')\n"
                "b = convert_time(source_timezone='UTC', time='12:00', target_timezone='Asia/Tokyo')\n"
                "import socket\n"
                "try:\n    socket.create_connection(('1.1.1.1', 80), timeout=2); net = 'reached'\n"
                "except OSError:\n    net = 'refused'\n"
                "print('printed', a['timezone'])\n"
                "result = {'tokyo': b['target']['datetime'][11:16], 'net': net}\n")
            r = await s.call_tool("code-mode-clock", {"script": script})
            data = json.loads(r.content[0].text)
            bad = await s.call_tool("code-mode-clock", {"script": "raise ValueError('boom')"})
            print(error_of(made), "code-mode-clock" in names, data["result"]["tokyo"], data["result"]["net"],
                  data["output"].strip(), error_of(r), error_of(bad), "ValueError: boom" in bad.content[0].text)
asyncio.run(main())
EOF
out=$(cd "$work" && XDG_CONFIG_HOME="$work/config" "$work/venv/bin/python" "$work/code_mode.py" "$AIRLOCK" 2>"$work/code_mode.err")
expect "code-mode: the new tool composes get_current_time and convert_time, with no network; errors come back" \
    "False True 21:00 refused printed UTC False True True" "$(tail -n 1 <<<"$out")"
[ -n "$out" ] || echo "      $(tail -n 3 "$work/code_mode.err")"

echo "== the user's catalog directory"
mkdir -p "$work/config-cat/airlock/catalogs" && cp "$work/catalog.yaml" "$work/config-cat/airlock/catalogs/e2e.yaml"
out=$(XDG_CONFIG_HOME="$work/config-cat" a mcp catalog ls 2>&1)
expect_match "catalog ls shows the servers of \$XDG_CONFIG_HOME/airlock/catalogs/*.yaml with their source" \
    "srva +server +mcp-servers +policy +$work/config-cat/airlock/catalogs/e2e.yaml" "$out"
expect_match "  allowHosts and disableNetwork in the NETWORK column" \
    "gwt-allow +server +mcp-servers +allowHosts .*gwt-nonet +server +mcp-servers +none" "$(echo $out)"
out=$(XDG_CONFIG_HOME="$work/config-cat" a mcp catalog show srva 2>&1)
expect_match "catalog show srva: its secret by name (never a value)" "name: srva.token" "$out"
expect "  and no value" "" "$(echo "$out" | grep -E '^ *(value: )?v1$')"

echo "== nothing left behind"
expect "airlock ls lists no server sandbox the test's gateways owned" "" \
    "$(comm -12 <(sort -u "$work/made.txt" 2>/dev/null) <(a ls -q | sort) | xargs)"
expect "no sandbox state directory of them" "" \
    "$(for n in $(sort -u "$work/made.txt" 2>/dev/null); do [ -e "$AIRLOCK_HOME/sandboxes/$n" ] && echo "$n"; done |
        xargs)"
expect "no process of the test's servers (pgrep -u $(id -un) -f gwe2e-$run_id)" "" \
    "$(pgrep -u "$(id -u)" -f "gwe2e-$run_id" | xargs)"
expect "no gateway process of the test" "" "$(pgrep -u "$(id -u)" -f "mcp gateway run.*$work" | xargs)"

report
