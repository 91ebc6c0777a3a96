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
# report: prints the totals; its status is the suite's.
report() {
    echo
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ]
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
