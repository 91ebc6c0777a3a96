#!/bin/bash
# End-to-end tests that a sandbox behaves like a real machine (issue 14): package installs with
# the real apt-get and dpkg from a repository served on loopback, a root-owned `/`, limits that
# hold for an ordinary user, the host's CAs trusted, and no litter left in the project.
# Runs as an ordinary user (scripts/test.sh creates one, delegates it cgroups the way
# scripts/install.sh does, and puts a test CA in the host's trust store: AIRLOCK_E2E_HOST_CA).
# Prints "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
AIRLOCK="${AIRLOCK:-airlock}"
export AIRLOCK_HOME="$HOME/.airlock-e2e"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

work=$(mktemp -d /tmp/airlock-e2e-machine.XXXXXX)
server_pids=()
cleanup() {
    a reset -f >/dev/null 2>&1
    for pid in "${server_pids[@]}"; do kill "$pid" 2>/dev/null; done
    rm -rf "$work" "$AIRLOCK_HOME/sandboxes"
}
trap cleanup EXIT

ws="$HOME/e2e-machine"
rm -rf "$ws" && mkdir -p "$ws" && echo "hello" >"$ws/README"

# A free TCP port on host loopback.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== a Debian repository on loopback, with packages built by dpkg-deb"
repo="$work/repo"
mkdir -p "$repo"
# deb NAME VERSION DIR [CONTROL-LINES]: builds NAME_VERSION_all.deb from the tree DIR.
deb() {
    local name="$1" version="$2" tree="$3" extra="${4:-}"
    mkdir -p "$tree/DEBIAN"
    printf 'Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: e2e <e2e@example.com>\nDescription: airlock e2e package\n%s' \
        "$name" "$version" "$extra" >"$tree/DEBIAN/control"
    dpkg-deb --root-owner-group --build "$tree" "$repo/${name}_${version}_all.deb" >/dev/null
}
t="$work/demo1"
mkdir -p "$t/usr/share/airlock-demo/data" "$t/usr/share/airlock-demo/old" "$t/usr/share/airlock-demo/conf" "$t/usr/bin"
echo v1 >"$t/usr/share/airlock-demo/data/a.txt"
echo keep >"$t/usr/share/airlock-demo/old/keep.txt"
echo x >"$t/usr/share/airlock-demo/conf/x"
printf '#!/bin/sh\necho demo 1.0\n' >"$t/usr/bin/airlock-demo" && chmod 755 "$t/usr/bin/airlock-demo"
deb airlock-demo 1.0 "$t"
# 2.0: the directory old/ is gone, conf/ is a file now, and the command says 2.0.
t="$work/demo2"
mkdir -p "$t/usr/share/airlock-demo/data" "$t/usr/bin"
echo v2 >"$t/usr/share/airlock-demo/data/a.txt"
echo "conf is a file now" >"$t/usr/share/airlock-demo/conf"
printf '#!/bin/sh\necho demo 2.0\n' >"$t/usr/bin/airlock-demo" && chmod 755 "$t/usr/bin/airlock-demo"
deb airlock-demo 2.0 "$t"
# A package that takes over a file in a directory of an installed package (Replaces), and one
# that puts files in a directory of the image (Python's, from python3).
t="$work/extra"
mkdir -p "$t/usr/share/airlock-demo/data" "$t/usr/lib/python3/dist-packages/airlock_demo"
echo extra >"$t/usr/share/airlock-demo/data/a.txt"
echo 'WHO = "dpkg"' >"$t/usr/lib/python3/dist-packages/airlock_demo/__init__.py"
deb airlock-demo-extra 1.0 "$t" $'Replaces: airlock-demo\nBreaks: airlock-demo (<< 2.0)\n'
# A wheel for pip, made by hand (a zip with its metadata).
python3 - "$repo" <<'EOF'
import base64, hashlib, sys, zipfile
files = {"airlock_wheel/__init__.py": b'WHO = "pip"\n',
         "airlock_wheel-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: airlock-wheel\nVersion: 1.0\n",
         "airlock_wheel-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: e2e\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
record = "".join(f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},{len(d)}\n"
                 for n, d in files.items()) + "airlock_wheel-1.0.dist-info/RECORD,,\n"
with zipfile.ZipFile(sys.argv[1] + "/airlock_wheel-1.0-py3-none-any.whl", "w") as z:
    for n, d in files.items():
        z.writestr(n, d)
    z.writestr("airlock_wheel-1.0.dist-info/RECORD", record)
