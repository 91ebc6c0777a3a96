#!/bin/bash
# End-to-end tests of OAuth for remote MCP servers (README, "MCP gateway"): an authorization
# server and an MCP server that demands its tokens, both from the `mcp` package's server-side
# auth (PyPI), run on host loopback (tests/e2e/oauth_server.py); `airlock mcp oauth authorize`
# with a scripted browser (tests/e2e/oauth_browser.py as $BROWSER); tool calls through the
# gateway with the real `mcp` client, a renewal when the 8 s access token expires, `revoke`
# and the tool error after it (tests/e2e/oauth_client.py); and that no token is in a sandbox,
# a command line, an environment, a log or any file but the two that keep it; the same for a
# sandboxed server whose proxy injects the token into its API calls. Ports 18841-18843 only.
# Runs as an ordinary user. Prints "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
AIRLOCK="${AIRLOCK:-airlock}"
export AIRLOCK_HOME="${AIRLOCK_HOME:-$HOME/.airlock-e2e}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

work="$(mktemp -d /tmp/airlock-oauth.XXXXXX)"
port=18841
dns_port=18842
https_port=18843
ttl=8
server_pid=""
upstream_pid=""
forget() {
    local name
    for name in oauth-remote gwt-oauth-local; do
        rm -f "$AIRLOCK_HOME/secrets/mcp-oauth/$name.json" "$AIRLOCK_HOME/secrets/mcp/$name.oauth_token"
    done
}
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
    [ -n "$upstream_pid" ] && kill "$upstream_pid" 2>/dev/null
    forget
    rm -rf "$work"
}
trap cleanup EXIT
forget

mcp_client_venv "$work" "mcp"

echo "== the authorization server and the MCP server on 127.0.0.1:$port"
"$here/certs.sh" "$work" "DNS:api.oauth.test" >/dev/null 2>&1
# The proxy of the sandboxed server trusts the test CA for its upstream's TLS.
export AIRLOCK_UPSTREAM_CA_FILE="$work/ca.pem"
"$work/venv/bin/python" "$here/oauth_server.py" --port "$port" --access-ttl "$ttl" --stats "$work/stats.json" \
    --https-port "$https_port" --cert "$work/server.pem" --key "$work/server.key" >"$work/server.log" 2>&1 &
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
# The sandboxed server reaches the API as api.oauth.test: a DNS server on loopback names it.
python3 "$here/upstream.py" --dns "$dns_port" --dns-log "$work/dns.log" >"$work/upstream.out" 2>&1 &
upstream_pid=$!
for _ in $(seq 50); do grep -q ready "$work/upstream.out" 2>/dev/null && break; sleep 0.1; done
expect "a DNS server on loopback for the sandboxed server's API name" "ready" "$(cat "$work/upstream.out")"
export AIRLOCK_DNS_SERVER="127.0.0.1:$dns_port"
{
    cat <<YAML
registry:
  oauth-remote:
    description: A remote MCP server that demands OAuth tokens
    type: remote
    remote:
      url: http://127.0.0.1:$port/mcp
  gwt-oauth-local:
    description: A sandboxed server calling an API with the OAuth token its proxy injects
    template: mcp-servers
    allowHosts: [api.oauth.test]
    allowCIDRs: [127.0.0.1/32]
    oauth:
      providers: [{provider: oauth-test, secret: oauth-test.token, env: API_TOKEN}]
      scopes: [mcp]
      issuer: http://127.0.0.1:$port
    command:
      - /opt/mcp-servers/bin/python
      - -c
      - |
YAML
    sed 's/^/        /' "$here/gateway_test_server.py"
    echo "      - gwt-oauth-local"
    echo "      - oauth-e2e-$(rand 4)"
} >"$work/catalog.yaml"
stat_of() { python3 -c "import json,sys; s=json.load(open('$work/stats.json')); print($1)"; }

echo "== before authorizing"
out=$(a mcp tools call oauth_whoami --servers oauth-remote --catalog "$work/catalog.yaml" 2>&1)
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
[ "$status" = 0 ] || cat "$work/authorize.out" "$work/authorize.err"
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
BROWSER="$work/venv/bin/python $here/oauth_browser.py" OAUTH_BROWSER_LOG="$work/browser-local.log" \
    a mcp oauth authorize gwt-oauth-local --catalog "$work/catalog.yaml" >"$work/authorize-local.out" 2>&1
status=$?
if [ "$status" = 0 ]; then
    pass "authorize of the sandboxed server (its catalog names the authorization server): exit 0"
else
    fail "authorize of the sandboxed server (its catalog names the authorization server): exit 0" \
        "exit $status: $(tail -n 4 "$work/authorize-local.out" | tr '\n' ' ') server: $(tail -n 5 "$work/server.log" | tr '\n' ' ')"
fi

echo "== through the gateway: a call, a renewal, the token nowhere, revoke"
AIRLOCK="$AIRLOCK" OAUTH_WORK="$work" OAUTH_TTL="$ttl" OAUTH_API_PORT="$https_port" PYTHONPATH="$here" \
    timeout -k 10 900 "$work/venv/bin/python" -u "$here/oauth_client.py" 2>&1 | tee "$work/client.log"
client_status=${PIPESTATUS[0]}
client_failed=$(grep -c '^FAIL - ' "$work/client.log")
passed=$((passed + $(grep -c '^ok - ' "$work/client.log")))
failed=$((failed + client_failed))
if [ "$client_status" -ne 0 ] && [ "$client_failed" = 0 ]; then
    fail "the client ran to the end" "exit status $client_status: $(tail -n 5 "$work/client.log")"
fi
expect "oauth ls after revoke: both revoked" "revoked revoked" \
    "$(a mcp oauth ls --json | python3 -c "import json,sys; print(*[s['status'] for s in json.load(sys.stdin)])")"

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
