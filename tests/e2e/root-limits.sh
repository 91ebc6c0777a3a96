#!/bin/bash
# End-to-end checks of cgroup limits, which this host (cgroup v1/hybrid) allows only to root.
# Run as root by scripts/test.sh after the ordinary-user suite. Each limit is hit inside a real
# sandbox, next to a companion that shows the same probe succeeds under the limit.
set -uo pipefail
AIRLOCK="${AIRLOCK:-airlock}"
export AIRLOCK_HOME="${AIRLOCK_HOME:-/var/tmp/airlock-e2e-root}"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ws=$(mktemp -d /var/tmp/airlock-e2e-root-ws.XXXXXX)
cleanup() { a reset -f >/dev/null 2>&1; rm -rf "$ws"; }
trap cleanup EXIT

support=$(a doctor --json | python3 -c 'import json,sys; c=[c for c in json.load(sys.stdin) if c["name"]=="cgroups"][0]; print(c["level"])')
if [ "$support" != ok ]; then
    echo "cgroup limits not available to root on this host ($support); skipping"
    report
    exit
fi

a create --name lim --memory 64m --pids 40 --cpus 0.5 shell "$ws" >/dev/null
in_lim() { a run --name lim shell "$ws" -- -c "$1"; }
expect "memory balloon past --memory is killed" "137" "$(in_lim 'python3 -c "b=bytearray(200*1024*1024)" 2>/dev/null; echo $?')"
expect "companion: an allocation under the limit works" "ok" "$(in_lim 'python3 -c "b=bytearray(16*1024*1024); print(\"ok\")"')"
forks() { in_lim "$(fork_probe "$1")"; }
expect "forking past --pids fails" "refused" "$(forks 60)"
expect "companion: forks under the limit work" "all-started" "$(forks 10)"
group=$(a inspect lim | python3 -c 'import json,sys; print(json.load(sys.stdin)["limits"]["cgroup"])')
expect "--cpus sets the CFS quota" "50000 100000" "$(cat /sys/fs/cgroup/cpu$group/cpu.cfs_quota_us /sys/fs/cgroup/cpu$group/cpu.cfs_period_us | xargs)"
expect "inspect says the limits are enforced" "True" "$(a inspect lim | python3 -c 'import json,sys; print(json.load(sys.stdin)["limits"]["enforced"])')"
expect "workspace files belong to the invoking user (root)" "root" "$(in_lim 'touch owned; echo done' >/dev/null; stat -c %U "$ws/owned")"
root_host=$(a exec -u root lim -- cat /proc/self/uid_map | awk '$1==0{print $2}')
if [ "$root_host" -ge 65536 ]; then pass "root inside is an unprivileged host id ($root_host)"; else fail "root inside is an unprivileged host id" "$root_host"; fi
a stop lim >/dev/null
expect "stop releases the cgroups" "gone" "$(test -d "/sys/fs/cgroup/memory$group" && echo present || echo gone)"

report