EOF
# Packages and Release, as apt-ftparchive would write them (apt takes [trusted=yes] unsigned).
python3 - "$repo" <<'EOF'
import glob, hashlib, os, subprocess, sys
repo = sys.argv[1]
stanzas = []
for path in sorted(glob.glob(repo + "/*.deb")):
    control = subprocess.run(["dpkg-deb", "-f", path], capture_output=True, text=True, check=True).stdout.strip()
    data = open(path, "rb").read()
    stanzas.append(f"{control}\nFilename: ./{os.path.basename(path)}\nSize: {len(data)}\n"
                   f"SHA256: {hashlib.sha256(data).hexdigest()}\n")
packages = "\n".join(stanzas).encode()
open(repo + "/Packages", "wb").write(packages)
open(repo + "/Release", "w").write(
    "Origin: airlock-e2e\nLabel: airlock-e2e\nSuite: e2e\nCodename: e2e\nArchitectures: all amd64\n"
    f"SHA256:\n {hashlib.sha256(packages).hexdigest()} {len(packages)} Packages\n")
EOF
repo_port=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$repo" "$repo_port" >"$work/repo.log" 2>&1 &
server_pids+=($!)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$repo_port/Release" >/dev/null && break; sleep 0.1; done
expect "companion: the repository answers on host loopback" "200" \
    "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$repo_port/Packages")"

echo "== package installs inside a sandbox (item 1)"
net_flags=(--add-host "debs.test:127.0.0.1" --allow-cidr 127.0.0.1/32 --allow-host debs.test)
a create --name pkg "${net_flags[@]}" shell "$ws" >/dev/null
pkg() { a run --name pkg shell "$ws" -- -c "$1"; }
apt_get="sudo apt-get -q -o Dir::Etc::sourcelist=/etc/apt/sources.list.d/e2e.list -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0"
pkg "echo 'deb [trusted=yes] http://debs.test:$repo_port/ ./' | sudo tee /etc/apt/sources.list.d/e2e.list >/dev/null"
out=$(pkg "$apt_get update 2>&1 && $apt_get install -y airlock-demo=1.0 2>&1 && airlock-demo && cat /usr/share/airlock-demo/old/keep.txt")
expect_match "apt-get install from the loopback repository" "demo 1.0"$'\n'"keep$" "$out"
out=$(pkg "$apt_get install -y airlock-demo=2.0 2>&1 && airlock-demo; test -e /usr/share/airlock-demo/old && echo old-still-there; test -f /usr/share/airlock-demo/conf && cat /usr/share/airlock-demo/conf")
expect_match "the upgrade removes a directory and replaces another with a file" "demo 2.0"$'\n'"conf is a file now$" "$out"
out=$(pkg "$apt_get install -y airlock-demo-extra >/dev/null 2>&1; cat /usr/share/airlock-demo/data/a.txt; python3 -c 'import airlock_demo; print(airlock_demo.WHO)'; dpkg -S /usr/share/airlock-demo/data/a.txt")
expect "a package that replaces another's file, and one in an image directory" \
    "extra dpkg airlock-demo-extra: /usr/share/airlock-demo/data/a.txt" "$(xargs <<<"$out")"
out=$(pkg "$apt_get remove -y airlock-demo airlock-demo-extra >/dev/null 2>&1; test -e /usr/share/airlock-demo && echo left || echo removed; dpkg -s airlock-demo 2>&1 | grep -c '^Status: install'")
expect "dpkg removes both, and their directories" "removed 0" "$(xargs <<<"$out")"
out=$(pkg "sudo pip install -q --no-index --break-system-packages http://debs.test:$repo_port/airlock_wheel-1.0-py3-none-any.whl 2>&1 | grep -v WARNING; python3 -c 'import airlock_wheel; print(airlock_wheel.WHO, airlock_wheel.__file__)'")
expect_match "pip install into the system Python" "^pip /usr/local/lib/python3[^ ]*/dist-packages/airlock_wheel/__init__.py$" "$out"
out=$(pkg 'sudo rm -rf /usr/share/doc && test ! -e /usr/share/doc && echo rm-ok; sudo mv /usr/share/perl5 /usr/share/perl5.moved && test -d /usr/share/perl5.moved/Debconf && echo mv-ok; sudo mv /usr/share/perl5.moved /usr/share/perl5 && echo back-ok')
expect "rm -rf and mv of image directories" "rm-ok mv-ok back-ok" "$(xargs <<<"$out")"
a stop pkg >/dev/null
out=$(pkg 'airlock-demo 2>&1; python3 -c "import airlock_wheel; print(airlock_wheel.WHO)"; test -e /usr/share/doc && echo doc-back || echo doc-gone; dpkg --audit && echo dpkg-clean')
expect "stop + run keeps what was removed and installed" "bash: line 1: airlock-demo: command not found pip doc-gone dpkg-clean" "$(xargs <<<"$out")"
out=$(pkg "$apt_get install -y airlock-demo=2.0 >/dev/null 2>&1 && airlock-demo")
expect "and installs again after the restart" "demo 2.0" "$out"
a rm -f pkg >/dev/null

