#!/bin/bash
# End-to-end test of the real mini-swe-agent (PyPI) in its sandbox, against a fake OpenAI chat
# completions API on host loopback (tests/e2e/fake_openai.py). The fake scripts the
# conversation as bash tool calls: look for the host's ~/.aws/credentials, list the API key
# variable of every process in the sandbox, write a file in the workspace, try to write a git
# hook, submit. The test checks what reached the API (the real key, injected by the proxy; the
# command outputs mini-swe-agent sent back), what landed in the workspace, the sandbox's files
# and /proc, and the network log. Each refusal is checked next to a companion that shows the
# same probe working where it may. Runs as an ordinary user who may bind port 443 on host
# loopback (scripts/test.sh lets it). Prints "N passed, N failed".
set -uo pipefail
AIRLOCK="${AIRLOCK:-airlock}"
export AIRLOCK_HOME="$HOME/.airlock-e2e"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

work="$(mktemp -d /tmp/airlock-mini.XXXXXX)"
ws="$HOME/e2e-mini-project"
name="e2e-mini"
probe="e2e-mini-probe"
api_log="$work/api.log"
real_key="sk-e2e-openai-$(rand 12)"
canary="AKIAE2EMINI$(rand 6)"
readme_marker="readme-marker-$(rand 4)"
hello="hello from mini-swe-agent $(rand 4)"
sentinel="airlock-proxy-managed"
model="openai/gpt-4o-mini"
# The fake listens on 127.0.0.2, which leaves 127.0.0.1:443 to the other agent tests.
fake_addr="127.0.0.2"
fake_pid=""
cleanup() {
    for sandbox in "$name" "$probe"; do a rm -f "$sandbox" >/dev/null 2>&1; done
    [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null
    remove_aws_canary
    rm -rf "$work" "$ws"
}
trap cleanup EXIT
for sandbox in "$name" "$probe"; do a rm -f "$sandbox" >/dev/null 2>&1; done

echo "== a workspace, a canary and the fake API"
git_workspace "$ws" "$readme_marker"
plant_aws_canary e2e-mini-canary "$canary"

"$here/certs.sh" "$work" "DNS:api.openai.com"
need_port_443
# The conversation, one bash tool call per turn; mini-swe-agent runs each in a fresh bash in
# the workspace and sends its output back in the next request. The host's home is named by
# its host path too, in case anything of it were mounted where it is on the host.
turns=(
    "ls -la ~/.aws/credentials $HOME/.aws/credentials; cat ~/.aws/credentials $HOME/.aws/credentials; echo EXIT=\$?; cat README.md"
    "for p in /proc/[0-9]*; do tr '\\0' '\\n' < \$p/environ 2>/dev/null | grep '^OPENAI_API_KEY=' | sed \"s|^|\${p#/proc/} |\"; done; echo agent_pids=\$(pgrep -f 'bin/[m]ini' | xargs)"
    "printf '%s\\n' '$hello' > hello.txt && cat hello.txt"
    "echo evil > .git/hooks/pre-commit; echo rc=\$?; echo fine > companion.txt; echo companion_rc=\$?"
    "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
)
turn_args=()
for turn in "${turns[@]}"; do turn_args+=(--turn "$turn"); done
touch "$api_log"
python3 "$here/fake_openai.py" --listen "$fake_addr:443" --cert "$work/server.pem" --key "$work/server.key" \
    --log "$api_log" "${turn_args[@]}" > "$work/fake.out" 2>&1 &
fake_pid=$!
for _ in $(seq 50); do grep -q ready "$work/fake.out" 2>/dev/null && break; sleep 0.1; done
expect "the fake API is up" "ready" "$(cat "$work/fake.out")"
# The proxy trusts the test CA for upstream TLS, as it would a corporate proxy's.
export AIRLOCK_UPSTREAM_CA_FILE="$work/ca.pem"

# from_log EXPR: evaluates a Python expression over the fake's request log. reqs: every
# request; chats: the POST /v1/chat/completions requests; output(N): what mini-swe-agent sent
# back for the tool call of turn N (1-based), as the text of that command's output.
from_log() {
    KEY="$real_key" python3 - "$api_log" "$1" <<'EOF'
import json, os, sys
reqs = [json.loads(line) for line in open(sys.argv[1])]
key = os.environ["KEY"]
chats = [r for r in reqs if r["method"] == "POST" and r["path"].split("?")[0] == "/v1/chat/completions"
         and isinstance(r["body"], dict)]
def output(n):
    found = [m.get("content") for r in chats for m in r["body"].get("messages", [])
             if m.get("role") == "tool" and m.get("tool_call_id") == "call_%d" % n]
    if not found:
        return "(no output for turn %d)" % n
    content = found[-1] if isinstance(found[-1], str) else json.dumps(found[-1])
    try:
        obs = json.loads(content)
        return "%s\nreturncode=%s" % (obs.get("output", ""), obs.get("returncode"))
    except ValueError:
        return content
print(eval(sys.argv[2]))
EOF
}

# What lets mini-swe-agent run unattended here, from its definition: litellm (1.106) imports
# the `mcp` package for every request with tools without depending on it, so the template
# installs it; MSWEA_CONFIGURED skips the first-run setup prompt; LITELLM_LOCAL_MODEL_COST_MAP
# keeps litellm from fetching its price list from GitHub at every start.
probe_cmd='mini --help >/dev/null && echo mini-ok
LITELLM_LOCAL_MODEL_COST_MAP=True /opt/mini-swe-agent/bin/python -c "import litellm.responses.mcp.chat_completions_handler" && echo litellm-mcp-ok'
# The image first, without a time limit: on a new machine its pip install alone can take
# longer than the probe may.
a template build mini-swe-agent >/dev/null 2>"$work/build.err" || fail "template build mini-swe-agent" "$(tail -n 3 "$work/build.err")"
probe_out=$(timeout 120 "$AIRLOCK" run shell "$ws" --name "$probe" --template mini-swe-agent --network none \
    -- -c "$probe_cmd" </dev/null 2>"$work/probe.err")
expect_match "mini is installed in the image" "mini-ok" "$probe_out"
expect_match "litellm's tool-call path imports (the template installs mcp)" "litellm-mcp-ok" "$probe_out"
[[ "$probe_out" == *litellm-mcp-ok* ]] || echo "      $(tail -n 3 "$work/probe.err")"
a rm -f "$probe" >/dev/null 2>&1
expect_match "the definition sets MSWEA_CONFIGURED and litellm's local price list" \
    "MSWEA_CONFIGURED=true.*LITELLM_LOCAL_MODEL_COST_MAP=True" "$(a agent show mini-swe-agent --json | tr -d '\n ')"
mini_args=(-m "$model")

echo "== mini --yolo in the sandbox"
# A key in the host environment at the first run is stored for the proxy to inject. The fake
# API is api.openai.com resolved to host loopback, which the policy blocks unless allowed.
task="Run the Airlock end-to-end steps."
start=$(date +%s)
OPENAI_API_KEY="$real_key" timeout 150 "$AIRLOCK" run mini-swe-agent "$ws" --name "$name" \
    --add-host "api.openai.com:$fake_addr" --allow-cidr "$fake_addr/32" \
    -- "${mini_args[@]}" -t "$task" </dev/null >"$work/run.out" 2>"$work/run.err"
rc=$?
echo "   (the run took $(($(date +%s) - start)) s)"
expect "airlock run mini-swe-agent exits 0" "0" "$rc"
[ "$rc" = 0 ] || echo "      output: $(tail -n 5 "$work/run.out" "$work/run.err")"
expect "the agent loop ran every turn and then submitted" "5 call_1 call_2 call_3 call_4" \
    "$(from_log '" ".join([str(len(chats))] + [m["tool_call_id"] for m in chats[-1]["body"]["messages"] if m.get("role") == "tool"])')"
expect "the task reached the API" "True" "$(from_log 'all("'"$task"'" in json.dumps(c["body"]["messages"]) for c in chats)')"
state_dir=$(a inspect "$name" | python3 -c 'import json,sys; print(json.load(sys.stdin)["stateDirectory"])')
traj="$state_dir/home/.config/mini-swe-agent/last_mini_run.traj.json"
expect "mini-swe-agent's trajectory (its state directory) says Submitted" "Submitted" \
    "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["info"]["exit_status"])' "$traj" 2>&1)"

echo "== the key: injected by the proxy, never inside"
expect "every chat completions request carried the real key" "yes" \
    "$(from_log '"yes" if chats and all(r["headers"].get("authorization") == "Bearer " + key for r in chats) else [r["headers"].get("authorization") for r in chats]')"
expect "every request with an Authorization header had the real one (never the sentinel)" "['Bearer $real_key']" \
    "$(from_log 'sorted({r["headers"]["authorization"] for r in reqs if "authorization" in r["headers"]})')"
expect "the real key is in no request body" "0" "$(from_log 'sum(key in json.dumps(r["body"]) for r in reqs)')"
env_scan=$(from_log 'output(2)')
expect_match "every process's OPENAI_API_KEY during the run was the sentinel" \
    "^( *[0-9]+ OPENAI_API_KEY=$sentinel[[:space:]]*)+agent_pids=[0-9 ]+[[:space:]]+returncode=0$" "$env_scan"
agent_pid=$(sed -n 's/^agent_pids=\([0-9]*\).*/\1/p' <<<"$env_scan")
expect "  among them mini-swe-agent's own process" "1" "$(grep -c "^ *${agent_pid:-none} OPENAI_API_KEY=" <<<"$env_scan")"
expect "  and none held the real key" "0" "$(grep -c "$real_key" <<<"$env_scan")"
expect "companion: the sentinel did reach the API in a request body (that output)" "True" \
    "$(from_log 'any("OPENAI_API_KEY=" + "'$sentinel'" in json.dumps(r["body"]) for r in reqs)')"
expect "the variable inside holds the sentinel" "$sentinel" "$(a exec "$name" -- printenv OPENAI_API_KEY)"
find_key() { find_in_sandbox "$name" "$real_key" "$@"; }
expect "the real key is nowhere in the sandbox's /proc, home, /etc, /tmp, /var, /opt or workspace" "0" \
    "$(find_key /proc /home /root /etc /tmp /var /opt /usr/local "$ws")"
echo "$real_key" > "$ws/.marker"
expect "companion: the same search finds it where it was put" "1" "$(find_key "$ws")"
rm -f "$ws/.marker"
expect "mini-swe-agent's files in the sandbox's home (seen from the host) hold no key" "" \
    "$(grep -rlF "$real_key" "$state_dir/home" 2>/dev/null)"
expect_match "companion: the same grep finds the run's tool calls there" "last_mini_run\.traj\.json" \
    "$(grep -rlF call_1 "$state_dir/home" 2>/dev/null)"

echo "== what mini-swe-agent's commands could reach"
aws_probe=$(from_log 'output(1)')
expect_match "no ~/.aws/credentials inside" "cannot access '/home/[^']*/\.aws/credentials': No such file or directory" "$aws_probe"
expect_match "  nor at the host's path" "cannot access '$HOME/\.aws/credentials': No such file or directory" "$aws_probe"
expect_match "  cat fails too" "EXIT=1" "$aws_probe"
expect "  and the canary is not in the output" "0" "$(grep -c "$canary" <<<"$aws_probe")"
expect "  nor in any request that reached the API" "0" "$(from_log 'sum("'$canary'" in json.dumps(r["body"]) for r in reqs)')"
expect "companion: the same command read the workspace README" "1" "$(grep -cx "$readme_marker" <<<"$aws_probe")"
expect "writing hello.txt worked" "$hello returncode=0" "$(from_log 'output(3)' | xargs)"
expect "hello.txt landed in the host workspace" "$hello" "$(cat "$ws/hello.txt" 2>&1)"
hook_probe=$(from_log 'output(4)')
expect_match "writing .git/hooks/pre-commit fails: refused by the git guard" "\.git/hooks/pre-commit: Operation not permitted" "$hook_probe"
expect_match "  with a nonzero status" "(^|[[:space:]])rc=[1-9]" "$hook_probe"
expect "  and the host has no such hook" "absent" \
    "$([ -e "$ws/.git/hooks/pre-commit" ] && cat "$ws/.git/hooks/pre-commit" || echo absent)"
expect_match "companion: the same command wrote a workspace file" "companion_rc=0" "$hook_probe"
expect "  which the host sees" "fine" "$(cat "$ws/companion.txt" 2>&1)"

echo "== the network log"
save_network_log "$name" "$work/network.log"
expect "the log holds each chat completions request, allowed, with the key injected" \
    "$(from_log 'len(chats)')" \
    "$(net 'sum(x["host"] == "api.openai.com" and x.get("path", "").split("?")[0] == "/v1/chat/completions" and x["decision"] == "allow" and x.get("injected") == ["openai"] for x in e)')"
echo "   hosts mini-swe-agent tried: $(net '", ".join(sorted({"%s %s (%s)" % (x["host"], x["decision"], x.get("via")) for x in e}))')"
expect "it reached no host but the API" "[]" "$(net 'sorted({x["host"] for x in e if x["host"] != "api.openai.com"})')"
expect "the network log never holds the key" "0" "$(grep -c "$real_key" "$state_dir/network.log")"

echo "== a streamed answer through the proxy"
# mini-swe-agent does not stream; the OpenAI SDK in its venv does when asked, through the same proxy.
stream_out=$(a exec "$name" -- /opt/mini-swe-agent/bin/python -c '
import openai
stream = openai.OpenAI().chat.completions.create(model="gpt-4o-mini", stream=True,
    messages=[{"role": "user", "content": "stream"}, {"role": "assistant", "content": "x"}])
calls = [c.choices[0].delta.tool_calls[0].function.arguments for c in stream if c.choices and c.choices[0].delta.tool_calls]
print(calls)' 2>&1)
expect_match "the SDK's streamed request gets the scripted tool call (turn 2)" "agent_pids" "$stream_out"
expect "  and it carried the real key" "Bearer $real_key" \
    "$(from_log 'chats[-1]["headers"].get("authorization") if chats[-1]["body"].get("stream") else "not streamed"')"

report
