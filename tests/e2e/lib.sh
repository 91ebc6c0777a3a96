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