echo "== the sandbox's / belongs to root (item 2)"
# A sandbox made for programs: no sudo. The agent is uid 1000 and has no capability.
a create --name nosudo --template code shell "$ws" >/dev/null
ns() { a run --name nosudo shell "$ws" -- -c "$1"; }
expect "/ is root's, mode 755" "root 755" "$(ns 'stat -c "%U %a" /')"
expect "image directories keep their owners" "root root root root" "$(ns 'stat -c %U /etc /usr /bin /var | xargs')"
expect "the agent cannot rename /etc away" "refused" "$(ns 'mv /etc /etc.x 2>/dev/null && echo moved || echo refused')"
expect "nor make a top-level directory" "refused" "$(ns 'mkdir /evil 2>/dev/null && echo made || echo refused')"
expect "nor write into /usr/local/bin" "refused" "$(ns 'touch /usr/local/bin/x 2>/dev/null && echo made || echo refused')"
expect "nor replace /etc/passwd" "refused" "$(ns 'cp /etc/passwd /tmp/p && mv /tmp/p /etc/passwd 2>/dev/null && echo replaced || echo refused')"
expect "companion: the agent writes its home, the workspace and /tmp" "ok ok ok" \
    "$(ns 'touch ~/f && echo ok; touch ./f && echo ok; touch /tmp/f && echo ok' | xargs)"
rm -f "$ws/f"
a rm -f nosudo >/dev/null
a create --name withsudo shell "$ws" >/dev/null
expect "companion: with sudo, root may" "made" "$(a run --name withsudo shell "$ws" -- -c 'sudo mkdir /opt/x && echo made')"
expect "a sudo sandbox's agent cannot either without sudo" "refused" \
    "$(a run --name withsudo shell "$ws" -- -c 'mv /etc /etc.x 2>/dev/null && echo moved || echo refused')"
a rm -f withsudo >/dev/null

