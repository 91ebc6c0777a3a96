#!/bin/bash
# End-to-end test of the real Claude Code (the binary the claude-agent-sdk wheel carries) in its
# sandbox, against a fake Anthropic Messages API on host loopback (tests/e2e/fake_anthropic.py).
# The fake scripts the conversation: Claude Code's own Bash and Write tools look for the host's
# ~/.aws/credentials, list the API key variable of every process in the sandbox, write a file
# in the workspace, and try to write a git hook and Claude Code's project settings. The test
# checks what reached the API (the real key, injected by the proxy; the tool results), what
# landed in the workspace, the network log, and that Claude Code's state survives a stop for
# `claude --continue`. Each refusal is checked next to a companion that shows the same probe
# working where it may. Runs as an ordinary user who may bind port 443 on host loopback
# (scripts/test.sh lets it); builds the claude image from PyPI if it is not built yet.
# Prints "N passed, N failed".
set -uo pipefail
AIRLOCK="${AIRLOCK:-airlock}"
export AIRLOCK_HOME="$HOME/.airlock-e2e"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

work="$(mktemp -d /tmp/airlock-claude.XXXXXX)"
ws="$HOME/e2e-claude-project"
name="e2e-claude"
api_log="$work/api.log"
real_key="sk-ant-e2e-$(rand 12)"
canary="AKIAE2ECLAUDE$(rand 6)"
readme_marker="readme-marker-$(rand 4)"
sentinel="airlock-proxy-managed"
fake_pid=""
shared_state="$AIRLOCK_HOME/agent-state/claude"
shared_made_here=""
cleanup() {
    a rm -f "$name" "$name-mcp" "$name-mcpshared" >/dev/null 2>&1
    [ -n "$shared_made_here" ] && rm -rf "$shared_state"
    [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null
    remove_aws_canary
    rm -rf "$work" "$ws"
}
trap cleanup EXIT
a rm -f "$name" >/dev/null 2>&1
# A stored secret would take over from the key this test gives (egress.sh stores one for a while).
a secret rm anthropic >/dev/null 2>&1

echo "== a workspace, a canary and the fake API"
# No .claude/ in the workspace: the settings Claude Code is asked to write do not exist yet.
git_workspace "$ws" "$readme_marker"
plant_aws_canary e2e-claude-canary "$canary"

# The image: Claude Code from PyPI (a minute the first time; later runs reuse it).
a template build claude >/dev/null 2>"$work/build.err" || fail "the claude image builds" "$(tail -n 5 "$work/build.err")"

"$here/certs.sh" "$work" "DNS:api.anthropic.com"
need_port_443
touch "$api_log"
python3 "$here/fake_anthropic.py" --listen 127.0.0.1:443 --cert "$work/server.pem" --key "$work/server.key" \
    --log "$api_log" --workspace "$ws" --host-home "$HOME" > "$work/fake.out" 2>&1 &
fake_pid=$!
for _ in $(seq 50); do grep -q ready "$work/fake.out" 2>/dev/null && break; sleep 0.1; done
expect "the fake API is up" "ready" "$(cat "$work/fake.out")"
# The proxy trusts the test CA for upstream TLS, as it would a corporate proxy's.
export AIRLOCK_UPSTREAM_CA_FILE="$work/ca.pem"

# from_log EXPR: evaluates a Python expression over the fake's request log. reqs: every
# request; loop: the /v1/messages requests of the agent loop (those that offer the Bash tool);
# result(ID): the text of the tool_result Claude Code sent back for tool call ID; keys_ok(REQS):
# "yes" if there are some and each carried the real key.
from_log() {
    KEY="$real_key" python3 - "$api_log" "$1" <<'EOF'
import json, os, sys
reqs = [json.loads(line) for line in open(sys.argv[1])]
key = os.environ["KEY"]
def is_messages(r): return r["path"].split("?")[0] == "/v1/messages" and isinstance(r["body"], dict)
messages = [r for r in reqs if is_messages(r)]
loop = [r for r in messages if "Bash" in [t.get("name") for t in r["body"].get("tools") or []]]
def text(content):
    if isinstance(content, str): return content
    return "\n".join(text(b.get("content")) if b.get("type") == "tool_result" else b.get("text", "") for b in content or [])
def keys_ok(some): return "yes" if some and all(r["headers"].get("x-api-key") == key for r in some) else ""
def result(tool_id):
    found = [text(b.get("content")) for r in messages for m in r["body"]["messages"] if isinstance(m.get("content"), list)
             for b in m["content"] if b.get("type") == "tool_result" and b.get("tool_use_id") == tool_id]
    return found[-1] if found else "(no tool_result for %s)" % tool_id
print(eval(sys.argv[2]))
EOF
}

echo "== claude -p in the sandbox"
# claude_run LABEL ARGS...: `airlock run claude` for the workspace, not interactive, with a time
# limit; LABEL.out and LABEL.err in $work take its output, and $rc its status.
claude_run() {
    local label="$1"; shift
    timeout 120 "$AIRLOCK" run claude "$ws" --name "$name" "$@" </dev/null >"$work/$label.out" 2>"$work/$label.err"
    rc=$?
}
# expect_ok NAME LABEL: the run exited 0 (else its stderr is shown).
expect_ok() {
    if [ "$rc" = 0 ]; then pass "$1"; else fail "$1" "rc=$rc stderr: $(tail -n 5 "$work/$2.err")"; fi
}
# A key in the host environment at the first run is stored for the proxy to inject. The fake
# API is api.anthropic.com resolved to host loopback, which the policy blocks unless allowed.
start=$(date +%s)
ANTHROPIC_API_KEY="$real_key" claude_run run1 --add-host api.anthropic.com:127.0.0.1 --allow-cidr 127.0.0.1/32 \
    -- -p "Run the Airlock end-to-end steps."
echo "   (the first run took $(($(date +%s) - start)) s)"
expect_ok "airlock run claude -- -p exits 0" run1
expect "it prints the model's final answer" "E2E-DONE: all steps ran" "$(cat "$work/run1.out")"
expect "the agent loop ran the whole script" \
    "toolu_e2e_01_aws toolu_e2e_02_env toolu_e2e_03_write toolu_e2e_04_hook text" \
    "$(from_log '" ".join(r["reply"][1] if r["reply"][0] == "tool_use" else "text" for r in loop)')"

echo "== the key: injected by the proxy, never inside"
expect "every /v1/messages request carried the real key in x-api-key" "yes" \
    "$(from_log 'keys_ok(messages) or [r["headers"].get("x-api-key") for r in messages]')"
expect "every request that had an x-api-key had the real one (never the sentinel)" "['$real_key']" \
    "$(from_log 'sorted({r["headers"]["x-api-key"] for r in reqs if "x-api-key" in r["headers"]})')"
expect "the real key is in no request body (prompts, tool results, telemetry)" "0" \
    "$(from_log 'sum(key in json.dumps(r["body"]) for r in reqs)')"
env_scan=$(from_log 'result("toolu_e2e_02_env")')
expect_match "every process's ANTHROPIC_API_KEY during the run was the sentinel" \
    "^( *[0-9]+ ANTHROPIC_API_KEY=$sentinel[[:space:]]*)+$" "$env_scan"
expect "  and none held the real key" "0" "$(grep -c "$real_key" <<<"$env_scan")"
expect "companion: the sentinel did reach the API in a request body (that tool result)" "True" \
    "$(from_log 'any("ANTHROPIC_API_KEY=" + "'$sentinel'" in json.dumps(r["body"]) for r in reqs)')"
expect "the variable inside holds the sentinel" "$sentinel" "$(a exec "$name" -- printenv ANTHROPIC_API_KEY)"
find_key() { find_in_sandbox "$name" "$real_key" "$@"; }
expect "the real key is nowhere in the sandbox's /proc, home, /etc, /tmp, /var or workspace" "0" \
    "$(find_key /proc /home /root /etc /tmp /var /usr/local "$ws")"
echo "$real_key" > "$ws/.marker"
expect "companion: the same search finds it where it was put" "1" "$(find_key "$ws")"
rm -f "$ws/.marker"
state_dir=$(a inspect "$name" | python3 -c 'import json,sys; print(json.load(sys.stdin)["stateDirectory"])')
expect "Claude Code's files in the sandbox's home (seen from the host) hold no key" "" \
    "$(grep -rlF "$real_key" "$state_dir/home" 2>/dev/null)"
expect_match "companion: the same grep finds the session's tool calls there" "\.claude/projects/.*\.jsonl" \
    "$(grep -rlF toolu_e2e_01_aws "$state_dir/home" 2>/dev/null)"

echo "== what Claude Code's tools could reach"
aws_probe=$(from_log 'result("toolu_e2e_01_aws")')
expect_match "Bash sees no ~/.aws/credentials" "No such file or directory"$'\n'"home_rc=1" "$aws_probe"
expect_match "  nor the host's, at its host path" "cat: $HOME/\.aws/credentials: No such file or directory"$'\n'"host_rc=1" \
    "$aws_probe"
expect "  and the canary is not in the tool result" "0" "$(grep -c "$canary" <<<"$aws_probe")"
expect "  nor in any request that reached the API" "0" "$(from_log 'sum("'$canary'" in json.dumps(r["body"]) for r in reqs)')"
expect "companion: the same Bash call read the workspace README" "1" "$(grep -cx "$readme_marker" <<<"$aws_probe")"
expect_match "Write reported success" "^File created successfully at: $ws/hello.txt" \
    "$(from_log 'result("toolu_e2e_03_write")')"
expect "hello.txt landed in the host workspace" "hello from claude in airlock" "$(cat "$ws/hello.txt" 2>&1)"
hook_probe=$(from_log 'result("toolu_e2e_04_hook")')
expect_match "writing .git/hooks/pre-commit fails: refused by the git guard" "\.git/hooks/pre-commit: Operation not permitted" "$hook_probe"
expect_match "  with a nonzero status" "(^|[[:space:]])rc=[1-9]" "$hook_probe"
expect "  and the host has no such hook" "absent" \
    "$([ -e "$ws/.git/hooks/pre-commit" ] && cat "$ws/.git/hooks/pre-commit" || echo absent)"
expect_match "writing .claude/settings.json (hooks run on the host) fails" "settings_rc=[1-9]" "$hook_probe"
expect "  and none appeared on the host" "absent" "$([ -e "$ws/.claude/settings.json" ] && echo present || echo absent)"
expect_match "companion: the same Bash call wrote a workspace file" "companion_rc=0" "$hook_probe"
expect "  which the host sees" "fine" "$(cat "$ws/companion.txt" 2>&1)"

echo "== the network log"
save_network_log "$name" "$work/network.log"
expect "the log holds each /v1/messages request, allowed, with the key injected" \
    "$(from_log 'len(messages)')" \
    "$(net 'sum(x["host"] == "api.anthropic.com" and x.get("path", "").split("?")[0] == "/v1/messages"
               and x["decision"] == "allow" and x.get("injected") == ["anthropic"] for x in e)')"
