#!/bin/bash
# End-to-end tests of airlock's exit statuses (`airlock --help`, EXIT STATUS): `run` and `exec`
# return the command's status, 125 when Airlock failed, 126 when the command cannot be run and
# 127 when it is not found, as docker does; usage errors are 64 everywhere; the other commands
# have a status for each kind of failure. Runs as an ordinary user, in the suites' shared state
# store, in a real sandbox. Prints "N passed, N failed".
set -uo pipefail
AIRLOCK="${AIRLOCK:-airlock}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

work="$(mktemp -d /var/tmp/airlock-exit-codes.XXXXXX)"
# The shared state store of the ordinary-user suites: the shell image is built once.
export AIRLOCK_HOME="$HOME/.airlock-e2e"
ws="$work/project"
mkdir -p "$ws"
name="exit-codes"
cleanup() {
    a rm -f "$name" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
# status CMD...: the exit status of CMD, its output dropped.
status() { "$@" >/dev/null 2>&1; echo $?; }

echo "== the command's own status comes through"
for code in 0 3 42; do
    expect "run ... -- -c 'exit $code' exits $code" "$code" "$(status a run --name "$name" shell "$ws" -- -c "exit $code")"
done
for code in 0 3 42; do
    expect "exec ... exit $code exits $code" "$code" "$(status a exec "$name" -- sh -c "exit $code")"
done
expect "a command's own 125 is its own (the ambiguity docker has too)" "125" \
    "$(status a run --name "$name" shell "$ws" -- -c 'exit 125')"
expect "a command's own 255 is not taken for the runtime's failure" "255" \
    "$(status a exec "$name" -- sh -c 'exit 255')"

echo "== a command that cannot be started: 127 and 126, as shells and docker"
expect "a missing command exits 127" "127" "$(status a exec "$name" -- no-such-command-e2e)"
check_error "  with one line that names it" "no-such-command-e2e" a exec "$name" -- no-such-command-e2e
expect "a missing path exits 127" "127" "$(status a exec "$name" -- /no/such/program)"
a exec "$name" -- sh -c 'printf "#!/bin/sh\necho hi\n" > /tmp/script; chmod 644 /tmp/script'
expect "a file without execute permission exits 126" "126" "$(status a exec "$name" -- /tmp/script)"
check_error "  with one line that names it" "/tmp/script" a exec "$name" -- /tmp/script
expect "a directory exits 126" "126" "$(status a exec "$name" -- /tmp)"
expect "companion: the same file made executable runs" "hi" \
    "$(a exec "$name" -- sh -c 'chmod 755 /tmp/script && /tmp/script')"

echo "== Airlock's own failures in run and exec: 125"
expect "exec in an unknown sandbox exits 125" "125" "$(status a exec no-such-sandbox -- true)"
check_error "  with one line" "no sandbox named 'no-such-sandbox'" a exec no-such-sandbox -- true
expect "exec with a working directory that does not exist exits 125" "125" \
    "$(status a exec -w /no/such/dir "$name" -- true)"
expect "run of a workspace that does not exist exits 125" "125" \
    "$(status a run shell "$work/no-such-dir" -- -c true)"
a stop "$name" >/dev/null
expect "exec in a stopped sandbox exits 125" "125" "$(status a exec "$name" -- true)"
hint="$(a exec "$name" -- true 2>&1 | sed -n 's/.*(start it with: \(.*\))$/\1/p')"
expect "its hint names the sandbox (made with --name, not the default name)" \
    "airlock run --name $name shell $ws" "$hint"
count="$(a ls -q | wc -l)"
expect "companion: the hint runs a sandbox (exit 0)" "0" "$(status eval "${hint/#airlock/a} -- -c true")"
expect "the hint started that sandbox, not a second one" "$count" "$(a ls -q | wc -l)"
a stop "$name" >/dev/null 2>&1

echo "== usage errors: 64 for every command"
expect "exec with an unknown option exits 64" "64" "$(status a exec --no-such-option "$name" -- true)"
check_error "  with one line" "unknown option '--no-such-option'" a exec --no-such-option "$name" -- true
expect "run with an unknown option exits 64" "64" "$(status a run --no-such-option shell "$ws")"
expect "exec without a command exits 64" "64" "$(status a exec "$name")"
expect "ls with an unknown option exits 64" "64" "$(status a ls --no-such-option)"
expect "a bad value (sandbox name) exits 64" "64" "$(status a create --name 'Bad Name' shell "$ws")"

echo "== other commands: a status for each kind of failure"
expect "rm of an unknown sandbox exits 3 (not found)" "3" "$(status a rm no-such-sandbox)"
expect "companion: rm of this one exits 0" "0" "$(status a rm "$name")"

report
