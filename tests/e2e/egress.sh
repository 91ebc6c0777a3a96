#!/bin/bash
# End-to-end tests of a sandbox's way out: the explicit proxy, transparent capture, the DNS
# stub, the policy and its live changes, and the network log. Runs as an ordinary user, in real
# sandboxes, against test upstreams on host loopback (tests/e2e/upstream.py): a denied request
# is checked to fail next to a companion that shows the same probe passing where it may.
# Ports 80 and 443 on the host are needed for transparent capture; scripts/test.sh lets
# ordinary users bind them for the run. Prints "N passed, N failed".
set -uo pipefail
AIRLOCK="${AIRLOCK:-airlock}"
export AIRLOCK_HOME="$HOME/.airlock-e2e"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

work="$(mktemp -d /tmp/airlock-egress.XXXXXX)"
ws="$HOME/egress-project"
name="egress"
upstream_pid=""
cleanup() {
    for sandbox in "$name" offline; do a rm -f "$sandbox" >/dev/null 2>&1; done
    [ -n "$upstream_pid" ] && kill "$upstream_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
for sandbox in "$name" offline; do a rm -f "$sandbox" >/dev/null 2>&1; done
rm -rf "$ws" && mkdir -p "$ws"

echo "== test upstreams on host loopback"
"$here/certs.sh" "$work" "DNS:allowed.test,DNS:other.test,DNS:counted.test,DNS:api.anthropic.com"
cp "$work/ca.pem" "$ws/test-ca.pem"
low_ports=()
if [ "$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)" -le 80 ]; then
    low_ports=(--http 80 --https "443:$work/server.pem:$work/server.key")
fi
python3 "$here/upstream.py" --http 18080 --https "18443:$work/server.pem:$work/server.key" "${low_ports[@]}" \
    --dns 15353 --dns-log "$work/dns.log" --connect-proxy 13128 --connect-log "$work/connect.log" \
    > "$work/upstream.out" 2>&1 &
upstream_pid=$!
for _ in $(seq 50); do grep -q ready "$work/upstream.out" 2>/dev/null && break; sleep 0.1; done
expect "upstreams are up" "ready" "$(cat "$work/upstream.out")"
touch "$work/dns.log"
# Names resolve on the host through the counting DNS server (it answers 127.0.0.1).
export AIRLOCK_DNS_SERVER=127.0.0.1:15353

# A key in the host environment at create is taken by the sandbox for its proxy to inject.
real_key="sk-ant-e2e-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
ANTHROPIC_API_KEY="$real_key" a create shell "$ws" --name "$name" --allow-host allowed.test \
    --allow-host other.test --allow-host counted.test --add-host api.anthropic.com:127.0.0.1 \
    >/dev/null 2>"$work/create.err" || fail "create with network flags" "$(cat "$work/create.err")"
# The proxy trusts the test CA for upstream TLS, as it would a corporate proxy's.
export AIRLOCK_UPSTREAM_CA_FILE="$work/ca.pem"
sh_in() { a exec "$name" -- bash -c "$1"; }
a run -d shell "$ws" --name "$name" >/dev/null 2>&1

echo "== the sandbox's settings"
expect "HTTPS_PROXY points at the sandbox's proxy" "http://127.0.0.1:3128" "$(sh_in 'echo $HTTPS_PROXY')"
expect "https_proxy too" "http://127.0.0.1:3128" "$(sh_in 'echo $https_proxy')"
expect "npm, pip and yarn settings" "3" \
    "$(sh_in 'env | grep -cE "^(npm_config_https_proxy|PIP_PROXY|YARN_HTTPS_PROXY)=http://127.0.0.1:3128$"')"
expect "git's proxy" "http://127.0.0.1:3128" "$(sh_in 'git config --get http.proxy')"
expect_match "apt's proxy" 'Acquire::http::Proxy "http://127.0.0.1:3128"' "$(sh_in 'apt-config dump | grep -i "Acquire::http::Proxy "')"
expect "resolv.conf names the stub" "nameserver 127.0.0.1" "$(sh_in 'grep ^nameserver /etc/resolv.conf')"
expect "still only loopback" "lo" "$(sh_in 'tail -n +3 /proc/net/dev | cut -d: -f1 | xargs')"
expect "inspect shows the network and the sandbox's rules" "policy allowed.test" \
    "$(a inspect "$name" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["network"], r["networkPolicy"]["allowHosts"][0])')"

echo "== addresses are checked after resolution, in every spelling"
body=$(sh_in 'curl -s http://allowed.test:18080/')
expect_match "allowed name resolving to 127.0.0.1 is blocked" "^Blocked by airlock network policy: allowed.test:18080" "$body"
expect_match "  with the reason" "loopback" "$body"
# Sent raw, so the proxy sees each spelling as written (curl would normalise it first).
for literal in 2130706433 0x7f000001 127.1 '[::ffff:7f00:1]' 169.254.169.254 0177.0.0.1 '[::ffff:127.0.0.1]'; do
    body=$(sh_in "python3 -c '
import socket; s = socket.create_connection((\"127.0.0.1\", 3128))
s.sendall(b\"GET http://$literal:18080/ HTTP/1.1\\r\\nHost: $literal:18080\\r\\n\\r\\n\"); print(s.recv(4096).decode())' | sed -n '/^Blocked/p'")
    expect_match "IP literal $literal is blocked" "^Blocked by airlock network policy" "$body"
done
expect "curl's own spelling of 2130706433 through the proxy is blocked too" "403" \
    "$(sh_in 'curl -s --noproxy "" -o /dev/null -w "%{http_code}" http://2130706433:18080/')"
expect_match "metadata name is blocked" "^Blocked by airlock network policy: metadata.google.internal:80" \
    "$(sh_in 'curl -s http://metadata.google.internal/')"

echo "== a live policy change applies to the next request"
a network policy "$name" --allow-cidr 127.0.0.1/32 >/dev/null
expect "allowed host through the proxy after --allow-cidr" "http:18080 allowed.test:18080" \
    "$(sh_in 'curl -s http://allowed.test:18080/ | python3 -c "import json,sys; e=json.load(sys.stdin); print(e[\"server\"], e[\"host\"])"')"
expect "companion: 127.1 reaches the same server once allowed" "200" \
    "$(sh_in 'curl -s --noproxy "" -o /dev/null -w "%{http_code}" http://127.1:18080/')"
expect_match "network policy --show lists the range" "allow CIDRs: +127.0.0.1/32" "$(a network policy "$name" --show)"

echo "== denied hosts"
body=$(sh_in 'curl -s http://denied.test:18080/some/path')
expect_match "denied host gets the 403 body" "^Blocked by airlock network policy: denied.test:18080" "$body"
expect_match "  naming the policy" "not allowed by the balanced policy" "$body"
expect "denied host: status 403" "403" "$(sh_in 'curl -s -o /dev/null -w "%{http_code}" http://denied.test:18080/')"
expect "CONNECT to a denied host is refused with 403" "403" \
    "$(sh_in 'curl -s -o /dev/null -w "%{http_connect}" https://denied.test:18443/')"

echo "== HTTPS through CONNECT"
expect "allowed host over HTTPS through the proxy" "https:18443" \
    "$(sh_in 'curl -s --cacert test-ca.pem https://allowed.test:18443/ | python3 -c "import json,sys; print(json.load(sys.stdin)[\"server\"])"')"

echo "== DNS: a denied name is never resolved"
: > "$work/dns.log"
expect "getent hosts of a denied name fails" "failed" "$(sh_in 'getent hosts denied-exfil.test >/dev/null && echo resolved || echo failed')"
expect "nslookup-style query of a denied name: no address" "" "$(sh_in 'getent ahostsv4 secret-data.denied-exfil.test')"
expect "the test DNS server saw no query for it" "0" "$(grep -c denied-exfil "$work/dns.log")"
expect_match "an allowed name resolves to a synthetic address" "^198\.1[89]\." "$(sh_in 'getent hosts allowed.test' | awk '{print $1}')"
sh_in 'curl -s -o /dev/null http://counted.test:18080/' >/dev/null
expect "companion: the proxy's resolution of an allowed name reaches the DNS server" "1" \
    "$(grep -c '^counted.test$' "$work/dns.log")"
expect "DNS over TCP works too" "ok" "$(sh_in 'python3 - <<EOF
import socket, struct
q = struct.pack(">HHHHHH", 7, 0x100, 1, 0, 0, 0) + b"\x07allowed\x04test\x00\x00\x01\x00\x01"
s = socket.create_connection(("127.0.0.1", 53)); s.sendall(struct.pack(">H", len(q)) + q)
r = s.recv(512); print("ok" if r[2:4] == q[:2] and (r[5] & 0xf) == 0 else "bad")
EOF')"

echo "== Host and SNI must match the target"
body=$(sh_in 'curl -s -H "Host: other.test" http://allowed.test:18080/')
expect_match "a Host header naming another host is refused" "^Blocked by airlock network policy: allowed.test:18080" "$body"
expect_match "  saying why" "does not match" "$body"
sni() {
    sh_in "python3 - <<EOF
import socket, ssl
s = socket.create_connection(('127.0.0.1', 3128))
s.sendall(b'CONNECT allowed.test:18443 HTTP/1.1\r\nHost: allowed.test:18443\r\n\r\n')
assert b' 200 ' in s.recv(1024)
c = ssl.create_default_context(cafile='test-ca.pem'); c.check_hostname = False
try:
    t = c.wrap_socket(s, server_hostname='$1'); t.sendall(b'GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n')
    print('handshake' if t.recv(100) else 'closed')
except (ssl.SSLError, OSError) as e:
    print('refused')
EOF"
}
expect "a tunnel whose SNI names another host is closed" "refused" "$(sni other.test)"
expect "companion: the matching SNI completes the handshake" "handshake" "$(sni allowed.test)"

tunnel() {
    sh_in "python3 - <<EOF
import socket
s = socket.create_connection(('127.0.0.1', 3128))
s.sendall(b'CONNECT allowed.test:18080 HTTP/1.1\\r\\nHost: allowed.test:18080\\r\\n\\r\\n')
assert b' 200 ' in s.recv(1024)
s.sendall(b'$1')
print((s.recv(200).split(b'\\r\\n')[0] or b'closed').decode())
EOF"
}
expect_match "plain HTTP through CONNECT with another Host is refused" "^HTTP/1.1 403 Forbidden" \
    "$(tunnel 'GET / HTTP/1.1\\r\\nHost: attacker.example\\r\\n\\r\\n')"
expect "companion: with its own Host it goes through" "HTTP/1.1 200 OK" \
    "$(tunnel 'GET / HTTP/1.1\\r\\nHost: allowed.test:18080\\r\\n\\r\\n')"
expect "another protocol through CONNECT is closed" "closed" "$(tunnel 'SSH-2.0-probe\\r\\n')"
a network policy "$name" --allow-host allowed.test:18080 >/dev/null
expect_match "companion: it reaches the server once a rule names the port" "Error code: 400" \
    "$(tunnel 'SSH-2.0-probe\\r\\n')"

echo "== kept-alive connections are checked again"
# The script inside waits for a file in the workspace, written once the policy has changed.
cat > "$ws/keepalive.py" <<'EOF'
import http.client, os, time
c = http.client.HTTPConnection("127.0.0.1", 3128)
c.request("GET", "http://allowed.test:18080/one"); r = c.getresponse(); r.read(); print(r.status, flush=True)
while not os.path.exists("go"): time.sleep(0.05)
c.request("GET", "http://allowed.test:18080/two"); r = c.getresponse(); print(r.status, r.read().decode().split("\n")[0])
EOF
rm -f "$ws/go"
sh_in 'python3 keepalive.py' > "$work/keepalive.out" 2>&1 &
keepalive_pid=$!
for _ in $(seq 100); do [ -s "$work/keepalive.out" ] && break; sleep 0.1; done
a network policy "$name" --block-host allowed.test >/dev/null
touch "$ws/go"; wait "$keepalive_pid"
expect "first request allowed" "200" "$(head -1 "$work/keepalive.out")"
expect_match "second request on the same connection is refused after a block" \
    "^403 Blocked by airlock network policy: allowed.test:18080" "$(tail -n 1 "$work/keepalive.out")"
a network policy "$name" --reset --allow-host allowed.test --allow-host other.test --allow-host counted.test \
    --allow-cidr 127.0.0.1/32 >/dev/null
expect "after --reset, the host is allowed again" "200" \
    "$(sh_in 'curl -s -o /dev/null -w "%{http_code}" http://allowed.test:18080/')"

echo "== WebSocket through the proxy"
expect "WebSocket upgrade and echo" "101 hello" "$(sh_in 'python3 - <<EOF
import socket, os
s = socket.create_connection(("127.0.0.1", 3128))
s.sendall(b"GET http://allowed.test:18080/ws HTTP/1.1\r\nHost: allowed.test:18080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
head = b""
while b"\r\n\r\n" not in head: head += s.recv(1)
mask = os.urandom(4); data = b"hello"
s.sendall(bytes([0x81, 0x80 | len(data)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
frame = s.recv(100)
print(head.split()[1].decode(), frame[2:].decode())
EOF')"

echo "== transparent capture (programs that ignore HTTP_PROXY)"
if [ ${#low_ports[@]} -gt 0 ]; then
    expect "curl --noproxy to an allowed host over HTTP" "http:80" \
        "$(sh_in 'curl -s --noproxy "*" http://allowed.test/ | python3 -c "import json,sys; print(json.load(sys.stdin)[\"server\"])"')"
    expect "curl --noproxy to an allowed host over HTTPS" "https:443" \
        "$(sh_in 'curl -s --noproxy "*" --cacert test-ca.pem https://allowed.test/ | python3 -c "import json,sys; print(json.load(sys.stdin)[\"server\"])"')"
    expect_match "captured HTTP to a metadata address gets the 403 body" "^Blocked by airlock network policy: 169.254.169.254:80" \
        "$(sh_in 'curl -s --noproxy "*" http://169.254.169.254/latest/meta-data/')"
    expect "captured TLS to a public address under balanced is closed" "failed" \
        "$(sh_in 'curl -s -m 5 --noproxy "*" -k https://93.184.216.34/ >/dev/null && echo reached || echo failed')"
else
    fail "transparent capture needs ports 80 and 443 on host loopback" \
        "ip_unprivileged_port_start is $(cat /proc/sys/net/ipv4/ip_unprivileged_port_start); scripts/test.sh lowers it"
fi
expect "curl --noproxy to a denied name cannot resolve it" "6" \
    "$(sh_in 'curl -s --noproxy "*" http://denied.test/ >/dev/null; echo $?')"
expect "other ports lead nowhere" "failed" \
    "$(sh_in 'curl -s -m 5 --noproxy "*" http://93.184.216.34:8080/ >/dev/null && echo reached || echo failed')"

echo "== credentials: the proxy injects the key; the sandbox holds only the sentinel"
a network policy "$name" --allow-cidr 127.0.0.1/32 >/dev/null
expect "the variable inside holds the sentinel" "airlock-proxy-managed" "$(sh_in 'echo $ANTHROPIC_API_KEY')"
find_key() { find_in_sandbox "$name" "$real_key" "$@"; }
expect "the real key is nowhere in the sandbox's environment, files or /proc" "0" \
    "$(find_key /proc /home /etc /tmp /root /usr/local /var "$ws")"
echo "$real_key" > "$ws/.marker"
expect "companion: the same search finds it where it was put" "1" "$(find_key "$ws")"
rm -f "$ws/.marker"
sh_in 'cat /etc/ssl/certs/ca-certificates.crt test-ca.pem > both-cas.pem'
echo_field() { python3 -c "import json,sys; e=json.load(sys.stdin); print($1)"; }
expect "api.anthropic.com receives the real key in x-api-key" "$real_key" \
    "$(sh_in 'curl -s https://api.anthropic.com:18443/v1/messages -H "x-api-key: $ANTHROPIC_API_KEY" -d "{}"' | echo_field 'e["headers"].get("x-api-key")')"
expect "  over TLS from the user's Airlock CA (curl verified it)" "0" \
    "$(sh_in 'curl -s -o /dev/null https://api.anthropic.com:18443/ -H "x-api-key: $ANTHROPIC_API_KEY"; echo $?')"
expect "the sentinel in another header is not replaced" "airlock-proxy-managed" \
    "$(sh_in 'curl -s https://api.anthropic.com:18443/ -H "x-other: $ANTHROPIC_API_KEY"' | echo_field 'e["headers"].get("x-other")')"
expect "the sentinel sent to another allowed host arrives unreplaced" "airlock-proxy-managed" \
    "$(sh_in 'curl -s --cacert test-ca.pem https://allowed.test:18443/ -H "x-api-key: $ANTHROPIC_API_KEY"' | echo_field 'e["headers"].get("x-api-key")')"
redirect=$(sh_in 'curl -s -L --cacert both-cas.pem -H "x-api-key: $ANTHROPIC_API_KEY" "https://api.anthropic.com:18443/redirect?to=https://allowed.test:18443/landing"')
expect "a redirect to another host is followed" "/landing" "$(echo_field 'e["path"]' <<<"$redirect")"
expect "  and carries no key" "airlock-proxy-managed" "$(echo_field 'e["headers"].get("x-api-key")' <<<"$redirect")"
echo "sk-ant-stored-e2e" | a secret set anthropic >/dev/null
expect "a stored secret takes over at once" "sk-ant-stored-e2e" \
    "$(sh_in 'curl -s https://api.anthropic.com:18443/ -H "x-api-key: $ANTHROPIC_API_KEY"' | echo_field 'e["headers"].get("x-api-key")')"
expect_match "secret ls shows the name, never the value" "^anthropic +x-api-key +api.anthropic.com$" "$(a secret ls | tail -n +2)"
expect "secret files are private" "600" "$(stat -c %a "$AIRLOCK_HOME/secrets/anthropic.json")"
a secret rm anthropic >/dev/null
a network policy "$name" --bypass-host api.anthropic.com >/dev/null
expect "--bypass-host tunnels the host without injecting" "airlock-proxy-managed" \
    "$(sh_in 'curl -s --cacert both-cas.pem https://api.anthropic.com:18443/ -H "x-api-key: $ANTHROPIC_API_KEY"' | echo_field 'e["headers"].get("x-api-key")')"
check_error "a custom secret needs --host and --header" "give --host and --header" \
    a secret set my-service </dev/null
check_error "secret names cannot reach outside the store" "must be letters" a secret rm ../../sandboxes

echo "== the network log"
log_json=$(a network log "$name" --json)
expect_match "log holds the denied request as JSON" '"decision":"deny".*"host":"denied.test"' "$(grep denied.test <<<"$log_json" | head -1)"
expect_match "log holds allowed requests with bytes and rule" '"bytesIn":[1-9].*"decision":"allow".*"rule":"allow-host allowed.test' \
    "$(grep '"host":"allowed.test"' <<<"$log_json" | grep '"decision":"allow"' | head -1)"
expect_match "log holds refused DNS names" '"decision":"deny".*"host":"denied-exfil.test".*"via":"dns"' \
    "$(grep denied-exfil <<<"$log_json" | head -1)"
expect_match "the table has a header and rows" "^TIME +DECISION" "$(a network log "$name" | head -1)"
expect "--limit 2 gives two rows" "2" "$(a network log "$name" --json --limit 2 | wc -l)"
expect_match "log names the injected service, not the key" '"injected":\["anthropic"\]' \
    "$(grep api.anthropic.com <<<"$log_json" | grep injected | head -1)"
expect "the log never holds the key" "0" "$(grep -c "$real_key" "$AIRLOCK_HOME/sandboxes/$name/network.log")"

echo "== an upstream proxy from the host's HTTPS_PROXY"
a stop "$name" >/dev/null
HTTPS_PROXY=http://127.0.0.1:13128 a run -d shell "$ws" --name "$name" >/dev/null 2>&1
a network policy "$name" --allow-cidr 127.0.0.1/32 >/dev/null
touch "$work/connect.log"
expect "a request goes out through the upstream proxy" "http:18080" \
    "$(sh_in 'curl -s http://allowed.test:18080/' | python3 -c 'import json,sys; print(json.load(sys.stdin)["server"])')"
expect "  which is asked for the address Airlock checked, not the name" "127.0.0.1:18080" "$(tail -n 1 "$work/connect.log")"
expect "a denied host never reaches the upstream proxy" "403 0" \
    "$(sh_in 'curl -s -o /dev/null -w "%{http_code}" http://denied.test:18080/'; echo " $(grep -c denied "$work/connect.log")")"
a stop "$name" >/dev/null
a run -d shell "$ws" --name "$name" >/dev/null 2>&1

echo "== tunnels spliced in the kernel (AIRLOCK_SPLICE=1)"
AIRLOCK_SPLICE=1 a run -d shell "$ws" --name "$name-splice" --allow-host allowed.test \
    --allow-cidr 127.0.0.1/32 >/dev/null 2>&1
supervisor_threads() { # NAME: the thread names of its supervisor
    local pid
    pid=$(a inspect "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["supervisorPID"])')
    cat /proc/"$pid"/task/*/comm 2>/dev/null | sort -u | xargs
}
expect_match "the supervisor has a splice thread" "airlock-splice" "$(supervisor_threads "$name-splice")"
expect "20 MB through a spliced CONNECT tunnel, every byte" "200 20000000" \
    "$(a exec "$name-splice" -- bash -c 'curl -s --cacert test-ca.pem -o /dev/null -w "%{http_code} %{size_download}" "https://allowed.test:18443/bytes?n=20000000"')"
expect "a small answer too (the ClientHello went first)" "https:18443" \
    "$(a exec "$name-splice" -- bash -c 'curl -s --cacert test-ca.pem https://allowed.test:18443/ | python3 -c "import json,sys; print(json.load(sys.stdin)[\"server\"])"')"
sleep 1
expect "the log line, written at the tunnel's end, counts the bytes" "ok" \
    "$(a network log "$name-splice" --json | python3 -c '
import json, sys
lines = [json.loads(l) for l in sys.stdin if l.strip()]
big = [l for l in lines if l.get("host") == "allowed.test" and l.get("bytesIn", 0) >= 20000000]
print("ok" if big and big[0]["bytesOut"] > 0 else lines)')"
expect "companion: without it, no splice thread" "" "$(supervisor_threads "$name" | grep -o airlock-splice)"
a rm -f "$name-splice" >/dev/null

echo "== bad input"
check_error "a bad host rule is one line" "is not a host rule" a network policy "$name" --allow-host 'bad host!'
check_error "a bad CIDR at create leaves no sandbox" "is not an address range" \
    a create shell "$ws" --name egress-bad --allow-cidr 999.1.1.1/8
expect "  and nothing was made" "" "$(a ls -q | grep egress-bad)"
check_error "network log of an unknown sandbox" "no sandbox" a network log no-such-sandbox

echo "== --network none"
a run -d shell "$ws" --name offline --network none >/dev/null 2>&1
expect "no proxy variables without network" "" "$(a exec offline -- bash -c 'echo ${HTTPS_PROXY:-}')"
expect "nothing leads out" "failed" \
    "$(a exec offline -- bash -c 'curl -s -m 3 http://allowed.test:18080/ >/dev/null 2>&1 && echo reached || echo failed')"
expect "no DNS either" "failed" "$(a exec offline -- bash -c 'getent hosts allowed.test >/dev/null && echo resolved || echo failed')"

report
