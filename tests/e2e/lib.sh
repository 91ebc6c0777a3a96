# Shared by the end-to-end scripts: counters, checks and the closing "N passed, N failed".
# Source it after setting AIRLOCK (the binary under test).
passed=0
failed=0
pass() { passed=$((passed + 1)); printf 'ok    %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$1"; [ -n "${2:-}" ] && printf '      %s\n' "$2"; }
# expect NAME WANT GOT
expect() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "want [$2] got [$3]"; fi; }
# expect_match NAME REGEX GOT
expect_match() { if [[ "$3" =~ $2 ]]; then pass "$1"; else fail "$1" "want /$2/ got [$3]"; fi; }
# check_error NAME EXPECTED-SUBSTRING CMD...: fails with exactly one line on stderr that says it
check_error() {
    local label="$1" want="$2"; shift 2
    local err rc lines
    err=$("$@" 2>&1 >/dev/null); rc=$?
    lines=$(printf '%s' "$err" | grep -c '')
    if [ $rc -ne 0 ] && [ "$lines" = 1 ] && [[ "$err" == *"$want"* ]]; then pass "$label"; else fail "$label" "rc=$rc err=[$err]"; fi
}
a() { "$AIRLOCK" "$@"; }
# Set when the suite runs under gVisor (AIRLOCK_RUNTIME=runsc): where gVisor's kernel answers
# differently from the host's, a check says what holds there instead.
gvisor=""
[ "${AIRLOCK_RUNTIME:-}" = runsc ] && gvisor=1
# runsc_sandbox_pid SANDBOX: the host pid of the sandbox's gVisor kernel (runsc-sandbox).
runsc_sandbox_pid() {
    ps -eo pid=,args= | grep -F -- "--root=$AIRLOCK_HOME/sandboxes/$1/runc" | awk '$2 == "runsc-sandbox" {print $1; exit}'
}
# A command's output on one line, words separated by one space (xargs, without its quoting).
one_line() { tr -s ' \t\n' '   ' | sed 's/^ //; s/ $//'; }
# report: prints the totals; its status is the suite's.
report() {
    echo
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ]
}
# save_network_log SANDBOX FILE: the sandbox's network log, as JSON lines, in FILE for net.
save_network_log() { net_log_file="$2"; a network log "$1" --json > "$2"; }
# net EXPR: prints a Python expression over the entries (e) of the log save_network_log saved.
net() {
    python3 - "$net_log_file" "$1" <<'EOF'
import json, sys
e = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print(eval(sys.argv[2]))
EOF
}
# find_in_sandbox SANDBOX SECRET PATH...: how many files under the PATHs inside the sandbox
# (and the environ and cmdline of each of its processes, under /proc) hold SECRET. The secret
# travels reversed, so the search's own command line does not hold it.
find_in_sandbox() {
    local sandbox="$1" secret="$2"
    shift 2
    a exec -i "$sandbox" -- python3 - "$(rev <<<"$secret")" "$@" <<'EOF'
import os, sys
key = sys.argv[1][::-1].encode(); me = str(os.getpid()); found = 0
for top in sys.argv[2:]:
    for root, dirs, files in os.walk(top):
        if root == '/proc':
            dirs[:] = [d for d in dirs if d.isdigit() and d != me]
            files = []
        elif root.startswith('/proc/'):
            dirs[:] = []
            files = [f for f in files if f in ('environ', 'cmdline')]
        for name in files:
            try:
                with open(os.path.join(root, name), 'rb') as f:
                    found += key in f.read(4 << 20)
            except OSError:
                pass
print(found)
EOF
}
# mcp_client_venv DIR SPEC: a venv in DIR/venv with the MCP client from PyPI (SPEC: a pip
# requirement, e.g. mcp or 'mcp<2'); passes or fails the step, and ends the suite if it failed.
mcp_client_venv() {
    local dir="$1" spec="$2"
    echo "== the MCP client: $spec from PyPI, in a venv"
    if python3 -m venv "$dir/venv" >"$dir/venv.log" 2>&1 &&
        "$dir/venv/bin/pip" install --disable-pip-version-check -q "$spec" >>"$dir/venv.log" 2>&1; then
        pass "pip install $spec: mcp $("$dir/venv/bin/pip" show mcp | sed -n 's/^Version: //p')"
    else
        fail "pip install $spec" "$(tail -n 5 "$dir/venv.log")"
        report
        exit 1
    fi
}
# rand N: N random bytes as hex.
rand() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# plant_aws_canary LABEL SECRET: adds a profile [LABEL] holding SECRET to the host user's real
# ~/.aws/credentials, next to whatever is there; remove_aws_canary takes out exactly its lines
# (and the file and directory, if they were not there before).
plant_aws_canary() {
    aws_canary_label="$1"
    aws_canary="$2"
    aws_file="$HOME/.aws/credentials"
    aws_existed=""
    [ -e "$aws_file" ] && aws_existed=1
    aws_dir_existed=""
    [ -d "$HOME/.aws" ] && aws_dir_existed=1
    mkdir -p "$HOME/.aws"
    printf '[%s]\naws_secret_access_key = %s\n' "$aws_canary_label" "$aws_canary" >>"$aws_file"
    expect "companion: the canary is in the host's ~/.aws/credentials" "1" "$(grep -c "$aws_canary" "$aws_file")"
}
remove_aws_canary() {
    [ -n "${aws_file:-}" ] || return 0
    if [ -n "$aws_existed" ]; then
        sed -i -e "/^\[$aws_canary_label\]$/d" -e "/$aws_canary/d" "$aws_file"
    else
        rm -f "$aws_file"
        [ -n "$aws_dir_existed" ] || rmdir "$HOME/.aws" 2>/dev/null
    fi
}

# git_workspace DIR MARKER: DIR made afresh as a git repository with one commit, a README
# holding MARKER.
git_workspace() {
    rm -rf "$1" && mkdir -p "$1"
    git -C "$1" init -q
    echo "$2" >"$1/README.md"
    git -C "$1" add README.md
    git -C "$1" -c user.name=e2e -c user.email=e2e@example.com commit -qm init
}

# need_port_443: ends the suite with a failure when this user may not bind port 443 (the fake
# model APIs listen there; scripts/test.sh lowers the bound for the run).
need_port_443() {
    local start
    start=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)
    if [ "$start" -gt 443 ] && [ "$(id -u)" != 0 ]; then
        fail "the fake API needs port 443 on host loopback" \
            "ip_unprivileged_port_start is $start; scripts/test.sh lowers it"
        report
        exit
    fi
}

# fork_probe N: a shell command that starts N children that sleep 3 s and prints "refused" if a
# fork failed, else "all-started". In Python: a shell whose own fork fails (for a command
# substitution, say) may print nothing at all.
fork_probe() {
    printf '%s' "python3 -c '
import os, time
started = 0
for _ in range($1):
    try:
        if os.fork() == 0:
            time.sleep(3)
            os._exit(0)
        started += 1
    except OSError:
        break
print(\"refused\" if started < $1 else \"all-started\")'"
}
