#!/bin/bash
# The whole test suite: format lint, build with warnings as errors, unit tests, and the
# end-to-end suite in real sandboxes, run as an ordinary user this script creates.
# Usage (as root or with sudo): scripts/test.sh
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
[ "$(id -u)" = 0 ] || exec sudo -E "$0" "$@"

# Each step says how far into the run it starts, so a slow one shows in the log.
step() { printf '\n== [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }
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

# The Debian 12 VM that runs the limits suite on cgroup v2 with systemd (this host has v1 and no
# systemd): its image is built while the rest runs (mmdebstrap, a couple of minutes).
vm_cache=/var/tmp/airlock-vm-cache
vm_build_log=$(mktemp /tmp/airlock-vm-build.XXXXXX)
tests/vm/cgroup2-vm.sh --cache "$vm_cache" --build-only >"$vm_build_log" 2>&1 &
vm_build=$!

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
# Every suite and helper: a suite finds its helpers beside it.
install -m 755 tests/e2e/*.sh tests/e2e/*.py "$bin_dir/"
install -m 644 tests/e2e/lib.sh "$bin_dir/lib.sh"
# Limits for the ordinary user, and the git guard's /dev/fuse, set up as scripts/install.sh
# sets them up for a user.
scripts/cgroup-delegate.sh "$user"
scripts/fuse-access.sh
# Transparent capture is tested against upstreams on host ports 80 and 443, which the
# ordinary user may bind for the length of the run.
port_start=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)
# 80 is this script's own value: a run that was killed left it. The kernel's default is 1024.
[ "$port_start" = 80 ] && port_start=1024
echo 80 > /proc/sys/net/ipv4/ip_unprivileged_port_start
# A test CA in the host's trust store (as a company's TLS-inspecting proxy's would be), with a
# server certificate it signed for the suite's upstream; both gone when the run ends.
host_ca_dir=$(mktemp -d /tmp/airlock-e2e-host-ca.XXXXXX)
tests/e2e/certs.sh "$host_ca_dir" "DNS:corp.test,IP:127.0.0.1"
rm -f "$host_ca_dir/ca.key"
chmod 755 "$host_ca_dir" && chmod 644 "$host_ca_dir"/*
host_ca=/usr/local/share/ca-certificates/airlock-e2e-test-ca.crt
install -m 644 "$host_ca_dir/ca.pem" "$host_ca"
update-ca-certificates >/dev/null 2>&1
restore() {
    echo "$port_start" > /proc/sys/net/ipv4/ip_unprivileged_port_start
    rm -f "$host_ca" && update-ca-certificates --fresh >/dev/null 2>&1
    rm -rf "$host_ca_dir"
}
trap restore EXIT
status=0
as_user() {
    runuser -u "$user" -- env -i HOME="/home/$user" PATH="/usr/local/bin:/usr/bin:/bin" LANG=C.UTF-8 \
        AIRLOCK="$bin_dir/airlock" AIRLOCK_E2E_HOST_CA="$host_ca_dir" AIRLOCK_RUNTIME="${AIRLOCK_RUNTIME:-}" \
        AIRLOCK_HOME="${AIRLOCK_HOME:-}" bash "$@"
}
# The gVisor lane's own state, so its suites' clean-ups and counts never meet the other lane's
# (and no prefix of the other's path, which the suites' pgrep patterns hold).
gvisor_home="/home/$user/.airlock-gvisor-e2e"
# A run that was killed (a cancelled CI, a reboot) may have left the e2e user's sandboxes; the
# suites count what they make, so they start from none.
for home in "/home/$user/.airlock-e2e" "$gvisor_home"; do
    as_user -c "export AIRLOCK_HOME=$home"'; for n in $("$AIRLOCK" ls -q); do "$AIRLOCK" rm -f "$n"; done' >/dev/null 2>&1
done
as_user "$bin_dir/sandbox.sh" || status=$?

# crun is the default where it runs (it does here); runc stays the fallback, so the suites
# that cover the runtime's whole surface run under it too.
step "end-to-end under runc, the fallback runtime: the sandbox (as an ordinary user)"
AIRLOCK_RUNTIME=runc as_user "$bin_dir/sandbox.sh" || status=1

# Before the second lane starts: the killed template build's check counts the user's build-like
# processes (mmdebstrap, apt, tar, sh -c), which the lane's own template build would add to.
step "end-to-end: the proxy under load and stalls (as an ordinary user)"
as_user "$bin_dir/load.sh" || status=1

# The gVisor tier (--isolation gvisor, runsc): the suites of what an agent meets and what
# attacks it, again on gVisor's kernel. What gVisor cannot do is refused in one line (each
# suite checks that) and listed in the README. The suites that need no low host port run in a
# lane of their own beside the container tier's (their state apart, the image copied, not
# rebuilt); those that bind ports 80/443 run after it. The lane's log is shown when it ends.
step "end-to-end under gVisor, in a second lane: sandbox, code sandbox, gateway (log shown when it ends)"
install -d -o "$user" -g "$user" -m 700 "$gvisor_home"
cp -a "/home/$user/.airlock-e2e/images" "$gvisor_home/" 2>/dev/null || true
find "$gvisor_home/images" -maxdepth 1 -name '.*.lock' -delete 2>/dev/null || true
gvisor_log=$(mktemp /tmp/airlock-e2e-gvisor.XXXXXX)
(
    lane=0
    for suite in sandbox code-sandbox gateway; do
        printf -- '-- [%dm%02ds] %s.sh under gVisor\n' $((SECONDS / 60)) $((SECONDS % 60)) "$suite"
        AIRLOCK_HOME="$gvisor_home" AIRLOCK_RUNTIME=runsc as_user "$bin_dir/$suite.sh" || lane=1
    done
    exit $lane
) >"$gvisor_log" 2>&1 &
gvisor_lane=$!

step "end-to-end: a sandbox that behaves like a real machine (as an ordinary user)"
as_user "$bin_dir/machine.sh" || status=1

step "end-to-end: limits for an ordinary user, on this host's cgroup v1 (as an ordinary user)"
as_user "$bin_dir/limits.sh" || status=1

step "end-to-end egress (as an ordinary user)"
as_user "$bin_dir/egress.sh" || status=1

step "end-to-end: a malformed policy file (as an ordinary user)"
as_user "$bin_dir/policy-errors.sh" || status=1

step "end-to-end: published ports (as an ordinary user)"
as_user "$bin_dir/ports.sh" || status=1

step "end-to-end: airlock cp (as an ordinary user)"
as_user "$bin_dir/copy.sh" || status=1

step "end-to-end: airlock fork and save (as an ordinary user)"
as_user "$bin_dir/fork-save.sh" || status=1

step "end-to-end: exit statuses (as an ordinary user)"
as_user "$bin_dir/exit-codes.sh" || status=1

step "end-to-end: the exec agent (as an ordinary user)"
as_user "$bin_dir/exec-agent.sh" || status=1

step "end-to-end under runc, the fallback runtime: the exec agent (as an ordinary user)"
AIRLOCK_RUNTIME=runc as_user "$bin_dir/exec-agent.sh" || status=1

step "end-to-end: the git guard against git itself (as an ordinary user)"
as_user "$bin_dir/git-guard.sh" || status=1

step "end-to-end: container images from a registry, an OCI layout and a docker-archive (as an ordinary user)"
as_user "$bin_dir/images.sh" || status=1

step "end-to-end: a private Docker engine in the sandbox, --docker (as an ordinary user)"
as_user "$bin_dir/docker.sh" || status=1

step "end-to-end under gVisor, the second lane's log"
gvisor_status=0
wait "$gvisor_lane" || gvisor_status=$?
cat "$gvisor_log" && rm -f "$gvisor_log"
[ "$gvisor_status" = 0 ] || { echo "FAIL: the gVisor lane (status $gvisor_status)"; status=1; }

step "end-to-end code-sandbox MCP server with the real mcp client (as an ordinary user)"
as_user "$bin_dir/code-sandbox.sh" || status=1

step "end-to-end MCP gateway with the real mcp client and PyPI servers (as an ordinary user)"
as_user "$bin_dir/gateway.sh" || status=1

step "end-to-end: mcp client connect, nine clients' settings files and the real Claude Code (as an ordinary user)"
as_user "$bin_dir/mcp-clients.sh" || status=1

step "end-to-end: OAuth for a remote MCP server, authorize, renew, revoke (as an ordinary user)"
as_user "$bin_dir/mcp-oauth.sh" || status=1

step "end-to-end: the real Claude Code against a fake Anthropic API (as an ordinary user)"
as_user "$bin_dir/agent-claude.sh" || status=1

step "end-to-end: the real mini-swe-agent against a fake OpenAI API (as an ordinary user)"
as_user "$bin_dir/agent-mini-swe.sh" || status=1

step "end-to-end under gVisor (--isolation gvisor): egress and agents, which bind host ports 80/443 (as an ordinary user)"
for suite in egress agent-claude agent-mini-swe; do
    printf -- '-- [%dm%02ds] %s.sh under gVisor\n' $((SECONDS / 60)) $((SECONDS % 60)) "$suite"
    AIRLOCK_RUNTIME=runsc as_user "$bin_dir/$suite.sh" || status=1
done

step "end-to-end as root: images against Docker itself (docker save, docker run), Airlock as an ordinary user"
AIRLOCK="$bin_dir/airlock" E2E_USER="$user" bash tests/e2e/images-docker.sh || status=1

step "end-to-end as root: cgroup limits"
AIRLOCK="$bin_dir/airlock" bash tests/e2e/root-limits.sh || status=1

# The same user, with the same uid and subordinate ids, logs in with `su -` to a Debian 12 VM
# that boots systemd on pure cgroup v2 (qemu; TCG where KVM cannot run it), and runs limits.sh
# there against the shell image built above (copied in, owners kept: the VM has no network).
step "end-to-end: limits on cgroup v2 with systemd, in a Debian 12 VM (as an ordinary user logged in there)"
if wait "$vm_build"; then
    IFS=: read -r _ sub_start sub_count < <(grep "^$user:" /etc/subuid | head -n 1)
    shell_digest=$(as_user -c 'AIRLOCK_HOME=$HOME/.airlock-e2e "$AIRLOCK" template ls' | awk '$1 == "shell" {print $3}')
    shell_image=$(ls -d "/home/$user/.airlock-e2e/images/${shell_digest:-none}"* | head -n 1)
    store="/home/$user/.airlock-e2e"
    tests/vm/cgroup2-vm.sh --cache "$vm_cache" --user "$user" --uid "$(id -u "$user")" \
        --subids "$sub_start-$((sub_start + sub_count - 1))" \
        --copy "$bin_dir/airlock:/usr/local/bin/airlock" --copy "$bin_dir/limits.sh:/opt/e2e/limits.sh" \
        --copy "$bin_dir/lib.sh:/opt/e2e/lib.sh" --copy "$shell_image:$shell_image" \
        --root-setup "chown $user: $store $store/images && chmod 700 $store" \
        -- 'AIRLOCK=/usr/local/bin/airlock bash /opt/e2e/limits.sh' || status=1
else
    cat "$vm_build_log"
    echo "FAIL: the VM image for the cgroup v2 suite could not be built"
    status=1
fi
rm -f "$vm_build_log"
rm -rf "$bin_dir"
step "done in $((SECONDS / 60)) min, status $status"
exit $status