echo "   hosts Claude Code tried: $(net '", ".join(sorted({"%s %s (%s)" % (x["host"], x["decision"], x.get("via")) for x in e}))')"
echo "   endpoints it called: $(from_log '", ".join(sorted({r["method"] + " " + r["path"].split("?")[0] for r in reqs}))')"
# Claude Code -p needs nothing but the API; anything else it tries (telemetry, release notes)
# must have been refused or have led nowhere.
expect "nothing but the API was reached" "[]" \
    "$(net 'sorted({x["host"] for x in e
                    if x["host"] != "api.anthropic.com" and x["decision"] == "allow" and x.get("bytesIn", 0) > 0})')"
expect "the network log never holds the key" "0" "$(grep -c "$real_key" "$state_dir/network.log")"

echo "== Claude Code's state survives a stop"
expect "a session file holds the first run" "1" \
    "$(a exec "$name" -- bash -c 'grep -l toolu_e2e_01_aws ~/.claude/projects/*/*.jsonl | wc -l')"
a stop "$name" >/dev/null
expect "the sandbox is stopped" "stopped" "$(a ls | awk -v n="$name" '$1 == n {print $2}')"
# No key in the environment this time: the proxy injects the one stored at the first run.
before=$(from_log 'len(messages)')
unset ANTHROPIC_API_KEY
claude_run run2 -- --continue -p "continue-check: what did you do before?"
expect_ok "claude --continue in a second run exits 0" run2
expect "it sees the first run's conversation" "E2E-HISTORY: present" "$(cat "$work/run2.out")"
expect "the second run's requests carried the stored key" "yes" \
    "$(from_log "keys_ok(messages[$before:])")"
