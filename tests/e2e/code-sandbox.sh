#!/bin/bash
# End-to-end tests of `airlock mcp serve code-sandbox` (README, "Code sandboxes for any MCP
# client"), driven by the real MCP Python client: the `mcp` package from PyPI, in a venv, runs
# tests/e2e/code_sandbox_client.py, which calls every tool, attacks the sandboxes from inside
# (network, fork bomb, memory, disk, paths) next to companions that show each probe works, and
# kills a server with SIGKILL to check that nothing is left behind.
# Runs as an ordinary user. MCP_PIP_SPEC picks the client (default: the newest `mcp`).
# Prints "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
AIRLOCK="${AIRLOCK:-airlock}"
export AIRLOCK_HOME="${AIRLOCK_HOME:-$HOME/.airlock-e2e}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

work="$(mktemp -d /tmp/airlock-code-sandbox.XXXXXX)"
mcp_spec="${MCP_PIP_SPEC:-mcp}"
before=$(a ls -q 2>/dev/null | sort)
before_dirs=$(ls -A "$AIRLOCK_HOME/sandboxes" 2>/dev/null | sort)
# What exists now and did not before the test: what the test made.
made_here() { comm -13 <(printf '%s\n' "$before") <(a ls -q 2>/dev/null | sort) | grep -v '^$'; }
dirs_made_here() {
    comm -13 <(printf '%s\n' "$before_dirs") <(ls -A "$AIRLOCK_HOME/sandboxes" 2>/dev/null | sort) | grep -v '^$'
}
cleanup() {
    local name
    for name in $(made_here); do a rm -f "$name" >/dev/null 2>&1; done
    rm -rf "$work"
}
trap cleanup EXIT

mcp_client_venv "$work" "$mcp_spec"

echo "== the server through the client"
# The client bounds every call; this bounds the whole run (the first sandbox may build an image).
CODE_SANDBOX_WORK="$work" AIRLOCK="$AIRLOCK" timeout -k 10 2400 \
    "$work/venv/bin/python" -u "$here/code_sandbox_client.py" 2>&1 | tee "$work/client.log"
client_status=${PIPESTATUS[0]}
client_failed=$(grep -c '^FAIL - ' "$work/client.log")
passed=$((passed + $(grep -c '^ok - ' "$work/client.log")))
failed=$((failed + client_failed))
if [ "$client_status" -ne 0 ] && [ "$client_failed" = 0 ]; then
    fail "the client ran to the end" "exit status $client_status (124: the whole run took over 2400 s)"
fi

echo "== nothing left behind"
expect "airlock ls -q lists no sandbox the test created" "" "$(made_here | xargs)"
expect "no sandbox state directory the test created" "" "$(dirs_made_here | xargs)"

report
