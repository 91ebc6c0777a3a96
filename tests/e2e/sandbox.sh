#!/bin/bash
# End-to-end tests of the sandbox runtime, in real sandboxes (crun where it runs, else runc;
# AIRLOCK_RUNTIME=runc runs them under runc, AIRLOCK_RUNTIME=runsc under gVisor).
# Runs as an ordinary user (scripts/test.sh creates one). Each security check runs the probe
# inside a sandbox and asserts it failed, next to a companion showing the probe itself works.
# Prints "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
AIRLOCK="${AIRLOCK:-airlock}"
export AIRLOCK_HOME="${AIRLOCK_HOME:-$HOME/.airlock-e2e}"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cleanup() { a reset -f >/dev/null 2>&1; rm -rf "$AIRLOCK_HOME/sandboxes"; }
trap cleanup EXIT

ws="$HOME/e2e-project"
rm -rf "$ws" && mkdir -p "$ws" && echo "hello" > "$ws/README"
mkdir -p "$HOME/.aws" "$HOME/.ssh" && echo "[default]" > "$HOME/.aws/credentials" && echo key > "$HOME/.ssh/id_ed25519"
name="shell-e2e-project"
sh_in() { a run shell "$ws" -- -c "$1"; }

echo "== image and first run"
a template build shell >/dev/null || { fail "template build shell"; echo "$passed passed, $failed failed"; exit 1; }
out=$(sh_in 'echo inside' 2>&1)
expect "run shell . -- -c works like bash -c" "inside" "$out"
expect "sandbox named <agent>-<dir>" "$name" "$(a ls -q)"

echo "== identity"
expect "agent runs as uid 1000 'agent'" "agent 1000" "$(sh_in 'echo $(id -un) $(id -u)')"
sh_in 'echo made-inside > created.txt'
expect "workspace file owned by the invoking user on the host" "$(id -un)" "$(stat -c %U "$ws/created.txt")"
expect "workspace is the working directory, at its host path" "$ws" "$(sh_in pwd)"
expect "hostname is the sandbox name" "$name" "$(sh_in hostname)"
if [ -n "$gvisor" ]; then
    # Root inside is gVisor's; the host kernel sees its kernel's process, as an unprivileged id.
    expect_match "gVisor: the sandbox's kernel runs on the host as an unprivileged id" "^[1-9][0-9]{4,}$" \
        "$(ps -o uid= -p "$(runsc_sandbox_pid "$name")" | tr -d ' ')"
else
    root_host_uid=$(a exec -u root "$name" -- cat /proc/self/uid_map | awk '$1==0{print $2}')
    expect_match "root inside maps to an unprivileged host id" "^[1-9][0-9]{4,}$" "$root_host_uid"
fi
expect "exec -u root gives root" "0" "$(a exec -u root "$name" -- id -u)"

echo "== host files are absent"
expect "host ~/.aws/credentials absent" "absent" "$(sh_in "test -e $HOME/.aws/credentials && echo present || echo absent")"
expect "host ~/.ssh absent" "absent" "$(sh_in "test -e $HOME/.ssh && echo present || echo absent")"
expect "companion: the probe sees the workspace" "present" "$(sh_in "test -e $ws/README && echo present || echo absent")"
if [ -n "$gvisor" ]; then
    # Inside, pid 1's stdio are descriptors its kernel got from the host: the runtime's /dev/null.
    expect "gVisor: the sandbox's init holds only what its kernel was given" "host:[1] host:[2] host:[3]" \
        "$(sh_in 'readlink /proc/1/fd/0 /proc/1/fd/1 /proc/1/fd/2 | sort | xargs')"
    expect "  which on the host is /dev/null, nothing else" "/dev/null /dev/null /dev/null" \
        "$(p=$(runsc_sandbox_pid "$name"); init=$(a inspect "$name" | python3 -c 'import json,sys; print(json.load(sys.stdin)["initPID"])')
            nsenter -t "$init" -U -- readlink "/proc/$p/fd/0" "/proc/$p/fd/1" "/proc/$p/fd/2" | xargs)"
else
    expect "the sandbox's init holds no host file open" "/dev/null /dev/null /dev/null" "$(sh_in 'readlink /proc/1/fd/0 /proc/1/fd/1 /proc/1/fd/2 | xargs')"
fi
expect "host /tmp not shared" "absent" "$(touch /tmp/airlock-e2e-host-marker; sh_in 'test -e /tmp/airlock-e2e-host-marker && echo present || echo absent')"

