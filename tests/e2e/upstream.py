#!/usr/bin/env python3
"""Test upstreams for the egress end-to-end suite, all on host loopback.

  upstream.py --http PORT [--http PORT ...] [--https PORT:CERT:KEY ...] [--dns PORT --dns-log FILE]

Every HTTP(S) server answers with a JSON echo of what it received (method, path, Host,
headers), so a test can see what the proxy passed on; `/redirect?to=URL` answers 302,
`/bytes?n=N` streams N bytes, and a WebSocket upgrade gets 101 and one echoed frame. The DNS
server answers every A query with 127.0.0.1 and appends each queried name to --dns-log, so a
test can count what reached it.
"""
import argparse
import base64
import hashlib
import json
import socket
import socketserver
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def _reply(self, status, body, headers=()):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self):
        url = urlparse(self.path)
        query = parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.headers.get("Upgrade", "").lower() == "websocket":
            return self._websocket()
        if url.path == "/redirect":
            return self._reply(302, "", [("Location", query["to"][0])])
        if url.path == "/bytes":
            return self._stream(int(query["n"][0]))
        echo = {
            "method": self.command,
            "path": self.path,
            "host": self.headers.get("Host"),
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode(errors="replace"),
            "server": self.server.label,
        }
        self._reply(200, json.dumps(echo), [("Content-Type", "application/json")])

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def _stream(self, size):
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        chunk = memoryview(b"x" * (1 << 20))
        while size > 0:
            n = min(size, len(chunk))
            self.wfile.write(chunk[:n])
            size -= n

    def _websocket(self):
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept.decode())
        self.end_headers()
        self.wfile.flush()
        # One masked text frame from the client, echoed back unmasked.
        head = self.rfile.read(2)
        size = head[1] & 0x7F
        mask = self.rfile.read(4)
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(size)))
        self.wfile.write(bytes([0x81, len(payload)]) + payload)
        self.wfile.flush()
        self.close_connection = True


def serve_http(port, label, context=None):
    server = ThreadingHTTPServer(("127.0.0.1", port), Echo)
    server.daemon_threads = True
    server.label = label
    if context:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()


class DNS(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        if len(data) < 12:
            return
        labels, i = [], 12
        while i < len(data) and data[i]:
            labels.append(data[i + 1 : i + 1 + data[i]].decode(errors="replace"))
            i += 1 + data[i]
        question = data[12 : i + 5]
        name = ".".join(labels).lower()
        with open(self.server.log, "a") as log:
            log.write(name + "\n")
        answer = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x05\x00\x04" + socket.inet_aton("127.0.0.1")
        reply = data[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + question + answer
        sock.sendto(reply, self.client_address)


class ConnectProxy(socketserver.StreamRequestHandler):
    """A plain CONNECT proxy, standing in for a corporate one; logs each target."""

    def handle(self):
        line = self.rfile.readline().decode()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        method, target, _ = line.split(" ", 2)
        with open(self.server.log, "a") as log:
            log.write(target + "\n")
        host, port = target.rsplit(":", 1)
        upstream = socket.create_connection((host.strip("[]"), int(port)))
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.wfile.flush()

        def pump(source, sink):
            try:
                while data := source.recv(65536):
                    sink.sendall(data)
            except OSError:
                pass
            finally:
                sink.close()

        threading.Thread(target=pump, args=(upstream, self.connection), daemon=True).start()
        pump(self.connection, upstream)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, action="append", default=[])
    parser.add_argument("--https", action="append", default=[], help="PORT:CERT:KEY")
    parser.add_argument("--dns", type=int)
    parser.add_argument("--dns-log")
    parser.add_argument("--connect-proxy", type=int)
    parser.add_argument("--connect-log")
    args = parser.parse_args()
    for port in args.http:
        serve_http(port, f"http:{port}")
    for spec in args.https:
        port, cert, key = spec.split(":")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        serve_http(int(port), f"https:{port}", context)
    if args.dns:
        server = socketserver.ThreadingUDPServer(("127.0.0.1", args.dns), DNS)
        server.log = args.dns_log
        threading.Thread(target=server.serve_forever, daemon=True).start()
    if args.connect_proxy:
        server = socketserver.ThreadingTCPServer(("127.0.0.1", args.connect_proxy), ConnectProxy)
        server.daemon_threads = True
        server.log = args.connect_log
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
