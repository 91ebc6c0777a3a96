#!/usr/bin/env bash
# Fuzzes AirlockWire's parsers (request heads, request targets, body framing, ClientHello)
# with libFuzzer and AddressSanitizer. The harness also checks invariants (round trips,
# split-invariance of the framer), so a logic slip is a crash too.
#
#   fuzz/run.sh [SECONDS]      # default 60
#
# Exits non-zero on a crash; the input that caused it is kept in $FUZZ_WORK/artifacts and
# replays with: $FUZZ_WORK/fuzz-wire $FUZZ_WORK/artifacts/crash-...
# FUZZ_WORK (default .build/fuzz-wire, ignored by git) holds the build, the seeds and the
# corpus, which grows from run to run.
set -euo pipefail

seconds=${1:-60}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=${FUZZ_WORK:-$root/.build/fuzz-wire}
flags=(-O -g -sanitize=fuzzer,address -parse-as-library -use-ld=lld)

mkdir -p "$work/modules" "$work/seeds" "$work/corpus" "$work/artifacts"

# SwiftPM cannot build with -sanitize=fuzzer, so the two modules are compiled by hand, in
# dependency order, as instrumented static libraries.
build_module() {
    local name=$1
    swiftc "${flags[@]}" -module-name "$name" -I "$work/modules" \
        -emit-module -emit-module-path "$work/modules/$name.swiftmodule" \
        -emit-library -static -o "$work/lib$name.a" "$root/Sources/$name"/*.swift
}
echo "building the fuzzer in $work"
build_module AirlockPolicy
build_module AirlockWire
swiftc "${flags[@]}" -I "$work/modules" "$root/fuzz/FuzzWire/main.swift" \
    -L "$work" -lAirlockWire -lAirlockPolicy -o "$work/fuzz-wire"

# Seeds: one valid example of each input the parsers meet, so the fuzzer starts deep.
seed() { printf '%b' "$2" >"$work/seeds/$1"; }
seed connect 'CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\nProxy-Authorization: Basic YTpi\r\n\r\n'
seed absolute 'GET http://example.com/a?b=c HTTP/1.1\r\nHost: example.com\r\nContent-Length: 4\r\n\r\nbodyGET / HTTP/1.1\r\n\r\n'
seed chunked 'POST http://[::1]:8080/ HTTP/1.1\r\nHost: [::1]:8080\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4;a=b\r\nWiki\r\n0000A\r\n0123456789\r\n0\r\nExpires: never\r\n\r\nGET / HTTP/1.1\r\n\r\n'
seed smuggle '\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
seed options 'OPTIONS * HTTP/1.0\r\nX:\t v \r\n\r\n'
seed chunk-body '1a;ext="q s"\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nT: v\r\n\r\n'
seed authority '[2001:db8::1]:443'
# What Python's ssl module (OpenSSL 3.0) sends for server_hostname="api.example.com".
hello=1603010200010001fc030376b909641dcdd91e765f2363d2d485a08c046fe503d9ef291c31bf3acc44995b20cb1f089ad1960ed8
hello+=a20333761a1a22395dd13a5b1e57265fd9a0e59bce2c18310024130213031301c02cc030c02bc02fcca9cca8c024c028c023c0270
hello+=09f009e006b006700ff0100018f00000014001200000f6170692e6578616d706c652e636f6d000b000403000102000a00160014
hello+=001d0017001e0019001801000101010201030104002300000016000000170000000d002a0028040305030603080708080809080a
hello+=080b080408050806040105010601030303010302040205020602002b00050403040303002d00020101003300260024001d002018
hello+=0d3caab69a7477f70ab0bf07e861b35d3da38f0079968eda4fd107f51d0a2f001500de
hello+=$(printf '00%.0s' {1..222})
seed client-hello "$(printf '%s' "$hello" | sed 's/../\\x&/g')"

cat >"$work/wire.dict" <<'EOF'
"\x0d\x0a"
"\x0d\x0a\x0d\x0a"
" HTTP/1.1"
"CONNECT "
"http://"
"https://"
"Host: "
"Content-Length: "
"Transfer-Encoding: "
"chunked"
";"
":443"
"[::1]"
"\x16\x03\x01"
"\x00\x00"
EOF

echo "fuzzing for $seconds s"
status=0
"$work/fuzz-wire" "$work/corpus" "$work/seeds" -dict="$work/wire.dict" -max_total_time="$seconds" \
    -max_len=8192 -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$work/artifacts/" -print_final_stats=1 \
    >"$work/fuzz.log" 2>&1 || status=$?

if [[ $status -ne 0 ]]; then
    tail -n 60 "$work/fuzz.log"
    echo "fuzzing found a crash (exit $status); input in $work/artifacts, full log in $work/fuzz.log" >&2
    exit "$status"
fi
grep -E '^(Done|stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb))' "$work/fuzz.log"
echo "no crash; corpus: $(find "$work/corpus" -type f | wc -l) inputs"