echo "== writes outside the workspace stay inside"
if [ -n "$gvisor" ]; then
    # gVisor's kernel ignores setuid bits: sudo says so in one line, and root comes from the host.
    check_error "gVisor: sudo inside says, in one line, how to run as root" "not available under gVisor isolation" \
        a exec "$name" -- sudo true
    a exec -u root "$name" -- touch /etc/airlock-e2e-probe /usr/airlock-e2e-probe
else
    sh_in 'sudo touch /etc/airlock-e2e-probe /usr/airlock-e2e-probe && echo ok' >/dev/null
fi
expect "companion: sudo write to /etc works inside" "yes" "$(sh_in 'test -e /etc/airlock-e2e-probe && echo yes')"
expect "write to /etc does not reach the host" "no" "$(test -e /etc/airlock-e2e-probe && echo yes || echo no)"
expect "write to /usr does not reach the host" "no" "$(test -e /usr/airlock-e2e-probe && echo yes || echo no)"
expect "/sys is read-only" "ro" "$(sh_in 'touch /sys/x 2>/dev/null && echo rw || echo ro')"
expect "/tmp is a tmpfs" "tmpfs" "$(sh_in 'stat -f -c %T /tmp')"

echo "== exit status and processes"
sh_in 'exit 7'; expect "exit 7 gives 7" "7" "$?"
a exec "$name" -- sh -c 'exit 3'; expect "exec exit status propagates" "3" "$?"
"$AIRLOCK" exec "$name" -- sh -c 'trap "echo got-term; exit 9" TERM; echo ready; sleep 100 & wait' > "$HOME/e2e-sig" 2>&1 &
sig_pid=$!
for _ in $(seq 50); do grep -q ready "$HOME/e2e-sig" 2>/dev/null && break; sleep 0.1; done
kill -TERM "$sig_pid"; wait "$sig_pid"; sig_status=$?
expect "SIGTERM to airlock exec reaches the command" "ready got-term" "$(xargs < "$HOME/e2e-sig")"
expect "and its exit status comes back" "9" "$sig_status"
rm -f "$HOME/e2e-sig"
procs=$(sh_in 'ps -e -o comm= | sort | tr "\n" " "')
expect_match "ps shows only the sandbox's processes" "^(bash |ps |sleep |sort |tini |tr )+$" "$procs"
# Run under a pseudo-terminal of 33x111, resize it to 40x120 mid-session, and read what the
# sandbox saw: a real TTY, the size at start, and the size after SIGWINCH.
tty_out=$(python3 - "$AIRLOCK" "$ws" <<'PY'
import fcntl, os, pty, struct, sys, termios, time
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
    os.execv(sys.argv[1], [sys.argv[1], "run", "shell", sys.argv[2], "--", "-c",
             "tty; [ -t 0 ] && echo is-a-tty; stty size; trap 'stty size; exit 5' WINCH; echo waiting; while :; do sleep 0.1; done"])
out = b""
deadline = time.time() + 30
while time.time() < deadline:
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
    if b"waiting" in out and b"resized" not in out:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        out += b"resized\n"
_, status = os.waitpid(pid, 0)
print(out.decode(errors="replace").replace("\r", "").replace("\n", " ").strip(), "exit", os.waitstatus_to_exitcode(status))
PY
)
# Under gVisor the terminal is the caller's own, passed to gVisor's kernel: no /dev/pts name inside.
if [ -n "$gvisor" ]; then
    expect_match "run gives a TTY (gVisor: the caller's, passed through)" "^not a tty is-a-tty " "$tty_out"
else
    expect_match "run gives a real TTY" "^/dev/pts/[0-9]+ is-a-tty " "$tty_out"
fi
expect_match "TTY has the caller's size" " 33 111 " "$tty_out"
expect_match "resize is forwarded, exit status too" "40 120 exit 5$" "$tty_out"

echo "== seccomp and capabilities (invariant 5)"
probe='import ctypes,os,sys
libc=ctypes.CDLL(None,use_errno=True)
calls={"io_uring_setup":(425,1,0),"keyctl":(250,0,-1,0),"ptrace":(101,16,1),"bpf":(321,0,0,0),
 "userfaultfd":(323,0),"getpid":(39,),"vsock":(41,40,1,0),"vsock_high_bits":(41,0x100000028,1,0),
 "packet":(41,17,3,0),"alg_high_bits":(41,0x100000026,5,0),"inet":(41,2,1,0)}
