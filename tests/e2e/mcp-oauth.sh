#!/bin/bash
# End-to-end tests of OAuth for remote MCP servers (README, "MCP gateway"): an authorization
# server and an MCP server that demands its tokens, both from the `mcp` package's server-side
# auth (PyPI), run on host loopback (tests/e2e/oauth_server.py); `airlock mcp oauth authorize`
# with a scripted browser (tests/e2e/oauth_browser.py as $BROWSER); tool calls through the
# gateway with the real `mcp` client, a renewal when the 8 s access token expires, `revoke`
# and the tool error after it (tests/e2e/oauth_client.py); and that no token is in a sandbox,
# a command line, an environment, a log or any file but the two that keep it. Port 18841 only.
# Runs as an ordinary user. Prints "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
AIRLOCK="${AIRLOCK:-airlock}"
export AIRLOCK_HOME="${AIRLOCK_HOME:-$HOME/.airlock-e2e}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

work="$(mktemp -d /tmp/airlock-oauth.XXXXXX)"
port=18841
ttl=8
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
    a mcp oauth revoke oauth-remote >/dev/null 2>&1
    rm -f "$AIRLOCK_HOME/secrets/mcp-oauth/oauth-remote.json" "$AIRLOCK_HOME/secrets/mcp/oauth-remote.oauth_token"
    rm -rf "$work"
}
trap cleanup EXIT
cleanup_before() { rm -f "$AIRLOCK_HOME/secrets/mcp-oauth/oauth-remote.json" "$AIRLOCK_HOME/secrets/mcp/oauth-remote.oauth_token"; }
cleanup_before

mcp_client_venv "$work" "mcp"

echo "== the authorization server and the MCP server on 127.0.0.1:$port"
"$work/venv/bin/python" "$here/oauth_server.py" --port "$port" --access-ttl "$ttl" --stats "$work/stats.json" \
    >"$work/server.log" 2>&1 &
server_pid=$!
up() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/.well-known/oauth-authorization-server"; }
for _ in $(seq 100); do [ "$(up)" = 200 ] && break; sleep 0.1; done
# Its own, on that port: a server left from elsewhere would answer too.
if kill -0 "$server_pid" 2>/dev/null && [ "$(up)" = 200 ]; then
    pass "the servers are up"
else
    fail "the servers are up" "$(tail -n 5 "$work/server.log")"
    report
    exit 1
fi
cat >"$work/catalog.yaml" <<YAML
registry:
  oauth-remote:
    description: A remote MCP server that demands OAuth tokens
    type: remote
    remote:
      url: http://127.0.0.1:$port/mcp
YAML
stat_of() { python3 -c "import json,sys; s=json.load(open('$work/stats.json')); print($1)"; }

echo "== before authorizing"
out=$(a mcp tools call whoami --servers oauth-remote --catalog "$work/catalog.yaml" 2>&1)
expect_match "a call to the unauthorized server names the command that fixes it" \
    "oauth-remote needs OAuth authorization \(it was never authorized\): run \`airlock mcp oauth authorize oauth-remote\`" "$out"
out=$(a mcp oauth authorize no-such-server --catalog "$work/catalog.yaml" 2>&1)
status=$?
check_one_line() { [ "$(printf '%s\n' "$2" | grep -c .)" = 1 ]; }
if [ "$status" != 0 ] && check_one_line "" "$out" && [[ "$out" == *no-such-server* ]]; then
    pass "authorize of an unknown server: one line, non-zero"
else
    fail "authorize of an unknown server: one line, non-zero" "status $status: $out"
fi

echo "== oauth authorize, with a scripted browser"
BROWSER="$work/venv/bin/python $here/oauth_browser.py" OAUTH_BROWSER_LOG="$work/browser.log" \
    a mcp oauth authorize oauth-remote --catalog "$work/catalog.yaml" >"$work/authorize.out" 2>"$work/authorize.err"
status=$?
expect "authorize exits 0" "0" "$status"
expect_match "it says where it is authorized" "authorized oauth-remote at http://127.0.0.1:$port" "$(cat "$work/authorize.out")"
browser() { python3 -c "import json; b=json.loads(open('$work/browser.log').readline()); print($1)"; }
expect "the browser's request: PKCE with S256" "S256" "$(browser 'b["method"]')"
expect "... a state" "True" "$(browser 'b["has_state"]')"
expect "... the MCP server as the resource (RFC 8707)" "http://127.0.0.1:$port/mcp" "$(browser 'b["resource"]')"
expect_match "... and a redirect to a listener on 127.0.0.1" "^http://127\.0\.0\.1:[0-9]+/callback$" "$(browser 'b["redirect_uri"]')"
expect "a redirect with another state is refused (400), and the wait goes on" "400" "$(browser 'b["stale_state_status"]')"
expect "the real redirect is taken (200)" "200" "$(browser 'b["callback_status"]')"
expect "Airlock registered itself as a public client (dynamic registration)" "none" \
    "$(stat_of 's["registrations"][0]["method"]')"
ls_json=$(a mcp oauth ls --json)
expect "oauth ls: authorized" "authorized" "$(python3 -c "import json,sys; print(json.loads(sys.argv[1])[0]['status'])" "$ls_json")"
expect "the token is the server's secret (mcp secret ls)" "oauth-remote.oauth_token" \
    "$(a mcp secret ls 2>/dev/null | grep -o 'oauth-remote.oauth_token')"

echo "== through the gateway: a call, a renewal, the token nowhere, revoke"
AIRLOCK="$AIRLOCK" OAUTH_WORK="$work" OAUTH_TTL="$ttl" PYTHONPATH="$here" \
    timeout -k 10 900 "$work/venv/bin/python" -u "$here/oauth_client.py" 2>&1 | tee "$work/client.log"
client_status=${PIPESTATUS[0]}
client_failed=$(grep -c '^FAIL - ' "$work/client.log")
passed=$((passed + $(grep -c '^ok - ' "$work/client.log")))
failed=$((failed + client_failed))
if [ "$client_status" -ne 0 ] && [ "$client_failed" = 0 ]; then
    fail "the client ran to the end" "exit status $client_status: $(tail -n 5 "$work/client.log")"
fi
expect "oauth ls after revoke: revoked" "revoked" \
    "$(a mcp oauth ls --json | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['status'])")"

echo "== where the tokens are"
# Every token the authorization server issued, searched for in every file under AIRLOCK_HOME
# but the two that keep them, and in what the commands printed.
leaks=$(python3 - "$work/stats.json" "$AIRLOCK_HOME" "$work" <<'EOF'
import json, os, sys
tokens = [t.encode() for t in json.load(open(sys.argv[1]))["issued"]]
keep = {"secrets/mcp/oauth-remote.oauth_token", "secrets/mcp-oauth/oauth-remote.json"}
found = []
for top, skip_rel in ((sys.argv[2], keep), (sys.argv[3], {"stats.json", "server.log"})):
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d not in ("rootfs", "venv", "upper")]
        for name in files:
            path = os.path.join(root, name)
            if os.path.relpath(path, top) in skip_rel:
                continue
            try:
                with open(path, "rb") as f:
                    data = f.read(8 << 20)
            except OSError:
                continue
            if any(t in data for t in tokens):
                found.append(path)
print(" ".join(found))
EOF
)
expect "no token in any file under AIRLOCK_HOME but its two, nor in what the commands printed" "" "$leaks"
report
