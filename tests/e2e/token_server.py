#!/usr/bin/env python3
"""A registry token server, as Docker Hub's and GHCR's work, for tests/e2e/images.sh.

    token_server.py PORT TLS_CERT TLS_KEY SIGNING_CERT SIGNING_KEY USER:PASSWORD

Serves https://127.0.0.1:PORT/token (TLS with TLS_CERT and TLS_KEY, the suite's test CA's). A
client sent there by the registry's `WWW-Authenticate: Bearer realm=...,service=...,scope=...`
gets a JWT granting the scope's actions, signed RS256 with SIGNING_KEY (an RSA key) and carrying
SIGNING_CERT in its `x5c` header, which the registry checks against its `rootcertbundle`. Anonymous requests get a token that
grants nothing; a request with Basic credentials other than USER:PASSWORD gets 401. Signing is
`openssl dgst -sha256 -sign` (no Python package needed).
"""

import base64
import http.server
import json
import ssl
import subprocess
import sys
import time
import urllib.parse
import uuid

port, tls_cert, tls_key, cert, key, credentials = int(sys.argv[1]), *sys.argv[2:7]
with open(cert) as f:
    pem = f.read()
der = base64.b64decode("".join(line for line in pem.splitlines() if line and not line.startswith("-----")))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(claims):
    header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input.encode(),
                               capture_output=True, check=True).stdout
    return signing_input + "." + b64url(signature)


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path != "/token":
            self.send_error(404)
            return
        query = urllib.parse.parse_qs(url.query)
        header = self.headers.get("Authorization", "")
        subject = ""
        if header.startswith("Basic "):
            if base64.b64decode(header[6:]).decode(errors="replace") != credentials:
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"details": "incorrect username or password"}')
                return
            subject = credentials.split(":", 1)[0]
        access = []
        for scope in query.get("scope", []):
            kind, name, actions = scope.split(":", 2) if scope.count(":") >= 2 else (scope, "", "")
            access.append({"type": kind, "name": name, "actions": actions.split(",") if subject else []})
        now = int(time.time())
        token = sign({
            "iss": "e2e-issuer", "sub": subject, "aud": query.get("service", [""])[0], "exp": now + 300,
            "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access,
        })
        body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(tls_cert, tls_key)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