c=[ctypes.c_long(a) for a in calls[sys.argv[1]]]
r=libc.syscall(*c); e=ctypes.get_errno()
print({1:"EPERM",97:"EAFNOSUPPORT",38:"ENOSYS"}.get(e,"allowed") if r==-1 else "allowed")'
printf '%s\n' "$probe" > "$ws/probe.py"
if [ -n "$gvisor" ]; then
    # runsc 20240729 applies the OCI seccomp filter to a container's first process only; what
    # an exec runs meets gVisor's kernel, which lacks these calls or refuses them, and never
    # passes them to the host's.
    for call in io_uring_setup keyctl userfaultfd; do
        expect "gVisor: $call is not in gVisor's kernel" "ENOSYS" "$(sh_in "python3 probe.py $call")"
    done
    for call in ptrace bpf; do
        expect "gVisor: $call refused by gVisor's kernel" "EPERM" "$(sh_in "python3 probe.py $call")"
    done
    for call in vsock vsock_high_bits alg_high_bits; do
        expect "gVisor: socket family $call not in gVisor's kernel" "EAFNOSUPPORT" "$(sh_in "python3 probe.py $call")"
    done
    expect "gVisor: packet sockets refused" "EPERM" "$(sh_in "python3 probe.py packet")"
else
    for call in io_uring_setup keyctl ptrace bpf userfaultfd; do
        expect "$call denied by seccomp" "EPERM" "$(sh_in "python3 probe.py $call")"
    done
    for call in vsock vsock_high_bits packet alg_high_bits; do
        expect "socket family $call denied (upper bits cannot dodge the filter)" "EAFNOSUPPORT" "$(sh_in "python3 probe.py $call")"
    done
fi
expect "companion: an AF_INET socket is allowed" "allowed" "$(sh_in 'python3 probe.py inet')"
expect "companion: probe reports an allowed call" "allowed" "$(sh_in 'python3 probe.py getpid')"
expect "companion: keyctl is allowed on the host" "allowed" "$(python3 "$ws/probe.py" keyctl)"
expect "agent has no effective capabilities" "0000000000000000" "$(sh_in "awk '/CapEff/{print \$2}' /proc/self/status")"
if [ -n "$gvisor" ]; then
    # A user namespace made inside is gVisor's own: the host's kernel makes none. Counted over
    # the sandbox's host processes (its supervisor's tree): other suites may run beside this one.
    host_userns() {
        local supervisor
        supervisor=$(a inspect "$name" | python3 -c 'import json,sys; print(json.load(sys.stdin)["supervisorPID"])')
        ps -e -o pid=,ppid= | awk -v root="$supervisor" '{ up[$1] = $2 }
            END { for (p in up) { q = p; while (q in up && q != root && q > 1) q = up[q]; if (q == root) print p } }' |
            while read -r pid; do readlink "/proc/$pid/ns/user" 2>/dev/null; done | sort -u | wc -l
    }
    before_ns=$(host_userns)
    inside=$(sh_in 'unshare -U sh -c "echo made; sleep 2" & sleep 1; wait' &
        sleep 1.5; echo "host:$(host_userns)"; wait)
    expect "gVisor: unshare -U inside makes a namespace in gVisor's kernel (companion: it works inside)" "made" \
        "$(grep -x made <<<"$inside")"
    expect "  and the host's kernel has no new user namespace" "host:$before_ns" "$(grep '^host:' <<<"$inside")"
else
    expect "unshare of a user namespace denied" "denied" "$(sh_in 'unshare -U true 2>/dev/null && echo allowed || echo denied')"
fi

if [ -n "$gvisor" ]; then
    echo "== gVisor: the sandbox runs on gVisor's kernel; the host's sees only runsc"
    expect "the kernel inside is not the host's (/proc/version)" "differs" \
        "$([ "$(sh_in 'cat /proc/version')" != "$(cat /proc/version)" ] && echo differs || echo same)"
    expect_match "dmesg inside is gVisor's" "Starting gVisor" "$(sh_in 'dmesg 2>&1 | head -3')"
    out=$(sh_in 'sleep 4343 & sleep 0.5; pgrep -x sleep >/dev/null && echo inside-running;
        echo "host:$(cat /proc/1/cmdline | tr "\0" " ")"; kill %1' &
        sleep 1.5; pgrep -f "sleep 4343" >/dev/null && echo "host-sees-sleep"; wait)
    expect "companion: a process inside runs" "inside-running" "$(grep -x inside-running <<<"$out")"
    expect "the host's kernel has no such process (only runsc's)" "" "$(grep -x host-sees-sleep <<<"$out")"
    expect_match "every host process of the sandbox below its init is runsc's" "^(runsc-gofer |runsc-sandbox |\[exe\] )+$" \
        "$(ps -o args= --ppid "$(ps -o ppid= -p "$(runsc_sandbox_pid "$name")" | tr -d ' ')" | awk '{print $1}' | sort -u | xargs) "