# Limits (item 3) have a suite of their own, limits.sh, which also runs on cgroup v2 in a VM.
defaults=$(a create --name defaults shell "$ws" >/dev/null && a inspect defaults | python3 -c '
import json, os, sys
r = json.load(sys.stdin)["limits"]["requested"]
mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
print(r["memoryBytes"] == min(mem // 2, 32 << 30), r["cpus"] == max(1, os.cpu_count() - 1), r["pids"])')
expect "limits are on by default: half the memory, all CPUs but one, 4096 processes" "True True 4096" "$defaults"
a rm -f defaults >/dev/null

echo "== the host's CAs are trusted inside (item 4)"
if [ -z "${AIRLOCK_E2E_HOST_CA:-}" ] || [ ! -r "$AIRLOCK_E2E_HOST_CA/server.pem" ]; then
    fail "a test CA in the host's trust store (scripts/test.sh sets AIRLOCK_E2E_HOST_CA)"
else
    tls_port=$(free_port)
    python3 "$here/upstream.py" --https "$tls_port:$AIRLOCK_E2E_HOST_CA/server.pem:$AIRLOCK_E2E_HOST_CA/server.key" \
        >"$work/tls.log" 2>&1 &
    server_pids+=($!)
    for _ in $(seq 50); do curl -s "https://127.0.0.1:$tls_port/" -o /dev/null --cacert "$AIRLOCK_E2E_HOST_CA/ca.pem" && break; sleep 0.1; done
    expect "companion: the host trusts the test CA" "200" \
        "$(curl -s -o /dev/null -w '%{http_code}' --resolve "corp.test:$tls_port:127.0.0.1" "https://corp.test:$tls_port/")"
    flags=(--add-host "corp.test:127.0.0.1" --allow-cidr 127.0.0.1/32 --allow-host corp.test)
    a create --name ca "${flags[@]}" shell "$ws" >/dev/null
    url="https://corp.test:$tls_port/hello"
    out=$(a run --name ca shell "$ws" -- -c "curl -s -o /dev/null -w '%{http_code} ' $url; python3 -c 'import urllib.request; print(urllib.request.urlopen(\"$url\").status)'; git ls-remote $url 2>&1 | grep -c 'SSL certificate problem'")
    expect "curl, Python and git trust the host's CA through the proxy" "200 200 0" "$(xargs <<<"$out")"
    a create --name noca --no-host-ca "${flags[@]}" shell "$ws" >/dev/null
    out=$(a run --name noca shell "$ws" -- -c "curl -s -o /dev/null -w '%{http_code}' $url; echo \" \$?\"")
    expect "with --no-host-ca the same request fails verification" "000 60" "$out"
    expect "no private key of the host's is inside" "0" \
        "$(a run --name ca shell "$ws" -- -c 'grep -c "PRIVATE KEY" /etc/ssl/certs/ca-certificates.crt /usr/local/share/ca-certificates/airlock.crt | awk -F: "{s+=\$2} END {print s}"')"
    a rm -f ca noca >/dev/null
fi

echo "== --tmp-size bounds /tmp; inspect and ls --size report disk use"
tws="$work/tmp-size"
mkdir -p "$tws" && head -c 3M /dev/urandom > "$tws/blob"
a create --name tmpsize --memory 512m --tmp-size 32m shell "$tws" >/dev/null
ts() { a run --name tmpsize shell "$tws" -- -c "$1"; }
expect "/tmp is the size asked for" "32M" "$(ts 'df -h --output=size /tmp | tail -1' | xargs)"
expect "writing past it fails with ENOSPC, and the sandbox goes on" "full ok" \
    "$(ts 'head -c 40M /dev/zero > /tmp/fill 2>/dev/null || echo full; rm -f /tmp/fill; echo ok' | xargs)"
expect "companion: what fits is written" "ok" "$(ts 'head -c 16M /dev/zero > /tmp/f && rm /tmp/f && echo ok')"
ts 'sudo head -c 10M /dev/urandom | sudo tee /opt/layer-blob >/dev/null' >/dev/null
report_json="$(a inspect tmpsize)"
layer="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["disk"]["layerBytes"])' <<<"$report_json")"
wsbytes="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["disk"]["workspaceBytes"])' <<<"$report_json")"
if [ "$layer" -ge 10000000 ] 2>/dev/null && [ "$wsbytes" -ge 3000000 ] 2>/dev/null; then
    pass "inspect: the layer holds the 10 MB written outside the workspace, the workspace its 3 MB ($layer, $wsbytes)"
else
    fail "inspect reports disk use" "layer=$layer workspace=$wsbytes"
fi
expect "inspect shows --tmp-size" "33554432" \
    "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["limits"]["requested"]["tmpBytes"])' <<<"$report_json")"
expect_match "ls --size shows the layer's, home's and workspace's size" \
    "tmpsize +[a-z]+ +shell +(container +(runc|crun)|gvisor +runsc) +1[0-9]M +[0-9.]+[BKM] +3\.[0-9]M" \
    "$(a ls --size)"
check_error "a /tmp larger than the memory is refused" "--tmp-size 2g is more than the sandbox's memory (512m)" \
    a create --name tmpsize2 --memory 512m --tmp-size 2g shell "$tws"
a rm -f tmpsize >/dev/null

echo "== no litter in the project (item 8)"
lws="$HOME/e2e-litter"
rm -rf "$lws" && git_workspace "$lws" litter
before=$(ls -A "$lws" | xargs)
a run --name litter shell "$lws" -- -c 'test -d .vscode && echo guarded' >"$work/litter.out"
expect "companion: the guard's mount points exist while it runs" "guarded" "$(cat "$work/litter.out")"
a stop litter >/dev/null
expect "after stop, ls -a shows the project as it was" "$before" "$(ls -A "$lws" | xargs)"
a run --name litter shell "$lws" -- -c 'mkdir -p .claude 2>/dev/null; true' >/dev/null
a rm -f litter >/dev/null
expect "after rm -f of a running sandbox too" "$before" "$(ls -A "$lws" | xargs)"
expect "git status is clean" "" "$(git -C "$lws" status --porcelain)"
mkdir "$lws/.vscode" && echo '{}' >"$lws/.vscode/settings.json"
a run --name litter shell "$lws" -- -c true >/dev/null
a rm -f litter >/dev/null
expect "a directory the user had stays" "settings.json" "$(ls "$lws/.vscode")"
rm -rf "$lws" "$ws"

report
