#!/bin/bash
# End-to-end tests of `--docker`, as an ordinary user: a private Docker engine in the sandbox.
# A registry on loopback (Debian's docker-registry, TLS from a test CA) holds an image this suite
# builds; inside `airlock run --docker`, docker pulls it through the sandbox's proxy and policy,
# runs, publishes, builds, composes and serves Testcontainers; a denied registry and a denied
# name get nothing; a privileged inner container finds nothing of the host; and stop, kill -9
# and rm leave nothing behind.
# Prints "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
AIRLOCK="${AIRLOCK:-airlock}"
export AIRLOCK_HOME="$HOME/.airlock-e2e-docker"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

work=$(mktemp -d /tmp/airlock-e2e-docker.XXXXXX)
ws="$HOME/e2e-docker-ws"
name=docker-e2e
pids=()
cleanup() {
    a rm -f "$name" >/dev/null 2>&1
    a rm -f docker-agent >/dev/null 2>&1
    a rm -f docker-fork >/dev/null 2>&1
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    a secret rm registry-auth >/dev/null 2>&1
    rm -rf "$work" "$ws" "$HOME/e2e-docker-secret"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sh_in() { a exec "$name" -- bash -c "$1"; }
# mine REGEX: processes of this user and of its subordinate ids (the sandbox's root, the engine's
# and its containers' users run as those), whose command line matches.
sub_start=$(awk -F: -v u="$(id -un)" -v i="$(id -u)" '$1 == u || $1 == i {print $2; exit}' /etc/subuid)
sub_count=$(awk -F: -v u="$(id -un)" -v i="$(id -u)" '$1 == u || $1 == i {print $3; exit}' /etc/subuid)
mine() {
    ps -eo uid=,pid=,args= | awk -v me="$(id -u)" -v s="$sub_start" -v c="$sub_count" -v self="$$" \
        '($1 == me || ($1 >= s && $1 < s + c)) && $2 != self' | grep -E "$1" | grep -v -E ' (ps|awk|grep) '
}
rm -rf "$ws" && mkdir -p "$ws"

echo "== a registry and test upstreams on loopback, and an image this suite builds"
bash "$here/certs.sh" "$work" "DNS:registry.test,DNS:denied.test,DNS:registry-auth.test,DNS:api.anthropic.com,IP:127.0.0.1,IP:127.0.0.2"
cp "$work/ca.pem" "$ws/test-ca.pem"
registry_port=$(free_port)
mkdir -p "$work/registry"
printf 'version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n  tls:\n    certificate: %s\n    key: %s\n' \
    "$work/registry/storage" "$registry_port" "$work/server.pem" "$work/server.key" > "$work/registry/config.yml"
docker-registry serve "$work/registry/config.yml" > "$work/registry.log" 2>&1 &
pids+=($!)
dns_port=$(free_port)
low_ports=()
if [ "$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)" -le 443 ]; then
    low_ports=(--https "443:$work/server.pem:$work/server.key")
fi
python3 "$here/upstream.py" --http "$(free_port)" "${low_ports[@]}" --dns "$dns_port" --dns-log "$work/dns.log" \
    > "$work/upstream.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
    grep -q ready "$work/upstream.out" 2>/dev/null &&
        curl -s --cacert "$work/ca.pem" "https://127.0.0.1:$registry_port/v2/" >/dev/null && break
    sleep 0.1
done
expect "the registry and the upstreams answer" "ready 200" \
    "$(cat "$work/upstream.out") $(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/ca.pem" "https://127.0.0.1:$registry_port/v2/")"
# A second registry, behind a password, on port 443 of another loopback address: the proxy
# injects credentials on 443 only. Its password is an `airlock secret`, never inside.
registry_password="pw-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
python3 -c 'import crypt,sys; print("e2e:" + crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))' \
    "$registry_password" > "$work/htpasswd" 2>/dev/null