fi

echo "== network: loopback only"
start=$(date +%s%N)
sh_in 'curl -sSf -m 5 http://1.1.1.1/ >/dev/null 2>&1 && echo reached || echo failed' > /tmp/airlock-e2e-curl.$$
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect "curl http://1.1.1.1 fails" "failed" "$(cat /tmp/airlock-e2e-curl.$$)"; rm -f /tmp/airlock-e2e-curl.$$
if [ "$elapsed_ms" -lt 4000 ]; then pass "curl fails at once (${elapsed_ms} ms incl. exec)"; else fail "curl fails at once" "${elapsed_ms} ms"; fi
expect "companion: loopback works inside" "served" "$(sh_in 'python3 -m http.server -b 127.0.0.1 8765 >/dev/null 2>&1 & sleep 1; curl -s -o /dev/null -w served http://127.0.0.1:8765/; kill %1')"
expect "only the loopback interface" "lo" "$(sh_in 'tail -n +3 /proc/net/dev | cut -d: -f1 | xargs')"

echo "== packages installed with sudo persist until rm"
pkg="$HOME/pkgbuild"; rm -rf "$pkg"; mkdir -p "$pkg/DEBIAN" "$pkg/usr/bin"
printf 'Package: airlock-e2e-probe\nVersion: 1.0\nArchitecture: all\nMaintainer: e2e <e2e@localhost>\nDescription: probe\n' > "$pkg/DEBIAN/control"
printf '#!/bin/sh\necho probe-installed\n' > "$pkg/usr/bin/airlock-e2e-probe"; chmod 755 "$pkg/usr/bin/airlock-e2e-probe"
dpkg-deb --root-owner-group -b "$pkg" "$ws/probe.deb" >/dev/null
if [ -n "$gvisor" ]; then a exec -u root "$name" -- dpkg -i probe.deb >/dev/null 2>&1; else sh_in 'sudo dpkg -i probe.deb >/dev/null 2>&1'; fi
expect "sudo dpkg -i installs inside" "probe-installed" "$(sh_in 'airlock-e2e-probe')"
a stop "$name" >/dev/null
expect "stop stops it" "stopped" "$(a ls --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["status"])')"
expect "installed package survives stop + run" "probe-installed" "$(sh_in 'airlock-e2e-probe')"
a rm -f "$name" >/dev/null
expect "rm removes the sandbox" "" "$(a ls -q)"
expect "package gone after rm" "gone" "$(sh_in 'command -v airlock-e2e-probe >/dev/null && echo present || echo gone')"
expect "workspace untouched by rm" "hello" "$(cat "$ws/README")"

echo "== kill -9 of the supervisor"
a run -d shell "$ws" >/dev/null
(a exec "$name" -- sh -c 'echo partial > kill-test.txt; sleep 4242' >/dev/null 2>&1 &)
sleep 1
sup=$(a inspect "$name" | python3 -c 'import json,sys; print(json.load(sys.stdin)["supervisorPID"])')
kill -9 "$sup"
sleep 1
expect "no sandbox process survives" "0" "$(pgrep -f 'sleep 4242' | wc -l)"
expect "no init or holder survives" "0" "$(pgrep -u "$(id -u)" -f "_init --state $AIRLOCK_HOME" | wc -l)"
expect "ls shows it stopped" "stopped" "$(a ls --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["status"])')"
expect "workspace intact" "partial" "$(cat "$ws/kill-test.txt")"
expect "next run works" "again" "$(sh_in 'echo again')"

