#!/bin/bash
# End-to-end tests of `airlock mcp client connect|disconnect|ls` (README, "MCP gateway"): for
# each of the nine clients and each of its scopes, a real settings file with other servers,
# settings and comments gets the gateway's entry and gives it up again, checked with a parser of
# the client's own format (json, json5 from PyPI for the JSONC files, tomllib); then the real
# Claude Code (the claude-agent-sdk wheel's binary) lists the gateway's tools after connect,
# over stdio and over HTTP through `/` with the token from its environment
# (tests/e2e/mcp_clients_check.py). Runs as an ordinary user, in a home of its own; port 18831
# only. Prints "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
AIRLOCK="${AIRLOCK:-airlock}"
export AIRLOCK_HOME="${AIRLOCK_HOME:-$HOME/.airlock-e2e}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

work="$(mktemp -d /tmp/airlock-mcp-clients.XXXXXX)"
trap 'rm -rf "$work"' EXIT

echo "== json5 and Claude Code (claude-agent-sdk) from PyPI, in a venv"
if python3 -m venv "$work/venv" >"$work/venv.log" 2>&1 &&
    "$work/venv/bin/pip" install --disable-pip-version-check -q json5 claude-agent-sdk >>"$work/venv.log" 2>&1; then
    pass "pip install json5 claude-agent-sdk"
else
    fail "pip install json5 claude-agent-sdk" "$(tail -n 5 "$work/venv.log")"
    report
    exit 1
fi
claude=$(find "$work/venv" -path '*claude_agent_sdk/_bundled/claude' -type f | head -n 1)
expect_match "the wheel carries Claude Code's binary" "Claude Code" "$("$claude" --version 2>&1)"

# The client's settings go to a home of the test's own (HOME is set for each command); the
# gateway's state stays in the suite's AIRLOCK_HOME.
PYTHONPATH="$here" AIRLOCK="$AIRLOCK" CLAUDE="$claude" GW_PORT=18831 \
    timeout -k 10 600 "$work/venv/bin/python" -u "$here/mcp_clients_check.py" "$work" 2>&1 | tee "$work/check.log"
check_status=${PIPESTATUS[0]}
check_failed=$(grep -c '^FAIL - ' "$work/check.log")
passed=$((passed + $(grep -c '^ok - ' "$work/check.log")))
failed=$((failed + check_failed))
if [ "$check_status" -ne 0 ] && [ "$check_failed" = 0 ]; then
    fail "the checks ran to the end" "exit status $check_status (124: over 600 s)"
fi
report