claude_run run3 -- -p "continue-check: a new session"
expect "companion: a new session (no --continue) does not see it" "E2E-HISTORY: missing" "$(cat "$work/run3.out")"
claude_run run4 -- --no-such-option
expect_match "companion: a failing claude makes airlock run fail" "^[1-9]" "$rc"


echo "== --mcp: Claude Code lists the tools of its sandbox's MCP gateway"
# The gateway runs with the sandbox (time from PyPI, in a sandbox of its own); Claude Code is
# configured in the sandbox home to use http://mcp.airlock.internal/mcp, which the proxy routes
# to the gateway, adding the token the sandbox never sees.
a template build mcp-servers >/dev/null 2>"$work/mcp-build.err" || fail "build the mcp-servers image" "$(tail -n 3 "$work/mcp-build.err")"
before=$(from_log 'len(messages)')
ANTHROPIC_API_KEY="$real_key" timeout 180 "$AIRLOCK" run claude "$ws" --name "$name-mcp" --mcp-servers time \
    --add-host api.anthropic.com:127.0.0.1 --allow-cidr 127.0.0.1/32 -- -p "continue-check: list your tools" \
    </dev/null >"$work/mcp.out" 2>"$work/mcp.err"
rc=$?
expect_ok "claude -p in a sandbox made with --mcp-servers time exits 0" mcp
expect "the gateway's tools reach the model's tool list (mcp__airlock__...)" "yes" \
    "$(from_log "'yes' if any('mcp__airlock__get_current_time' in json.dumps(r['body']) and 'mcp__airlock__convert_time' in json.dumps(r['body']) for r in messages[$before:]) else ''")"