if [ ${#low_ports[@]} -gt 0 ]; then
    mkdir -p "$work/registry-auth"
    printf 'version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.2:443\n  tls:\n    certificate: %s\n    key: %s\nauth:\n  htpasswd:\n    realm: e2e\n    path: %s\n' \
        "$work/registry-auth/storage" "$work/server.pem" "$work/server.key" "$work/htpasswd" > "$work/registry-auth/config.yml"
    docker-registry serve "$work/registry-auth/config.yml" > "$work/registry-auth.log" 2>&1 &
    pids+=($!)
fi
touch "$work/dns.log"
# Names resolve on the host through the counting DNS server (every name is 127.0.0.1 there).
export AIRLOCK_DNS_SERVER="127.0.0.1:$dns_port"
export AIRLOCK_UPSTREAM_CA_FILE="$work/ca.pem"

mmdebstrap --quiet --variant=essential --include=python3 --mode=unshare \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' bookworm "$work/base.tar" http://deb.debian.org/debian \
    >/dev/null 2>&1 || fail "mmdebstrap of the image's root filesystem"
python3 "$here/make_oci_image.py" "$work/layout" py "$work/base.tar" --plain >/dev/null
registry="registry.test:$registry_port"
# skopeo (Go) trusts what SSL_CERT_FILE holds: the system's CAs and the test CA.
cat /etc/ssl/certs/ca-certificates.crt "$work/ca.pem" > "$work/bundle.pem"
SSL_CERT_FILE="$work/bundle.pem" skopeo --insecure-policy copy -q "oci:$work/layout:py" \
    "docker://127.0.0.1:$registry_port/e2e/py:1" >/dev/null 2>"$work/push.err" || tail -n 3 "$work/push.err"
if [ ${#low_ports[@]} -gt 0 ]; then
    for _ in $(seq 50); do curl -s --cacert "$work/ca.pem" https://127.0.0.2/v2/ >/dev/null && break; sleep 0.1; done
    SSL_CERT_FILE="$work/bundle.pem" skopeo --insecure-policy copy -q --dest-creds "e2e:$registry_password" \
        "oci:$work/layout:py" "docker://127.0.0.2/e2e/py:1" >/dev/null 2>>"$work/push.err" || tail -n 3 "$work/push.err"
fi
expect "the test image is in the registry" "200" \
    "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/ca.pem" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "https://127.0.0.1:$registry_port/v2/e2e/py/manifests/1")"

echo "== airlock run --docker"
# The lifecycle checks look at every process of this user's subordinate ids.
expect "no other Docker engine of this user runs (the checks below would count it)" "" "$(mine '[d]ockerd')"
real_key="sk-ant-e2e-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
started=$(date +%s%N)
printf '%s' "$registry_password" | a secret set registry-auth --host registry-auth.test --header Authorization \
    --env REGISTRY_PASSWORD >/dev/null
ANTHROPIC_API_KEY="$real_key" a run -d --name "$name" --docker shell "$ws" --allow-host registry.test \
    --allow-cidr 127.0.0.1/32 --add-host api.anthropic.com:127.0.0.1 \
    --add-host registry-auth.test:127.0.0.2 --allow-cidr 127.0.0.2/32 --allow-host registry-auth.test \
    >/dev/null 2>"$work/run.err" || { fail "run --docker" "$(tail -n 5 "$work/run.err")"; exit 1; }
expect "docker info answers inside as soon as run -d returns" "20.10" \
    "$(sh_in 'docker info --format "{{.ServerVersion}}"' 2>&1 | cut -c1-5)"
echo "      (run -d --docker to a working docker info: $((($(date +%s%N) - started) / 1000000)) ms, image build included)"
expect "the agent has DOCKER_HOST and the usual socket path" "unix:///run/airlock-docker/docker.sock /run/airlock-docker/docker.sock" \
    "$(sh_in 'echo $DOCKER_HOST $(readlink /run/docker.sock)')"
expect "the engine stores on overlay2, runs crun" "overlay2 crun" \
    "$(sh_in 'docker info --format "{{.Driver}} {{.DefaultRuntime}}"')"
expect "inspect says what the engine is granted" "yes" \
    "$(a inspect "$name" | python3 -c 'import json,sys; d=json.load(sys.stdin)["docker"]; print("yes" if d["grants"] and d["socket"] else "no")')"
check_error "--docker with gVisor is refused in one line" "--docker needs the container isolation tier" \
    a create --name docker-runsc --docker --isolation gvisor shell "$ws"
check_error "  and with --runtime runsc" "--docker needs the container isolation tier" \
    a create --name docker-runsc --docker --runtime runsc shell "$ws"
expect "--mount-docker-socket is --docker, with a note" "note: --mount-docker-socket gives the sandbox a Docker engine of its own" \
    "$(a create --name docker-note --mount-docker-socket shell "$ws" 2>&1 >/dev/null | grep -o 'note: --mount-docker-socket gives the sandbox a Docker engine of its own')"
a rm -f docker-note >/dev/null 2>&1
# An agent definition can ask for the engine (its template's image, with Docker, is the one above).
mkdir -p "$work/config/airlock/agents"
printf 'name: docked\ndescription: a shell that wants Docker\ntemplate: shell\ncommand: [bash]\ndocker: true\n' \
    > "$work/config/airlock/agents/docked.yaml"
XDG_CONFIG_HOME="$work/config" a create --name docker-agent docked "$ws" >/dev/null 2>&1
expect "an agent definition with docker: true gets the engine" "True" \
    "$(a inspect docker-agent 2>/dev/null | python3 -c 'import json,sys; print("docker" in json.load(sys.stdin))')"
a rm -f docker-agent >/dev/null 2>&1

echo "== pulls go through the proxy, under the policy"
sh_in "sudo mkdir -p /etc/docker/certs.d/$registry && sudo cp test-ca.pem /etc/docker/certs.d/$registry/ca.crt"
expect "docker pull from the allowed registry" "0" \
    "$(sh_in "docker pull -q $registry/e2e/py:1 >/dev/null 2>&1; echo \$?")"
save_network_log "$name" "$work/net.jsonl"
expect "the network log shows the pull, allowed, through the proxy" "True" \
    "$(net 'any(x["host"] == "registry.test" and x["decision"] == "allow" for x in e)')"
expect_match "companion: the registry served it" "GET /v2/e2e/py/manifests/1" "$(cat "$work/registry.log")"
before=$(grep -c 'denied.test' "$work/registry.log")
denied_pull=$(sh_in "docker pull -q denied.test:$registry_port/e2e/py:1 2>&1 && echo pulled || echo failed")
expect "a pull from a registry the policy denies fails" "failed" "$(tail -n 1 <<<"$denied_pull")"
expect_match "  and docker's error says why: the policy" "Forbidden by Airlock policy: .*denied.test" "$denied_pull"
expect "  and nothing reached it" "$before" "$(grep -c 'denied.test' "$work/registry.log")"
save_network_log "$name" "$work/net.jsonl"
expect "  the network log shows it denied" "True" \
    "$(net 'any(x["host"] == "denied.test" and x["decision"] == "deny" for x in e)')"

if [ ${#low_ports[@]} -gt 0 ]; then
    auth=$(sh_in 'echo "$REGISTRY_PASSWORD" | docker login -u e2e --password-stdin registry-auth.test 2>&1 | tail -n 1
        docker pull -q registry-auth.test/e2e/py:1 >/dev/null 2>&1 && echo pulled
        python3 -c "import base64, json, os
auth = json.load(open(os.path.expanduser(\"~/.docker/config.json\")))[\"auths\"][\"registry-auth.test\"][\"auth\"]
print(\"sentinel-kept\" if base64.b64decode(auth).decode() == \"e2e:\" + os.environ[\"REGISTRY_PASSWORD\"] else \"other\")"')
    expect "a registry's password from airlock secret: docker login and pull, the sentinel in its place inside" \
        "Login Succeeded pulled sentinel-kept" "$(xargs <<<"$auth")"
    expect "  the real password is nowhere in the sandbox" "0" "$(find_in_sandbox "$name" "$registry_password" /home /root /etc /run /tmp)"
    expect_match "  companion: the registry saw a login as e2e" 'user\.name="?e2e' "$(cat "$work/registry-auth.log")"
else
    fail "a registry's password from airlock secret" "needs ip_unprivileged_port_start <= 443 (scripts/test.sh sets it)"
fi
a secret rm registry-auth >/dev/null 2>&1

echo "== docker run, -p, -v, -e, -d, exec, logs"
image="$registry/e2e/py:1"
expect "docker run --rm with -e and -v of a directory of the agent's home" "hello-env from-home" \
    "$(sh_in "mkdir -p ~/data && echo from-home > ~/data/note.txt && docker run --rm -e GREETING=hello-env -v ~/data:/src $image sh -c 'echo \$GREETING \$(cat /src/note.txt)'")"
echo from-workspace > "$ws/marker.txt"
expect "docker run -v \$PWD reads the workspace, and cannot write it (read-only to the engine)" \
    "from-workspace Read-only file system" \
    "$(sh_in "docker run --rm -v \$PWD:/w $image sh -c 'cat /w/marker.txt; (: > /w/written.txt) 2>&1 | grep -o \"Read-only file system\"'" | xargs)"
sh_in "docker run -d --name web -p 8080:8000 $image python3 -m http.server 8000 >/dev/null"
expect "a published port answers at the sandbox's localhost" "200" \
    "$(sh_in 'for i in $(seq 50); do c=$(curl -s --noproxy "*" -o /dev/null -w "%{http_code}" http://localhost:8080/) && [ "$c" = 200 ] && break; sleep 0.2; done; echo $c')"
expect "docker exec" "inside-web" "$(sh_in 'docker exec web sh -c "echo inside-web"')"
# The limits: the inner container's server is in the sandbox's own memory and pids groups.
init_pid=$(a inspect "$name" | python3 -c 'import json,sys; print(json.load(sys.stdin)["initPID"])')
# The web server as an inner container's process: four pid namespaces deep (the host's, the
# sandbox's, the engine's, its container's).
web_pid=""
for pid in $(mine 'http\.server 8000' | awk '{print $2}'); do
    [ "$(awk '/^NSpid:/ {print NF - 1}' "/proc/$pid/status" 2>/dev/null)" = 4 ] && web_pid=$pid && break
done
in_group() { # CONTROLLER: whether the web server's group is the init's or below it
    local mine theirs
    theirs=$(grep -E "^[0-9]+:([^:]*,)?$1(,[^:]*)?:" "/proc/$init_pid/cgroup" | cut -d: -f3)
    mine=$(grep -E "^[0-9]+:([^:]*,)?$1(,[^:]*)?:" "/proc/$web_pid/cgroup" | cut -d: -f3)
    [ -n "$theirs" ] && [ "$theirs" != / ] && [[ "$mine" == "$theirs" || "$mine" == "$theirs"/* ]] && echo in
}
expect "an inner container counts against the sandbox's limits (its memory and pids groups)" "in in" \
    "$(in_group memory) $(in_group pids)"
expect_match "docker logs shows the request" 'GET / HTTP' "$(sh_in 'docker logs web 2>&1')"
expect "containers on a user network reach each other by name" "200" \
    "$(sh_in "docker network create e2e-net >/dev/null && docker run -d --name named --network e2e-net $image python3 -m http.server 8000 >/dev/null && sleep 1 && docker run --rm --network e2e-net $image python3 -c \"import urllib.request,time
for i in range(50):
    try: print(urllib.request.urlopen('http://named:8000', timeout=2).status); break
    except Exception: time.sleep(0.2)\"")"

echo "== docker build, and a compose stack"
cat > "$ws/Dockerfile" <<EOF
FROM $image
RUN echo built-by-run > /built.txt && python3 -c "print('python in RUN')" > /python.txt
CMD ["sh", "-c", "cat /built.txt /python.txt"]
EOF
expect "docker build of a Dockerfile with RUN steps, then run" "built-by-run python in RUN" \
    "$(sh_in 'docker build -q -t e2e/built . >/dev/null && docker run --rm e2e/built' | xargs)"
cat > "$ws/docker-compose.yml" <<EOF
version: "3"
services:
  web:
    image: $image
    command: python3 -m http.server 8000
  client:
    image: $image
    depends_on: [web]
    command: ["python3", "-c", "import urllib.request,time\nfor i in range(100):\n    try:\n        print('client got', urllib.request.urlopen('http://web:8000', timeout=2).status); break\n    except Exception: time.sleep(0.2)"]
EOF
expect_match "docker compose (as a CLI plugin): a two-service stack whose services talk by name" "client got 200" \
    "$(sh_in 'docker compose up --abort-on-container-exit --exit-code-from client 2>&1; docker compose down >/dev/null 2>&1')"
expect "an inner container given the usual socket path talks to the engine" "running" \
    "$(sh_in "docker run --rm -v /var/run/docker.sock:/var/run/docker.sock $image python3 -c \"
import socket; s = socket.socket(socket.AF_UNIX); s.connect('/var/run/docker.sock')
s.sendall(b'GET /containers/web/json HTTP/1.0\\r\\nHost: docker\\r\\n\\r\\n'); data = b''
while chunk := s.recv(65536): data += chunk
print('running' if b'\\\"Running\\\":true' in data else data[:200])\"")"

expect "ls --size and inspect count the engine's images and containers" "DOCKER yes" \
    "$(a ls --size | head -n 1 | grep -o DOCKER) $(a inspect "$name" | python3 -c 'import json,sys; print("yes" if json.load(sys.stdin)["disk"]["dockerBytes"] > 50 << 20 else "no")')"

echo "== Testcontainers (from PyPI) works unchanged"
cat > "$ws/test_tc.py" <<EOF
import sys, urllib.request
from testcontainers.core.container import DockerContainer
from testcontainers.core.waiting_utils import wait_for_logs
with DockerContainer("$image").with_command("python3 -u -m http.server 8000").with_exposed_ports(8000) as web:
    wait_for_logs(web, "Serving HTTP", timeout=60)
    url = "http://%s:%s/" % (web.get_container_host_ip(), web.get_exposed_port(8000))
    status = urllib.request.urlopen(urllib.request.Request(url), timeout=10).status
    print("testcontainers got", status, "from", web.get_wrapped_container().short_id)
EOF
# Installed from PyPI by the host into the workspace (the sandbox's proxy resolves names through
# this suite's DNS server, which knows no PyPI); it runs inside, with the sandbox's Python.
python3 -m venv "$ws/tc" >"$work/tc.log" 2>&1 &&
    "$ws/tc/bin/pip" install --disable-pip-version-check -q testcontainers >>"$work/tc.log" 2>&1 ||
    fail "pip install testcontainers" "$(tail -n 3 "$work/tc.log")"
tc=$(sh_in 'TESTCONTAINERS_RYUK_DISABLED=true tc/bin/python test_tc.py 2>&1 | tail -n 3
    docker ps -a --format "{{.Image}}" | grep -c e2e/py:1' 2>&1)
expect_match "a Testcontainers test starts a container, waits for its port, talks to it" "testcontainers got 200" "$tc"
expect "  and removes it (web and named remain, nothing else)" "2" "$(tail -n 1 <<<"$tc")"

echo "== inner containers' traffic meets the sandbox's policy"
: > "$work/dns.log"
expect "an inner container cannot resolve a denied name" "failed" \
    "$(sh_in "docker run --rm $image sh -c 'getent hosts denied-exfil.test >/dev/null && echo resolved || echo failed'")"
expect "  nor on a user network (Docker's own DNS forwards to the stub)" "failed" \
    "$(sh_in "docker run --rm --network e2e-net $image sh -c 'getent hosts denied-exfil.test >/dev/null && echo resolved || echo failed'")"
expect "  and the test DNS server saw no query for it" "0" "$(grep -c denied-exfil "$work/dns.log")"
expect_match "an allowed name resolves inside to a synthetic address" "^198\.1[89]\." \
    "$(sh_in "docker run --rm $image getent hosts registry.test" | awk '{print $1}')"
if [ ${#low_ports[@]} -gt 0 ]; then
    # HTTPS from an inner container is captured; the proxy injects the key, as for the agent.
    # The container has the sentinel the agent has (-e passes it on), never the key.
    seen=$(sh_in "docker run --rm -e ANTHROPIC_API_KEY -v /usr/local/share/ca-certificates/airlock.crt:/ca.crt:ro $image python3 -c \"
import json, os, ssl, urllib.request
request = urllib.request.Request('https://api.anthropic.com/v1/messages', data=b'{}', headers={'x-api-key': os.environ['ANTHROPIC_API_KEY']})
body = urllib.request.urlopen(request, context=ssl.create_default_context(cafile='/ca.crt'), timeout=10).read()
print(json.loads(body)['headers'].get('x-api-key'))\"" 2>&1 | tail -n 1)
    expect "an inner container's HTTPS is captured and gets the real key injected" "$real_key" "$seen"
else
    fail "an inner container's HTTPS is captured and gets the real key injected" "needs ip_unprivileged_port_start <= 443 (scripts/test.sh sets it)"
fi

echo "== from the attacker's side: a privileged inner container with / mounted"
secret="$HOME/e2e-docker-secret"
echo "host-secret-$RANDOM$RANDOM" > "$secret"
probe=$(sh_in "docker run --rm --privileged --pid host -v /:/host $image sh -c '
    find /host -path /host/proc -prune -o -path /host/sys -prune -o -path /host/var/lib/docker -prune -o -name e2e-docker-secret -print 2>/dev/null | wc -l
    key=\$(python3 -c \"import sys; print(sys.argv[1][::-1])\" $(rev <<<"$real_key"))
    grep -rls \"\$key\" /host/etc /host/root /host/home /host/run /host/var/tmp /host/tmp /host/opt 2>/dev/null | wc -l
    grep -l [_]supervise /proc/[0-9]*/cmdline 2>/dev/null | wc -l
    grep -l [d]ockerd /proc/[0-9]*/cmdline 2>/dev/null | wc -l
    find /dev -type b | wc -l
    ls /host/run/airlock-docker
    for f in /sys/fs/cgroup/*/tasks /sys/fs/cgroup/*/cgroup.procs /sys/fs/cgroup/cgroup.procs; do [ -e \$f ] && (echo \$\$ > \$f) 2>/dev/null && echo wrote-\$f; done
    mkdir -p /mnt/cg && (mount -t cgroup2 none /mnt/cg || mount -t cgroup -o memory none /mnt/cg) 2>/dev/null && echo mounted-a-cgroup-tree; echo cgroups-tried
    python3 -c \"import ctypes,os; libc=ctypes.CDLL(None,use_errno=True); r=libc.syscall(175,0,0,b\\\"\\\"); print(\\\"init_module\\\", r, os.strerror(ctypes.get_errno()))\"
'" 2>&1)
expect "the host user's file outside the workspace is not there" "0" "$(sed -n 1p <<<"$probe")"
expect "the real API key is in no file it can read" "0" "$(sed -n 2p <<<"$probe")"
expect "no supervisor or host process is visible (--pid host is the engine's)" "0" "$(sed -n 3p <<<"$probe")"
expect_match "companion: the engine's own processes are (dockerd)" "^[1-9]" "$(sed -n 4p <<<"$probe")"
expect "no block device" "0" "$(sed -n 5p <<<"$probe")"
expect "the only Docker socket is the engine's own" "docker.sock" "$(sed -n 6p <<<"$probe")"
expect "no cgroup file could be written, no cgroup tree mounted" "cgroups-tried" "$(sed -n 7p <<<"$probe")"
expect "loading a kernel module is refused" "init_module -1 Operation not permitted" "$(sed -n 8p <<<"$probe")"
expect "companion: it reads the agent's home through /, and the secret is there on the host" \
    "from-home 1" "$(sh_in "docker run --rm -v /:/host $image cat /host\$HOME/data/note.txt") $(grep -c host-secret "$secret")"
# The workspace's guard: hooks are read-only to the agent, and the engine has the workspace read-only.
git init -q "$ws" && mkdir -p "$ws/.git/hooks"
sh_in "docker run --rm --privileged -e AGENT_HOME=\$HOME -v /:/host $image sh -c 'mkdir -p /host$ws/.git/hooks; echo evil > /host$ws/.git/hooks/post-checkout; echo evil > /host\$AGENT_HOME/planted'" >/dev/null 2>&1
expect "a privileged container cannot plant a git hook in the workspace" "absent" \
    "$([ -e "$ws/.git/hooks/post-checkout" ] && echo planted || echo absent)"
expect "companion: the same container writes where the engine has the agent's files (its home)" "evil" \
    "$(sh_in 'cat ~/planted')"
# The workspace through -v, attacked: remounted writable, or written beneath the guard's filter
# by an overlay whose upper directory is its .git (the agent makes the work directory beside it).
# The companion runs the same on a writable directory of the home, on the same disk: the probes
# work where the engine may write.
cp "$here/mount_attack.py" "$ws/"
overlay=$(sh_in "mkdir -p .ovl-work ~/writable && cp mount_attack.py ~/ &&
    docker run --rm --privileged -v \$PWD:/w -v \$HOME/writable:/x -v \$HOME/mount_attack.py:/a.py:ro $image sh -c '
    python3 /a.py remount /w; python3 /a.py overlay /w; python3 /a.py remount /x; python3 /a.py overlay /x'" 2>&1)
expect "a privileged container cannot remount the workspace writable" "remount Operation not permitted" \
    "$(sed -n 1p <<<"$overlay")"
expect "  nor write its .git through an overlay beneath the guard" "overlay mount Invalid argument" \
    "$(sed -n 2p <<<"$overlay")"
expect "  and no hook is on the host" "absent" "$([ -e "$ws/.git/hooks/post-checkout" ] && echo planted || echo absent)"
expect "companion: on a writable directory of the home, both work" "remount ok overlay wrote planted" \
    "$(sed -n 3,4p <<<"$overlay" | xargs) $(sh_in 'grep -o planted ~/writable/.git/hooks/post-checkout')"

# The agent hands the descriptor of its own mount namespace, where the guard's binds are, to a
# privileged container: the engine's capabilities are its own user namespace's, not the sandbox's.
cp "$here/mntns_attack.py" "$ws/"
joined=$(sh_in "cp mntns_attack.py ~/ && (python3 ~/mntns_attack.py give >/dev/null 2>&1 </dev/null &) && sleep 0.5 &&
    docker run --rm --privileged --network host -v \$HOME:/h $image python3 /h/mntns_attack.py take $ws/.git" 2>&1)
expect "companion: a privileged container joins a mount namespace of its own (setns works there)" "own-setns ok" \
    "$(grep own-setns <<<"$joined")"
expect "it cannot join the agent's mount namespace, handed to it by the agent" "agent-setns Operation not permitted" \
    "$(grep agent-setns <<<"$joined")"

echo "== lifecycle: stop, run again, kill -9, rm"
expect_match "companion: the engine and a container run, as the user's subordinate ids" "dockerd.*http.server|http.server.*dockerd" \
    "$(mine '[d]ockerd|[h]ttp\.server' | sort -k2 -n | xargs)"
a stop "$name" >/dev/null 2>&1
expect "stop leaves no engine or container process" "" \
    "$(mine '[d]ockerd|[c]ontainerd|[h]ttp\.server')"
a fork "$name" docker-fork >/dev/null 2>&1
expect "fork copies the engine's images" "yes" \
    "$(a run -d --name docker-fork shell "$ws" >/dev/null 2>&1 && a exec docker-fork -- docker image inspect $image >/dev/null 2>&1 && echo yes)"
a rm -f docker-fork >/dev/null 2>&1
a run -d --name "$name" shell "$ws" >/dev/null 2>&1
expect "run again brings the engine back with its images, its containers stopped" "yes Exited" \
    "$(sh_in "docker image inspect $image >/dev/null 2>&1 && echo yes; docker ps -a --filter name=^web\$ --format '{{.Status}}' | cut -d' ' -f1" | xargs)"
sh_in "docker start web >/dev/null"
expect "  and a container started again runs" "running" "$(sh_in 'docker inspect -f "{{.State.Status}}" web')"
supervisor=$(a inspect "$name" | python3 -c 'import json,sys; print(json.load(sys.stdin)["supervisorPID"])')
kill -KILL "$supervisor"
sleep 2
expect "kill -9 of the supervisor leaves no engine or container process" "" \
    "$(mine '[d]ockerd|[c]ontainerd|[h]ttp\.server')"
expect "  and no mount of the sandbox's" "" "$(grep -l "$name" /proc/[0-9]*/mountinfo 2>/dev/null)"
a run -d --name "$name" shell "$ws" >/dev/null 2>&1
expect "it starts again after the kill" "yes" "$(sh_in "docker image inspect $image >/dev/null 2>&1 && echo yes")"
dir=$(a inspect "$name" | python3 -c 'import json,sys; print(json.load(sys.stdin)["stateDirectory"])')
a rm -f "$name" >/dev/null 2>&1
expect "rm leaves no process, no mount and no file" "  no-dir" \
    "$(mine '[d]ockerd|[c]ontainerd|[h]ttp\.server') $(grep -l "$name" /proc/[0-9]*/mountinfo 2>/dev/null) $([ -e "$dir" ] && echo dir-left || echo no-dir)"

report