echo "== errors: one line, non-zero, nothing half-made"
before=$(a ls -q | sort | tr '\n' ' ')
check_error "unknown agent" "unknown agent 'nope'" a run nope "$ws"
check_error "unknown template" "unknown template 'nope'" a create --template nope --name t1 shell "$ws"
check_error "missing workspace" "does not exist" a create shell "$HOME/no-such-dir"
mkdir -p "$HOME/other/e2e-project"
check_error "name taken by another workspace" "is taken by workspace" a create shell "$HOME/other/e2e-project"
check_error "unknown runtime" "unknown runtime" a create --runtime kata --name t2 shell "$ws"
check_error "bad memory size" "invalid memory size" a create --memory lots --name t3 shell "$ws"
check_error "exec in a missing sandbox" "no sandbox named" a exec nosuch -- true
mkdir -p "$HOME/e2e-vanishing"
a create --name vanish -v "$HOME/e2e-vanishing:/data" shell "$ws" >/dev/null && rmdir "$HOME/e2e-vanishing"
check_error "a mount source gone since create: one line naming it" "no longer exists" a run --name vanish shell "$ws" -- -c true
expect "and the sandbox is left stopped, not half-started" "stopped" "$(a inspect vanish | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')"
a rm vanish >/dev/null
mkdir -p "$ws/cache"
a create --name swap -v "$ws/cache:/cache" shell "$ws" >/dev/null
a run --name swap shell "$ws" -- -c "rm -rf $ws/cache && ln -s $HOME/.ssh $ws/cache"
a stop swap >/dev/null
check_error "a mount source swapped for a symlink is refused at start" "now resolves to" a run --name swap shell "$ws" -- -c true
a rm swap >/dev/null; rm -f "$ws/cache"
check_error "-v of the home directory refused" "holds your home directory" a create --name v1 -v "$HOME:/h" shell "$ws"
check_error "-v into airlock's state refused" "overlaps airlock's state directory" a create --name v2 -v "$AIRLOCK_HOME/images:/x" shell "$ws"
check_error "absurd memory size is an error, not a crash" "invalid memory size" a create --name m1 --memory 1e20g shell "$ws"
check_error "home directory refused as a workspace" "holds your home directory" a create shell "$HOME"
check_error "usage errors are one line too" "unexpected argument" a bogus
expect "nothing half-made after errors" "$before" "$(a ls -q | sort | tr '\n' ' ')"
expect "no partial state directories" "" "$(ls -A "$AIRLOCK_HOME/sandboxes" | grep -v -x -e "$name" || true)"

echo "== options: -e, -v, exec -w/-e"
mkdir -p "$HOME/e2e-data" && echo shared > "$HOME/e2e-data/file"
a create --name opts -e GREETING=hi -v "$HOME/e2e-data:/data:ro" shell "$ws" >/dev/null
a run --name opts shell "$ws" -- -c true
expect "-e sets the environment" "hi" "$(a exec opts -- sh -c 'echo $GREETING')"
expect "-v mounts a host path" "shared" "$(a exec opts -- cat /data/file)"
expect "-v ...:ro is read-only" "ro" "$(a exec opts -- sh -c 'touch /data/x 2>/dev/null && echo rw || echo ro')"
expect "exec -w sets the directory" "/tmp" "$(a exec -w /tmp opts -- pwd)"
expect "exec -e adds a variable" "v" "$(a exec -e K=v opts -- sh -c 'echo $K')"
a rm -f opts >/dev/null

echo "== concurrency"
a rm -f "$name" >/dev/null 2>&1
for i in 1 2 3; do (a run shell "$ws" -- -c "echo run$i" > "$HOME/e2e-conc-$i" 2>&1 &); done
for _ in $(seq 150); do [ "$(cat "$HOME"/e2e-conc-* 2>/dev/null | grep -c '^run')" = 3 ] && break; sleep 0.2; done
expect "three concurrent runs of a new sandbox all succeed" "run1 run2 run3" "$(cat "$HOME"/e2e-conc-{1,2,3} | tr '\n' ' ' | xargs)"
expect "and share one sandbox" "$name" "$(a ls -q)"
for i in 1 2 3 4 5; do (a exec "$name" -- sh -c "echo exec$i" > "$HOME/e2e-conc-x$i" 2>&1 &); done
sleep 3
expect "concurrent execs all succeed" "5" "$(cat "$HOME"/e2e-conc-x* | grep -c '^exec')"
rm -f "$HOME"/e2e-conc-*

echo "== runtimes"
default_rt=$(a doctor --json | python3 -c "import json,sys; c=[c for c in json.load(sys.stdin) if c['name']=='runtime crun'][0]; print('crun' if c['level']=='ok' else 'runc')")
[ -n "${AIRLOCK_RUNTIME:-}" ] && default_rt=$AIRLOCK_RUNTIME
expect "a new sandbox gets crun where doctor finds it works, else runc (or \$AIRLOCK_RUNTIME)" "$default_rt" \
    "$(a inspect "$name" | python3 -c 'import json,sys; print(json.load(sys.stdin)["runtime"])')"
check_error "an unknown \$AIRLOCK_RUNTIME is refused in one line" "unknown runtime 'kata'" \
    env AIRLOCK_RUNTIME=kata "$AIRLOCK" create --name t-env-rt shell "$ws"
