#!/bin/bash
# The whole test suite: format lint, build with warnings as errors, unit tests, and the
# end-to-end suite in real sandboxes, run as an ordinary user this script creates.
# Usage (as root or with sudo): scripts/test.sh
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
[ "$(id -u)" = 0 ] || exec sudo -E "$0" "$@"

step() { printf '\n== %s\n' "$*"; }
# Builds quietly; on failure shows the errors. Warnings in Airlock's own targets are errors
# (Package.swift), so the exit status says it all.
build() {
    local log
    log=$(mktemp)
    if ! swift build "$@" >"$log" 2>&1; then
        grep -E "error:" "$log" | head -40 || tail -40 "$log"
        rm -f "$log"
        echo "build failed: swift build $*" >&2
        exit 1
    fi
    rm -f "$log"
}

step "system packages"
scripts/system-packages.sh

step "swift format lint --strict"
swift format lint --strict --recursive Package.swift Sources Tests

step "unit tests"
build --build-tests
unit_log=$(mktemp)
if ! swift test --skip-build >"$unit_log" 2>&1; then
    grep -E "✘|error|failed" "$unit_log" | head -60
    rm -f "$unit_log"
    echo "unit tests failed" >&2
    exit 1
fi
grep -E "Test run with|Executed [0-9]+ tests" "$unit_log" | tail -n 2
rm -f "$unit_log"

step "fuzz the wire parsers (60 s)"
fuzz_work="$(mktemp -d /tmp/airlock-fuzz.XXXXXX)"
if ! FUZZ_WORK="$fuzz_work" fuzz/run.sh 60 >"$fuzz_work/log" 2>&1; then
    tail -n 30 "$fuzz_work/log"
    echo "the fuzzer found a crash (input kept in $fuzz_work/artifacts)" >&2
    exit 1
fi
grep -E "^Done|DONE" "$fuzz_work/log" | tail -n 1
rm -rf "$fuzz_work"

step "release build"
build -c release --static-swift-stdlib
bin_dir="$(mktemp -d /tmp/airlock-test-bin.XXXXXX)"
install -m 755 "$(swift build -c release --static-swift-stdlib --show-bin-path)/airlock" "$bin_dir/airlock"
chmod 755 "$bin_dir"

step "end-to-end (as an ordinary user)"
user=airlock-e2e
if ! id "$user" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash "$user"
fi
grep -q "^$user:" /etc/subuid || usermod --add-subuids 200000-265535 "$user"
grep -q "^$user:" /etc/subgid || usermod --add-subgids 200000-265535 "$user"
install -m 755 tests/e2e/sandbox.sh tests/e2e/egress.sh tests/e2e/upstream.py tests/e2e/certs.sh \
    tests/e2e/code-sandbox.sh tests/e2e/code_sandbox_client.py tests/e2e/agent-claude.sh tests/e2e/fake_anthropic.py \
    tests/e2e/agent-mini-swe.sh tests/e2e/fake_openai.py tests/e2e/gateway.sh tests/e2e/gateway_client.py \
    tests/e2e/gateway_test_server.py tests/e2e/e2e_checks.py tests/e2e/tls_server.py "$bin_dir/"
install -m 644 tests/e2e/lib.sh "$bin_dir/lib.sh"
# Transparent capture is tested against upstreams on host ports 80 and 443, which the
# ordinary user may bind for the length of the run.
port_start=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)
echo 80 > /proc/sys/net/ipv4/ip_unprivileged_port_start
trap 'echo "$port_start" > /proc/sys/net/ipv4/ip_unprivileged_port_start' EXIT
status=0
as_user() {
    runuser -u "$user" -- env -i HOME="/home/$user" PATH="/usr/local/bin:/usr/bin:/bin" LANG=C.UTF-8 \
        AIRLOCK="$bin_dir/airlock" bash "$@"
}
as_user "$bin_dir/sandbox.sh" || status=$?

step "end-to-end egress (as an ordinary user)"
as_user "$bin_dir/egress.sh" || status=1

step "end-to-end code-sandbox MCP server with the real mcp client (as an ordinary user)"
as_user "$bin_dir/code-sandbox.sh" || status=1

step "end-to-end MCP gateway with the real mcp client and PyPI servers (as an ordinary user)"
as_user "$bin_dir/gateway.sh" || status=1

step "end-to-end: the real Claude Code against a fake Anthropic API (as an ordinary user)"
as_user "$bin_dir/agent-claude.sh" || status=1

step "end-to-end: the real mini-swe-agent against a fake OpenAI API (as an ordinary user)"
as_user "$bin_dir/agent-mini-swe.sh" || status=1

step "end-to-end as root: cgroup limits"
AIRLOCK="$bin_dir/airlock" bash tests/e2e/root-limits.sh || status=1
rm -rf "$bin_dir"
exit $status