expect "the gateway is in Claude Code's settings in the sandbox home, not the workspace" \
    "http://mcp.airlock.internal/mcp absent" \
    "$(a exec "$name-mcp" -- python3 -c 'import json,os; print(json.load(open(os.path.expanduser("~/.claude/.claude.json")))["mcpServers"]["airlock"]["url"])') $([ -e "$ws/.mcp.json" ] && echo present || echo absent)"
save_network_log "$name-mcp" "$work/mcp-network.log"
expect_match "the network log shows Claude Code's MCP requests routed to the gateway" "^[1-9]" \
    "$(net 'sum(x["host"] == "mcp.airlock.internal" and x["decision"] == "allow" for x in e)')"
expect "the sandbox holds no gateway token (no Authorization in its environment or settings)" "0" \
    "$(a exec "$name-mcp" -- bash -c 'grep -rs -c "Bearer" ~/.claude/.claude.json /proc/[0-9]*/environ 2>/dev/null | awk -F: "{s+=\$NF} END {print s+0}"')"
expect_match "a gateway server sandbox runs beside it" "mcp-time" "$(a ls)"
# A tool call through the sandbox's gateway (the MCP handshake with curl, inside) lands in the
# sandbox's call log, which `airlock mcp log NAME` reads.
mcp_post() {
    a exec "$name-mcp" -- curl -s -D - -H 'Content-Type: application/json' \
        -H 'Accept: application/json, text/event-stream' ${2:+-H "Mcp-Session-Id: $2"} -d "$1" \
        http://mcp.airlock.internal/mcp
}
session=$(mcp_post '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"e2e-curl","version":"1"}}}' \
    | tr -d '\r' | awk -F': ' 'tolower($1) == "mcp-session-id" { print $2 }')
mcp_post '{"jsonrpc":"2.0","method":"notifications/initialized"}' "$session" >/dev/null
mcp_post '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_current_time","arguments":{"timezone":"UTC"}}}' \
    "$session" >"$work/mcp-call.out"
expect_match "companion: a tool call through the gateway from inside answers" "UTC" "$(cat "$work/mcp-call.out")"
expect_match "mcp log NAME: the call is in the sandbox's call log (server, tool, argument names)" \
    "ok +[0-9]+ +time / get_current_time +timezone" "$(a mcp log "$name-mcp" --limit 5)"
a rm -f "$name-mcp" >/dev/null 2>&1
# This sandbox's gateway: the one serving this workspace (others may run, a benchmark's say).
gateway_of_ws="mcp gateway run .*--workspace $ws( |\$)"
for _ in $(seq 50); do pgrep -u "$(id -u)" -f "$gateway_of_ws" >/dev/null || break; sleep 0.2; done
expect "rm ends the gateway and its server sandbox" "0 0" \
    "$(a ls | grep -c mcp-time) $(pgrep -u "$(id -u)" -f "$gateway_of_ws" | wc -l)"

echo "== --mcp with --share-agent-state: the shared settings stay without the gateway"
# Claude Code's settings are shared with every sandbox made with the flag; one without --mcp
# must not list a gateway it cannot reach, so the entry goes in this sandbox's own file, given
# with --mcp-config.
[ -e "$shared_state" ] || shared_made_here=1
before=$(from_log 'len(messages)')
ANTHROPIC_API_KEY="$real_key" timeout 180 "$AIRLOCK" run claude "$ws" --name "$name-mcpshared" --share-agent-state \
    --mcp-servers time --add-host api.anthropic.com:127.0.0.1 --allow-cidr 127.0.0.1/32 \
    -- -p "continue-check: list your tools" </dev/null >"$work/mcpshared.out" 2>"$work/mcpshared.err"
rc=$?
expect_ok "claude -p with --share-agent-state --mcp-servers time exits 0" mcpshared
expect "the gateway's tools reach the model's tool list" "yes" \
    "$(from_log "'yes' if any('mcp__airlock__get_current_time' in json.dumps(r['body']) for r in messages[$before:]) else ''")"
expect "the shared .claude.json (written by this run) has no airlock entry" "written, no entry" \
    "$(python3 -c 'import json,sys; d = json.load(open(sys.argv[1])); print("written,", "entry" if "airlock" in d.get("mcpServers", {}) else "no entry")' \
        "$shared_state/.claude/.claude.json" 2>&1)"
expect "the entry is in the sandbox's own ~/.airlock/mcp.json, outside the shared state" "http://mcp.airlock.internal/mcp" \
    "$(a exec "$name-mcpshared" -- python3 -c 'import json,os; print(json.load(open(os.path.expanduser("~/.airlock/mcp.json")))["mcpServers"]["airlock"]["url"])' 2>&1)"
a rm -f "$name-mcpshared" >/dev/null 2>&1

report
