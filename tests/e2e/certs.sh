#!/bin/bash
# A throwaway certificate authority and one server certificate it signs, for test upstreams.
# Usage: certs.sh DIR SUBJECT-ALT-NAMES   (e.g. "DNS:allowed.test,IP:127.0.0.1")
# Writes DIR/ca.pem, DIR/server.pem and DIR/server.key (P-256, valid two days).
set -euo pipefail
dir="$1"
names="$2"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=Airlock test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=airlock test server" \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
printf 'subjectAltName=%s\n' "$names" > "$dir/san.ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
    -extfile "$dir/san.ext" -out "$dir/server.pem" 2>/dev/null
