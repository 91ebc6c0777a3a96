#!/bin/bash
# End-to-end tests of the exec agent: every sandbox has one, outside its container, that starts
# `exec`'s commands (and the code sandbox's and the gateway's) in place of `runc exec`. A command
# it starts has exactly what `runc exec` gives (AIRLOCK_EXEC=runtime asks for that, the
# companion); exit statuses, a terminal with resize and Ctrl-C, and kill -9 of the agent, the
# supervisor and the CLI in the middle of a command. As an ordinary user, in the suites' shared
# state store. Prints "N passed, N failed".
set -uo pipefail
AIRLOCK="${AIRLOCK:-airlock}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

work="$(mktemp -d /var/tmp/airlock-exec-agent.XXXXXX)"
export AIRLOCK_HOME="$HOME/.airlock-e2e"
ws="$work/project"
mkdir -p "$ws"
name="exec-agent"
cleanup() {
    a rm -f "$name" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
status() { "$@" >/dev/null 2>&1; echo $?; }
state() { a inspect "$name" | python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }

a run -d --name "$name" shell "$ws" >/dev/null 2>"$work/run.err" || { fail "run -d" "$(tail -n 3 "$work/run.err")"; report; exit 1; }
dir=$(state stateDirectory)
expect "the sandbox has an exec agent, its socket in the sandbox's directory" "socket" \
    "$([ -S "$dir/exec.sock" ] && echo socket)"
expect "  which nothing inside sees" "absent" \
    "$(a exec "$name" -- sh -c "ls $dir/exec.sock >/dev/null 2>&1 && echo present || echo absent")"
agent_pid=$(pgrep -f "_exec-agent --state $AIRLOCK_HOME $name " | head -n 1)
expect "  and no process inside sees the agent" "0" \
    "$(a exec "$name" -- sh -c 'grep -l "[_]exec-agent" /proc/[0-9]*/cmdline 2>/dev/null | wc -l')"

echo "== a command gets exactly what runc exec gives it"
probe='grep -E "^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|Seccomp_filters):" /proc/self/status
sort /proc/self/cgroup
for n in cgroup ipc mnt net pid pid_for_children user uts; do readlink /proc/self/ns/$n; done
cat /proc/self/oom_score_adj /proc/self/limits; pwd; umask; id; env | sort | grep -v "^_="'
for who in agent root; do
    user=(); [ "$who" = root ] && user=(-u root)
    through_agent=$(a exec "${user[@]}" "$name" -- sh -c "$probe" 2>&1)
    through_runc=$(AIRLOCK_EXEC=runtime a exec "${user[@]}" "$name" -- sh -c "$probe" 2>&1)
    expect "as $who: status, capabilities, seccomp, cgroups, namespaces, limits, OOM score, cwd, env alike" \
        "$through_runc" "$through_agent"
    expect_match "  companion: the probe sees a filter and the user ($who)" "Seccomp:.2.*uid=$([ $who = root ] && echo 0 || echo 1000)" \
        "$(one_line <<<"$through_agent")"
done
# Which of the two ran it: the host parent of a running command.
a exec "$name" -- sleep 7 &
sleep 1
parent=$(ps -o ppid= -p "$(pgrep -n -f '^sleep 7$')" | tr -d ' ')
expect "companion: the command's parent on the host is the agent" "$agent_pid" "$parent"
wait
AIRLOCK_EXEC=runtime a exec "$name" -- sleep 6 &
sleep 1
parent=$(ps -o comm= -p "$(ps -o ppid= -p "$(pgrep -n -f '^sleep 6$')" | tr -d ' ')")
runtime=$(state runtime)
expect "  and with AIRLOCK_EXEC=runtime, the runtime's ($runtime)" "$runtime" "$parent"
wait

echo "== exit statuses through the agent"
for code in 0 3 42 255; do
    expect "exit $code" "$code" "$(status a exec "$name" -- sh -c "exit $code")"
done
expect "killed by SIGKILL: 137" "137" "$(status a exec "$name" -- sh -c 'kill -KILL $$')"
expect "killed by SIGTERM: 143" "143" "$(status a exec "$name" -- sh -c 'kill -TERM $$')"
expect "a missing command: 127" "127" "$(status a exec "$name" -- no-such-command-e2e)"
check_error "  in one line that names it" 'exec: "no-such-command-e2e"' a exec "$name" -- no-such-command-e2e
expect "a directory: 126" "126" "$(status a exec "$name" -- /etc)"
expect "a missing working directory: 125, in one line" "125" "$(status a exec -w /no/such/dir "$name" -- true)"
expect "standard input reaches the command with -i" "piped-in" "$(echo piped-in | a exec -i "$name" -- cat)"
expect "  and without -i it reads nothing" "" "$(echo piped-in | a exec "$name" -- cat)"
expect "standard error stays apart" "err" "$(a exec "$name" -- sh -c 'echo out; echo err >&2' 2>&1 >/dev/null)"

echo "== a terminal: -it under a real pty"
for mode in agent runtime; do
    env=(); [ "$mode" = runtime ] && env=(env AIRLOCK_EXEC=runtime)
    sizes=$("${env[@]}" python3 "$here/exec_tty.py" resize "$AIRLOCK" "$name" 2>&1 | tail -n 1)
    if [ "$mode" = runtime ] && [ "$(state runtime)" = crun ]; then
        # crun's own terminal does not follow a resize (README, "Exec").
        expect_match "$mode (crun): the size at start" "^24 80 / [0-9]+ [0-9]+ 0$" "$sizes"
    else
        expect "$mode: the size at start, and after the terminal grew (SIGWINCH)" "24 80 / 40 120 0" "$sizes"
    fi
    expect "$mode: Ctrl-C interrupts the command at once (130)" "130 0" \
        "$("${env[@]}" python3 "$here/exec_tty.py" interrupt "$AIRLOCK" "$name" 2>&1 | tail -n 1)"
done
expect "the terminal is the container's own, owned by the user" "/dev/pts agent" \
    "$(script -qec "$AIRLOCK exec -it $name -- sh -c 'dirname \$(tty); stat -c %U \$(tty)'" /dev/null < /dev/null | tr -d '\r' | sed 's/\^@//g' | xargs)"

echo "== kill -9 in the middle of a command"
"$AIRLOCK" exec "$name" -- sleep 301 &
cli=$!
sleep 1
kill -KILL "$cli"
wait "$cli" 2>/dev/null
sleep 1
expect "of the CLI: the command does not outlive it" "" "$(pgrep -f '^sleep 301$')"
a exec "$name" -- sleep 302 &
cli=$!
sleep 1
kill -KILL "$(pgrep -f "_exec-agent --state $AIRLOCK_HOME $name ")"
wait "$cli"
cli_status=$?
sleep 1
expect "of the agent: the command ends with it" "" "$(pgrep -f '^sleep 302$')"
expect "  and the CLI says so with a status of its own" "yes" "$([ "$cli_status" -ne 0 ] && echo yes)"
for _ in $(seq 50); do [ -S "$dir/exec.sock" ] && a exec "$name" -- true 2>/dev/null && break; sleep 0.1; done
expect "  the init starts another agent, and the next exec works" "again" "$(a exec "$name" -- echo again)"
expect_match "  a new agent" "^[0-9]+$" "$(pgrep -f "_exec-agent --state $AIRLOCK_HOME $name ")"
rm -f "$dir/exec.sock"
expect "without the agent's socket (a sandbox started before), exec uses runc exec" "fallback" \
    "$(a exec "$name" -- echo fallback)"
a exec "$name" -- sleep 303 &
cli=$!
sleep 1
kill -KILL "$(state supervisorPID)"
wait "$cli"
sleep 1
expect "of the supervisor: the command ends with the sandbox" "" "$(pgrep -f '^sleep 303$')"
check_error "  and the next exec says it is not running, in one line" "is not running" a exec "$name" -- true

report