for rt in runc crun runsc; do
    if a doctor --json | python3 -c "import json,sys; sys.exit(0 if any(c['name']=='runtime $rt' and c['level']=='ok' for c in json.load(sys.stdin)) else 1)"; then
        expect "--runtime $rt runs a sandbox (doctor says it works here)" "ok" "$(a run --name "rt-$rt" --runtime "$rt" shell "$ws" -- -c 'echo ok')"
        a rm -f "rt-$rt" >/dev/null
    else
        check_error "--runtime $rt refused up front where doctor finds it broken" "cannot run sandboxes on this host" \
            a create --name "rt-$rt" --runtime "$rt" shell "$ws"
    fi
done
expect "nothing left by refused runtimes" "$name" "$(a ls -q)"

echo "== template build lock"
mkdir -p "$HOME/.config/airlock/templates"
cat > "$HOME/.config/airlock/templates/tiny.yaml" <<'YAML'
name: tiny
description: the smallest image, for the build-lock test
packages: []
user: {name: agent, sudo: false}
steps:
  - echo built > /etc/tiny-marker
YAML
expect "user template listed" "tiny" "$(a template ls --json | python3 -c 'import json,sys; print(" ".join(t["name"] for t in json.load(sys.stdin) if t["source"] != "built-in"))')"
a template rm tiny >/dev/null 2>&1
a template build tiny > "$HOME/e2e-b1" 2> "$HOME/e2e-b1.err" & b1=$!
sleep 0.5
a template build tiny > "$HOME/e2e-b2" 2> "$HOME/e2e-b2.err" & b2=$!
wait $b1; r1=$?; wait $b2; r2=$?
expect "two concurrent builds of one template both succeed" "0 0" "$r1 $r2"
expect "and agree on the image" "$(cat "$HOME/e2e-b1")" "$(cat "$HOME/e2e-b2")"
expect_match "the second waited for the first" "waiting for another build" "$(cat "$HOME/e2e-b2.err")"
expect "one image directory for the template" "1" "$(ls "$AIRLOCK_HOME/images" | grep -c "^$(cat "$HOME/e2e-b1")$")"
expect "no build leftovers" "0" "$(ls -A "$AIRLOCK_HOME/images" | grep '^\.' | grep -vc '\.lock$')"
expect "template steps ran in the image" "built" "$(a run --name tiny --template tiny shell "$ws" -- -c 'cat /etc/tiny-marker')"
expect "no sudo in a sudo-less template" "none" "$(a exec tiny -- sh -c 'command -v sudo || echo none')"
expect "no_new_privs without sudo" "no_new_privs: 1" "$(a exec tiny -- setpriv -d | grep -o 'no_new_privs: [01]')"
a rm -f tiny >/dev/null; rm -f "$HOME"/e2e-b1* "$HOME"/e2e-b2*
digest=$(a template rm tiny)
expect "template rm removes the image" "0" "$(ls "$AIRLOCK_HOME/images" | grep -c "^$digest$")"
check_error "template rm of an unbuilt image" "has no built image" a template rm tiny

echo "== an rm killed half-way"
a run --name half shell "$ws" -- -c 'sudo touch /etc/half-marker' >/dev/null
a stop half >/dev/null
mv "$AIRLOCK_HOME/sandboxes/half" "$AIRLOCK_HOME/sandboxes/.removing-half-999999"
expect "ls does not show a sandbox being removed" "0" "$(a ls -q | grep -c '^half$\|removing')"
a create --name other shell "$ws" >/dev/null && a rm other >/dev/null
expect "the next rm finishes what the killed one left" "gone" "$(test -e "$AIRLOCK_HOME/sandboxes/.removing-half-999999" && echo present || echo gone)"

echo "== host-persistence guard"
gws="$HOME/e2e-guard"
rm -rf "$gws" && mkdir -p "$gws/sub/deep" "$gws/.claude" && echo '{}' > "$gws/.claude/settings.json"
git -C "$gws" init -q && git -C "$gws/sub/deep" init -q
probe='for p in .git/hooks/pre-commit .git/config sub/deep/.git/hooks/post-checkout sub/deep/.git/config .vscode/tasks.json .idea/workspace.xml .claude/settings.json notes.txt; do
    { echo x >> "$p"; } 2>/dev/null && echo "$p:written" || echo "$p:refused"; done'
out=$(a run --name guard shell "$gws" -- -c "$probe" 2>/dev/null | xargs)
expect "guard: git hooks and config (at any depth), editor and agent settings are read-only; companion: other files are not" \
    ".git/hooks/pre-commit:refused .git/config:refused sub/deep/.git/hooks/post-checkout:refused sub/deep/.git/config:refused .vscode/tasks.json:refused .idea/workspace.xml:refused .claude/settings.json:refused notes.txt:written" \
    "$out"
