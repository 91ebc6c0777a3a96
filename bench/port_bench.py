#!/usr/bin/env python3
"""Both ends of bench/ports.sh, standard library only (it runs on the host, in an Airlock
sandbox and in a docker container, each with its own python3).

serve BIND PORT MB: a threaded server. A connection's first byte says what it wants:
  "T"  MB megabytes (10^6 bytes) sent back as fast as sendall goes, from one buffer in
       memory (no disk, no per-connection allocation), then the server closes;
  "L"  one byte back at once, then the server closes.
  Prints "listening" once it accepts.

throughput HOST PORT MB COUNT: COUNT connections one after another, each asking for MB and
  reading all of it into one reused buffer; prints the median MB/s (connect to end of data).
latency HOST PORT N: N fresh connections one after another, each timed from the start of
  connect() to the first byte of the reply to "L"; prints "p50 p99" in ms.
ready HOST PORT SECONDS: waits until an "L" exchange succeeds (a published port listens on
  the host before the server behind it does, so a plain connect proves nothing).
hold HOST PORT SECONDS: one connection held open, sending nothing, so its owner on the host
  side (docker-proxy, the Airlock supervisor) can be seen in `ss -tnp`.
report RESULTS: the table of bench/ports.sh from lines "PATH METRIC VALUE".
"""
import socket
import socketserver
import statistics
import sys
import time

CHUNK = 4 * 1000 * 1000


class Handler(socketserver.BaseRequestHandler):
    payload = memoryview(bytes(CHUNK))
    megabytes = 200

    def handle(self):
        sock = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        want = sock.recv(1)
        if want == b"L":
            sock.sendall(b"!")
        elif want == b"T":
            left = self.megabytes * 1000 * 1000
            while left > 0:
                part = self.payload[:min(left, CHUNK)]
                sock.sendall(part)
                left -= len(part)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


def serve(bind, port, megabytes):
    Handler.megabytes = megabytes
    server = Server((bind, port), Handler)
    print("listening", flush=True)
    server.serve_forever()


def fetch(host, port, megabytes, buffer):
    """One transfer; returns MB/s. Fails if any byte is missing."""
    view = memoryview(buffer)
    got = 0
    start = time.perf_counter()
    with socket.create_connection((host, port), timeout=60) as s:
        s.sendall(b"T")
        while True:
            n = s.recv_into(view)
            if n == 0:
                break
            got += n
    seconds = time.perf_counter() - start
    if got != megabytes * 1000 * 1000:
        raise SystemExit("short transfer from %s:%d: %d bytes" % (host, port, got))
    return got / 1e6 / seconds


def throughput(host, port, megabytes, count):
    buffer = bytearray(1 << 20)
    print("%.1f" % statistics.median(fetch(host, port, megabytes, buffer) for _ in range(count)))


def one_exchange(host, port, timeout=10):
    """Seconds from the start of connect() to the reply's first byte, on a fresh connection."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start = time.perf_counter()
        s.connect((host, port))
        s.sendall(b"L")
        reply = s.recv(1)
        elapsed = time.perf_counter() - start
    finally:
        s.close()
    if reply != b"!":
        raise OSError("no reply from %s:%d" % (host, port))
    return elapsed


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def latency(host, port, count):
    times = [one_exchange(host, port) * 1000 for _ in range(count)]
    print("%.4f %.4f" % (percentile(times, 0.50), percentile(times, 0.99)))


def ready(host, port, seconds):
    end = time.monotonic() + seconds
    while True:
        try:
            one_exchange(host, port, timeout=2)
            return
        except OSError as error:
            if time.monotonic() > end:
                raise SystemExit("nothing answers on %s:%d: %s" % (host, port, error))
            time.sleep(0.1)


def hold(host, port, seconds):
    with socket.create_connection((host, port), timeout=10):
        time.sleep(seconds)


def report(path):
    """Medians over the runs of each path's figures, and Airlock's ratios to the others."""
    values = {}
    for line in open(path):
        name, metric, value = line.split()
        values.setdefault(name, {}).setdefault(metric, []).append(float(value))
    rows = [("direct", "direct, host loopback"), ("docker", "docker run -p (docker-proxy)"),
            ("airlock", "airlock --publish")]
    med = {name: {metric: statistics.median(v) for metric, v in values[name].items()} for name, _ in rows}
    print("%-30s%10s%10s%10s" % ("path", "MB/s", "p50 ms", "p99 ms"))
    for name, label in rows:
        m = med[name]
        print("%-30s%10.0f%10.3f%10.3f" % (label, m["mbps"], m["p50"], m["p99"]))
    print()
    print("%-30s%10s%10s%10s" % ("ratio", "MB/s", "p50", "p99"))
    for other in ("docker", "direct"):
        a, o = med["airlock"], med[other]
        print("%-30s%9.2fx%9.2fx%9.2fx" % ("airlock / " + other, a["mbps"] / o["mbps"], a["p50"] / o["p50"],
                                         a["p99"] / o["p99"]))
    print("(MB/s: higher is better, so a ratio below 1 is slower; latency: a ratio above 1 is slower)")


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "serve":
        serve(args[0], int(args[1]), int(args[2]))
    elif mode == "throughput":
        throughput(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif mode == "latency":
        latency(args[0], int(args[1]), int(args[2]))
    elif mode == "ready":
        ready(args[0], int(args[1]), float(args[2]))
    elif mode == "hold":
        hold(args[0], int(args[1]), float(args[2]))
    elif mode == "report":
        report(args[0])
    else:
        raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    main()
