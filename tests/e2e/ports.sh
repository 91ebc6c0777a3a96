#!/bin/bash
# End-to-end tests of published ports (`--publish`, `airlock port`), as an ordinary user: real
# servers inside real sandboxes (tests/e2e/port_peer.py), reached from the host through the
# supervisor's listeners; WebSocket, a long-lived connection and 200 clients at once; and, from
# the attacker's side, that a published port gives the sandbox no way to the host or the
# network, each next to a companion showing the probe works where it should.
# Prints "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
AIRLOCK="${AIRLOCK:-airlock}"
export AIRLOCK_HOME="$HOME/.airlock-e2e"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

ws="$HOME/e2e-ports"
name="shell-e2e-ports"
bare="e2e-ports-none"
work="$(mktemp -d /tmp/airlock-ports.XXXXXX)"
host_pids=()
cleanup() {
    for sandbox in "$name" "$bare" e2e-ports-busy; do a rm -f "$sandbox" >/dev/null 2>&1; done
    for pid in "${host_pids[@]}"; do kill "$pid" 2>/dev/null; done
    rm -rf "$ws" "$work"
}
trap cleanup EXIT
for sandbox in "$name" "$bare" e2e-ports-busy; do a rm -f "$sandbox" >/dev/null 2>&1; done
rm -rf "$ws" && mkdir -p "$ws" && cp "$here/port_peer.py" "$ws/"
peer() { python3 "$here/port_peer.py" "$@"; }
# A free host port: bound and released, so the next listener can have it.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# serve_inside SANDBOX BIND PORT MARKER: a server inside, detached from the exec.
serve_inside() {
    a exec "$1" -- bash -c "setsid python3 $ws/port_peer.py serve $2 $3 $4 > /tmp/serve-$3.log 2>&1 < /dev/null &"
    for _ in $(seq 50); do
        a exec "$1" -- grep -q listening "/tmp/serve-$3.log" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
# host_get PORT: what the server behind the host's 127.0.0.1:PORT answers (empty if nothing).
host_get() { peer get 127.0.0.1 "$1" 2>/dev/null; }

p_any=$(free_port)
p_local=$(free_port)
p_eighty=$(free_port)

echo "== publish at run, then on the running sandbox"
a template build shell >/dev/null || { fail "template build shell"; report; exit 1; }
a run -d --name "$name" --publish "$p_any:8000" shell "$ws" >/dev/null 2>"$work/run.err"
expect "run -d --publish starts the sandbox" "0" "$?"
serve_inside "$name" 0.0.0.0 8000 inside-any || fail "server on 0.0.0.0:8000 inside" "$(a exec "$name" -- cat /tmp/serve-8000.log)"
expect_match "a server on 0.0.0.0 inside is reached from the host" "^inside-any from 127\.0\.0\.1" "$(host_get "$p_any")"
out=$(a port "$name" publish "$p_local:8001" 2>&1)
expect "port publish prints where it listens" "127.0.0.1:$p_local -> 8001" "$out"
serve_inside "$name" 127.0.0.1 8001 inside-loopback || fail "server on 127.0.0.1:8001 inside"
expect_match "a server on 127.0.0.1 inside is reached" "^inside-loopback from 127\.0\.0\.1" "$(host_get "$p_local")"
a port "$name" publish "$p_eighty:80" >/dev/null
serve_inside "$name" :: 80 inside-eighty || fail "server on [::]:80 inside (as the agent)" "$(a exec "$name" -- cat /tmp/serve-80.log)"
expect_match "a server on [::]:80 inside, started by the agent, is reached" "^inside-eighty from" "$(host_get "$p_eighty")"
expect "the agent is not root (port 80 needed no sudo)" "agent" "$(a exec "$name" -- id -un)"
picked=$(a port "$name" publish 8000 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["hostPort"])')
expect_match "HOSTPORT 0 picks a free host port" "^inside-any" "$(host_get "$picked")"

echo "== port ls"
ls_out=$(a port "$name" ls | sort)
want=$(printf '%s\n' "127.0.0.1:$p_any -> 8000" "127.0.0.1:$p_local -> 8001" "127.0.0.1:$p_eighty -> 80" \
    "127.0.0.1:$picked -> 8000" | sort)
expect "ls shows each published port" "$want" "$ls_out"
expect "ls --json: four, all listening" "4 True" \
    "$(a port "$name" ls --json | python3 -c 'import json,sys; p=json.load(sys.stdin); print(len(p), all(x["listening"] for x in p))')"
expect_match "airlock ls shows them" "127\.0\.0\.1:$p_any->8000" "$(a ls | grep "^$name ")"
expect "inspect keeps them with the sandbox" "4" \
    "$(a inspect "$name" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["ports"]))' 2>/dev/null)"

echo "== what a real client does through it"
ws_out=$(peer websocket 127.0.0.1 "$p_any" 3 2>&1 | one_line)
expect "a WebSocket upgrade and three messages" "101 accept-ok echo message 0 echo message 1 echo message 2" "$ws_out"
expect "a connection held 12 s with idle gaps stays up" "held 4" "$(peer hold 127.0.0.1 "$p_any" 12 2>&1)"
expect "200 clients at once all get their answer" "ok 200 of 200" "$(peer concurrent 127.0.0.1 "$p_any" 200 2>&1)"
big=$(head -c 20000000 /dev/urandom | base64 -w0 | head -c 20000000 | tee "$work/big" | wc -c)
cp "$work/big" "$ws/big"
a exec "$name" -- bash -c "setsid python3 -m http.server 8002 --directory $ws > /dev/null 2>&1 < /dev/null &"
p_big=$(free_port)
a port "$name" publish "$p_big:8002" >/dev/null
sleep 0.5
expect "20 MB through it arrive whole" "$(sha256sum < "$work/big" | cut -c1-64)" \
    "$(curl -s --max-time 30 "http://127.0.0.1:$p_big/big" | sha256sum | cut -c1-64)"
rm -f "$ws/big"

echo "== unpublish closes at once"
a port "$name" unpublish "$p_local" >/dev/null
expect "nothing answers on the host port right after unpublish" "" "$(host_get "$p_local")"
expect "  and ls no longer shows it" "" "$(a port "$name" ls | grep -- "-> 8001")"
expect "  the other ports stay" "inside-any" "$(host_get "$p_any" | cut -d' ' -f1)"

echo "== bad input: one line each, nothing changed"
before=$(a port "$name" ls)
check_error "a bad spec" "invalid port" a port "$name" publish 1:2:3:4
check_error "a port number out of range" "not a port number" a port "$name" publish 8080:70000
check_error "a host address that is not an IP" "not an IP address" a port "$name" publish nohost:8080:80
holder_port=$(free_port)
python3 -c "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',$holder_port)); s.listen(); time.sleep(600)" &
host_pids+=($!)
sleep 0.3
check_error "a host port in use" "already in use" a port "$name" publish "$holder_port:8000"
check_error "a host port this sandbox publishes" "already publishes" a port "$name" publish "$p_any:9000"
check_error "unpublish of a port not published" "publishes nothing on host port" a port "$name" unpublish 1
expect "  and the ports are as they were" "$before" "$(a port "$name" ls)"
check_error "run --publish of a port in use" "already in use" \
    a run -d --name e2e-ports-busy --publish "$holder_port:80" shell "$ws"
expect "  and no sandbox was made" "" "$(a ls -q | grep -x e2e-ports-busy)"
check_error "run --publish with a bad spec" "invalid port" a run -d --name e2e-ports-busy --publish 80:x shell "$ws"

echo "== stop closes them, run opens them again"
a stop "$name" >/dev/null
expect "after stop nothing answers" "" "$(host_get "$p_any")"
expect_match "ls says they are closed" "closed: the sandbox is stopped" "$(a port "$name" ls | head -1)"
a port "$name" unpublish 0:8000 >/dev/null
expect "a stopped sandbox's port on a host port picked at start is unpublished as 0:PORT" "" \
    "$(a port "$name" ls | grep -- ':0 -> 8000')"
a run -d --name "$name" shell "$ws" >/dev/null
serve_inside "$name" 0.0.0.0 8000 again >/dev/null
expect_match "after run the same host port reaches the new server" "^again from" "$(host_get "$p_any")"
serve_inside "$name" :: 80 again-eighty >/dev/null
expect_match "  and port 80 too (capture leaves it to the sandbox)" "^again-eighty" "$(host_get "$p_eighty")"

echo "== from the attacker's side"
# A service only the host should reach, on host loopback.
host_only=$(free_port)
python3 -m http.server "$host_only" --bind 127.0.0.1 --directory "$work" >/dev/null 2>&1 &
host_pids+=($!)
echo host-secret > "$work/secret.txt"
sleep 0.5
expect "companion: the host reaches its own service" "host-secret" \
    "$(curl -s --max-time 5 "http://127.0.0.1:$host_only/secret.txt")"
host_addr=$(hostname -I 2>/dev/null | awk '{print $1}')
probe_inside() {
    a exec "$name" -- python3 -c "
import socket, sys
for host in sys.argv[2:]:
    try:
        s = socket.create_connection((host, int(sys.argv[1])), timeout=3)
        s.sendall(b'GET /secret.txt HTTP/1.0\r\n\r\n')
        print(host, 'reached', s.recv(4096).split(b'\r\n\r\n')[-1].decode().strip())
    except OSError as e:
        print(host, 'refused')
" "$@" 2>&1 | one_line
}
expect "the sandbox cannot reach the host's service, published ports or not" \
    "127.0.0.1 refused ${host_addr:-127.0.0.1} refused" "$(probe_inside "$host_only" 127.0.0.1 "${host_addr:-127.0.0.1}")"
expect "the host side of a published port is not a way out: dialled from inside it leads nowhere" \
    "127.0.0.1 refused ${host_addr:-127.0.0.1} refused" "$(probe_inside "$p_any" 127.0.0.1 "${host_addr:-127.0.0.1}")"
expect_match "  companion: from the host the same port answers" "^again" "$(host_get "$p_any")"
# With port 80 left to the sandbox, a program that ignores the proxy and dials an outside
# address on 80 reaches the sandbox's own server, never the network, and nothing is logged out.
out=$(a exec "$name" -- curl -s --noproxy '*' --max-time 5 http://198.51.100.7/ 2>&1)
expect_match "plain HTTP to an outside address on port 80 lands on the sandbox's own server" "^again-eighty" "$out"
expect "  and the network log shows no connection to it" "0" \
    "$(a network log "$name" --json | grep -c 198.51.100.7)"
out=$(a exec "$name" -- sudo python3 -c "
import socket
s = socket.socket(); s.settimeout(3)
try:
    s.connect(('127.0.0.1', $p_any)); print('reached')
except OSError: print('refused')
" 2>&1)
expect "root inside cannot dial the host side either" "refused" "$out"

echo "== a sandbox with no network: its ports work, it still has no way out"
p_none=$(free_port)
a run -d --name "$bare" --network none --publish "$p_none:8000" shell "$ws" >/dev/null
serve_inside "$bare" 0.0.0.0 8000 inside-none >/dev/null
expect_match "a --network none sandbox's server is reached from the host" "^inside-none" "$(host_get "$p_none")"
expect "  and it reaches nothing outside" "127.0.0.1 refused" "$(name=$bare probe_inside "$host_only" 127.0.0.1)"
a rm -f "$bare" >/dev/null
expect "rm closes its port" "" "$(host_get "$p_none")"

report
