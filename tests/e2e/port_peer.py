#!/usr/bin/env python3
"""Both ends of a published port, for tests/e2e/ports.sh.

serve: a threaded server (run inside a sandbox) that answers an HTTP GET with its marker and
the peer it saw, upgrades a WebSocket request (RFC 6455 handshake) and echoes its text
frames, and echoes lines on a connection that says "HOLD".

get HOST PORT: prints the body of GET /.
websocket HOST PORT N: upgrades, sends N masked text frames, prints each echo.
hold HOST PORT SECONDS: keeps one connection open that long, a line now and then, idle gaps
between; prints "held N" with the number of echoes.
concurrent HOST PORT N: opens N connections at once, each a GET; prints "ok K of N".
"""
import base64
import hashlib
import os
import socket
import socketserver
import struct
import sys
import threading
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC11B85"


def read_headers(stream):
    lines = []
    while True:
        line = stream.readline(8192)
        if not line or line in (b"\r\n", b"\n"):
            return lines
        lines.append(line.decode("latin-1").rstrip("\r\n"))


def read_frame(stream):
    head = stream.read(2)
    if len(head) < 2:
        return None
    length = head[1] & 0x7F
    if length == 126:
        length = struct.unpack(">H", stream.read(2))[0]
    elif length == 127:
        length = struct.unpack(">Q", stream.read(8))[0]
    mask = stream.read(4) if head[1] & 0x80 else None
    data = bytearray(stream.read(length))
    if mask:
        for i in range(len(data)):
            data[i] ^= mask[i % 4]
    return head[0] & 0x0F, bytes(data)


def frame(payload, masked):
    header = bytearray([0x81])
    length = len(payload)
    if length < 126:
        header.append((0x80 if masked else 0) | length)
    else:
        header.append((0x80 if masked else 0) | 126)
        header += struct.pack(">H", length)
    if not masked:
        return bytes(header) + payload
    mask = os.urandom(4)
    return bytes(header) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Handler(socketserver.StreamRequestHandler):
    marker = "marker"

    def handle(self):
        first = self.rfile.readline(8192).decode("latin-1").rstrip("\r\n")
        if first == "HOLD":
            self.wfile.write(b"HOLDING\n")
            for line in self.rfile:
                self.wfile.write(b"echo " + line)
            return
        headers = read_headers(self.rfile)
        fields = {h.split(":", 1)[0].strip().lower(): h.split(":", 1)[1].strip() for h in headers if ":" in h}
        if fields.get("upgrade", "").lower() == "websocket":
            accept = base64.b64encode(hashlib.sha1((fields["sec-websocket-key"] + GUID).encode()).digest()).decode()
            self.wfile.write(
                ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: %s\r\n\r\n" % accept).encode())
            while True:
                got = read_frame(self.rfile)
                if got is None or got[0] == 8:
                    return
                self.wfile.write(frame(b"echo " + got[1], masked=False))
                self.wfile.flush()
        body = ("%s from %s\n" % (self.marker, self.client_address[0])).encode()
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


def serve(bind, port, marker):
    Handler.marker = marker
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    Server.address_family = family
    server = Server((bind, port), Handler)
    print("listening", flush=True)
    server.serve_forever()


def connect(host, port):
    return socket.create_connection((host, port), timeout=10)


def request(s):
    """Sends GET / on a connected socket; returns all of the answer, up to the server's close."""
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


def get(host, port):
    with connect(host, port) as s:
        data = request(s)
    return data.split(b"\r\n\r\n", 1)[1].decode() if b"\r\n\r\n" in data else ""


def websocket(host, port, count):
    with connect(host, port) as s:
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
        stream = s.makefile("rb")
        status = stream.readline().decode().strip()
        fields = {h.split(":", 1)[0].strip().lower(): h.split(":", 1)[1].strip() for h in read_headers(stream) if ":" in h}
        want = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        print(status.split(" ", 2)[1], "accept-ok" if fields.get("sec-websocket-accept") == want else "accept-bad")
        for i in range(count):
            s.sendall(frame(b"message %d" % i, masked=True))
            print(read_frame(stream)[1].decode())


def hold(host, port, seconds):
    with connect(host, port) as s:
        s.settimeout(seconds + 10)
        stream = s.makefile("rb")
        s.sendall(b"HOLD\n")
        stream.readline()
        echoes, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            s.sendall(b"tick %d\n" % echoes)
            if stream.readline().startswith(b"echo tick"):
                echoes += 1
            time.sleep(min(3, max(0, end - time.monotonic())))
    print("held", echoes)


def concurrent(host, port, count):
    results = []
    barrier = threading.Barrier(count)

    def one():
        try:
            s = connect(host, port)
            barrier.wait(timeout=30)
            data = request(s)
            s.close()
            results.append(b" 200 OK" in data)
        except Exception:
            results.append(False)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("ok %d of %d" % (sum(results), count))


def main():
    mode = sys.argv[1]
    if mode == "serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif mode == "get":
        print(get(sys.argv[2], int(sys.argv[3])), end="")
    elif mode == "websocket":
        websocket(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "hold":
        hold(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    elif mode == "concurrent":
        concurrent(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))


if __name__ == "__main__":
    main()