expect "guard: .vscode and .idea, missing before, exist on the host, empty" ".idea: .vscode:" \
    "$(for d in .idea .vscode; do printf '%s:%s ' "$d" "$(ls -A "$gws/$d" 2>&1)"; done | xargs)"
expect "guard: the host's hooks and settings are as they were" "0 {}" \
    "$(ls "$gws/.git/hooks" | grep -c '^pre-commit$') $(cat "$gws/.claude/settings.json")"
# Agent settings that do not exist yet cannot be made either: their directories are made at
# the top, read-only; what cannot be guarded before it exists is listed after the run. (The
# first sandbox stops first: its own guard would take the new repository into its report.)
a stop guard >/dev/null
err=$(a run --name guard3 shell "$gws" -- -c '
    for p in .gemini/settings.json .cursor/mcp.json .kiro/hooks/h.json; do
        { mkdir -p "$(dirname "$p")" && echo "{}" > "$p"; } 2>/dev/null && echo "$p:written" || echo "$p:refused"; done
    mkdir -p fresh && git -C fresh init -q && echo evil > fresh/.git/hooks/pre-commit; echo "{}" > .mcp.json; sleep 2' 2>&1)
expect "guard: missing agent settings cannot be created at the top" \
    ".gemini/settings.json:refused .cursor/mcp.json:refused .kiro/hooks/h.json:refused" "$(grep -E ':(written|refused)$' <<<"$err" | xargs)"
# Behind a filter once the watcher sees it, or moved away if the hook got in first: either way
# the host never has it (tests/e2e/git-guard.sh has more).
# Under gVisor, git's first config write is refused: gVisor's kernel keeps the new file open
# after git closes it, and the filter refuses a rename of a file open for writing.
expect_match "guard: a hook in a repository made during the run is refused or the repository moved away" \
    "(moved +$gws/fresh/\.git|refused +$gws/fresh/\.git/hooks/pre-commit${gvisor:+|refused +$gws/fresh/\.git/config})" "$err"
expect_match "guard: a new .mcp.json is listed after the run" "added +\.mcp\.json" "$err"
a stop guard guard3 >/dev/null
expect "guard: directories the guard made are removed at stop when still empty" "absent absent" \
    "$(for d in .gemini .kiro; do [ -e "$gws/$d" ] && printf 'present ' || printf 'absent '; done | xargs)"
out=$(a run --name guard2 --unprotect .vscode shell "$gws" -- -c \
    '{ mkdir -p .vscode && echo "{}" > .vscode/tasks.json; } 2>/dev/null && echo vscode:written || echo vscode:refused; { echo x >> .git/config; } 2>/dev/null && echo config:written || echo config:refused' | xargs)
expect "guard: --unprotect .vscode opens that path alone" "vscode:written config:refused" "$out"
a rm -f guard guard2 guard3 >/dev/null

echo "== clone mode"
cws="$HOME/e2e-clone"
rm -rf "$cws" && mkdir -p "$cws" && echo one > "$cws/a.txt"
git -C "$cws" init -q && git -C "$cws" add a.txt && git -C "$cws" -c user.name=e2e -c user.email=e2e@example.com commit -qm first
branch=$(git -C "$cws" symbolic-ref --short HEAD)
out=$(a run --name cl --clone shell "$cws" -- -c '
    echo two > b.txt && git add b.txt && git -c user.name=agent -c user.email=agent@example.com commit -qm "from the sandbox" && echo committed
    { echo x > .git/hooks/pre-commit; } 2>/dev/null && echo hook-written || echo hook-refused
    { echo x > .git/description; } 2>/dev/null && echo git-dir-written || echo git-dir-refused
    { echo y > /airlock/origin/c.txt; } 2>/dev/null && echo origin-written || echo origin-refused
    cat /airlock/origin/a.txt' 2>&1 | xargs)
expect "clone mode: the agent commits in its clone, cannot touch its hooks or the workspace" \
    "committed hook-refused git-dir-written origin-refused one" "$out"
expect "clone mode: the host tree is untouched" "a.txt" "$(ls "$cws" | xargs)"
expect "clone mode: the host has the remote airlock-cl" "airlock-cl" "$(git -C "$cws" remote)"
git -C "$cws" fetch -q airlock-cl 2>/dev/null
expect "clone mode: git fetch airlock-cl brings the agent's commit" "from the sandbox" \
    "$(git -C "$cws" log -1 --format=%s "airlock-cl/$branch" 2>&1)"
expect "clone mode: and the host's branch is where it was" "first" "$(git -C "$cws" log -1 --format=%s "$branch")"
a rm -f cl >/dev/null
expect "clone mode: rm takes the remote away" "" "$(git -C "$cws" remote)"
check_error "clone mode needs a git repository" "--clone needs a git repository" a create --name norepo --clone shell "$ws"

echo "== agent state: kept with the sandbox, or shared (--share-agent-state)"
# A user agent (YAML) on the shell image, keeping one state directory: fast, no install.
agents_dir="$HOME/.config/airlock/agents"
mkdir -p "$agents_dir"
printf 'name: stateful\ntemplate: shell\ncommand: [bash]\nstate: [.stateful/data]\nenv: [STATE_DIR=$HOME/.stateful/data]\n' \
    > "$agents_dir/stateful.yaml"
sws="$HOME/e2e-state"
rm -rf "$sws" "$AIRLOCK_HOME/agent-state" && mkdir -p "$sws/one" "$sws/two" "$sws/three"
a run --name st-own stateful "$sws/one" -- -c 'mkdir -p "$STATE_DIR" && echo first > "$STATE_DIR/note"' >/dev/null 2>&1
a stop st-own >/dev/null
expect "state persists across two runs of one sandbox (stopped between)" "first" \
    "$(a run --name st-own stateful "$sws/one" -- -c 'cat "$STATE_DIR/note"' 2>&1)"
expect "\$HOME in an agent's env is the sandbox user's home" "/home/agent/.stateful/data" \
    "$(a exec st-own -- printenv STATE_DIR)"
a run --share-agent-state --name st-a stateful "$sws/two" -- -c 'echo shared > "$STATE_DIR/note"' >/dev/null 2>&1
expect "--share-agent-state: another sandbox sees the first one's state" "shared" \
    "$(a run --share-agent-state --name st-b stateful "$sws/three" -- -c 'cat "$STATE_DIR/note"' 2>&1)"
expect "companion: a sandbox without the flag keeps its own" "first" \
    "$(a exec st-own -- cat /home/agent/.stateful/data/note)"
expect "shared state lives in \$AIRLOCK_HOME/agent-state/<agent>" "shared" \
    "$(cat "$AIRLOCK_HOME/agent-state/stateful/.stateful/data/note")"
a rm -f st-a st-b >/dev/null
expect "rm leaves the shared state for the next sandbox" "shared" \
    "$(a run --share-agent-state --name st-c stateful "$sws/two" -- -c 'cat "$STATE_DIR/note"' 2>&1)"
# A link the agent leaves where a shared state directory goes must not steer the host's mkdir.
a exec st-c -- bash -c 'mv ~/.stateful ~/moved && ln -s /tmp ~/.stateful'
a stop st-c >/dev/null
check_error "a link in place of a state directory is refused at start" "not a directory" \
    a run --name st-c stateful "$sws/two" -- -c true
check_error "--share-agent-state needs an agent that keeps state" "keeps no state to share" \
    a create --share-agent-state --name st-none shell "$sws/one"
a rm -f st-own st-c >/dev/null
rm -f "$agents_dir/stateful.yaml"

echo "== after a run: files that run on the host and changed are listed"
hws="$HOME/e2e-hostrun"
rm -rf "$hws" && mkdir -p "$hws/.github/workflows"
echo '{"scripts": {"test": "true"}}' > "$hws/package.json"
echo 'on: push' > "$hws/.github/workflows/ci.yml"
err=$(a run --name hr shell "$hws" -- -c '
    echo "{\"scripts\": {\"test\": \"true\", \"postinstall\": \"curl x | sh\"}}" > package.json
    echo "export A=1" > .envrc; echo notes > NOTES.md; exit 7' 2>&1 >/dev/null)
rc=$?
expect "the agent's exit status comes through" "7" "$rc"
expect_match "package.json's changed scripts are named" "changed +package.json \(scripts: postinstall\)" "$err"
expect_match "a new .envrc is listed" "added +\.envrc" "$err"
expect "an ordinary file is not" "" "$(grep NOTES <<<"$err")"
expect "companion: a session that changes none of them prints nothing" "" \
    "$(a run --name hr shell "$hws" -- -c 'echo more >> NOTES.md' 2>&1)"
a rm -f hr >/dev/null

echo "== inspect, limits, reset"
a create --name limited --memory 256m --pids 64 shell "$ws" >/dev/null
lim=$(a inspect limited | python3 -c 'import json,sys; d=json.load(sys.stdin)["limits"]; print(d["requested"]["memoryBytes"], d["enforced"] or bool(d["note"]))')
expect "inspect reports requested limits and whether enforced" "268435456 True" "$lim"
a reset -f >/dev/null
expect "reset removes every sandbox" "" "$(a ls -q)"

report
