#!/usr/bin/env python3
"""Load client (and upstream) for bench/proxy-load.sh; standard library only, Python 3.11+.

  proxy_load.py --serve PORT
      A minimal asyncio HTTP/1.1 upstream on 127.0.0.1:PORT: every GET answers 200 with a fixed
      64-byte body (`/small`; other paths 404), keep-alive, no logging. Prints "ready".

  proxy_load.py --proxy HOST:PORT --url http://127.0.0.1:PORT/small -c N [--duration S]
                [--timeout S] [--setup-timeout S]
      N connections (all in this one process), each a client that opens a TCP connection to the
      proxy (or, without --proxy, to the upstream itself) and sends absolute-form
      `GET http://.../small HTTP/1.1` requests one after another on it (keep-alive, no
      pipelining). First every connection is opened and answers one untimed warm-up request
      (so the proxy has dialled the upstream), within --setup-timeout; then all of them send
      requests for --duration seconds. A request is counted once its whole response is read;
      requests still in flight at the end are waited for (up to --timeout) and counted, and
      req/s is ok requests / (end of the last one - start). If the proxy closes a connection
      (Connection: close, or end of stream after a response), the client opens a new one and
      the next request's latency includes that connect. A failed request (no answer within
      --timeout, a reset, a malformed or non-200 answer) counts as failed, the connection is
      dropped and the client reconnects (after 50 ms). Connections that could not be set up
      join in as soon as they connect during the timed phase. The whole run is bounded
      (setup + duration + timeout + 5 s): anything still hanging then is cancelled and
      counted as failed. Prints one JSON line: ok, failed, errors by kind, req_s, p50_ms,
      p99_ms, connects (TCP connections opened), setup_failed (and setup_errors by kind),
      retries (requests resent on a new connection, see above), aborted.
"""
import argparse
import asyncio
import json
import resource
import statistics
import sys
import time
from urllib.parse import urlsplit

BODY = b"x" * 63 + b"\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# ----------------------------------------------------------------------------- upstream


class Upstream(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""

    def data_received(self, data):
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > 65536:
                    self.transport.close()
                return
            head = self.buffer[:end]
            line, _, fields = head.partition(b"\r\n")
            parts = line.split(b" ")
            if len(parts) != 3:
                self.transport.close()
                return
            length, close = 0, parts[2] == b"HTTP/1.0"
            for field in fields.split(b"\r\n"):
                name, _, value = field.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection":
                    value = value.strip().lower()
                    close = value == b"close" or (close and value != b"keep-alive")
            if len(self.buffer) < end + 4 + length:  # a body (the client sends none): wait for it
                return
            self.buffer = self.buffer[end + 4 + length :]
            path = parts[1]
            if path.startswith(b"http://"):
                path = b"/" + path.split(b"/", 3)[3] if path.count(b"/") >= 3 else b"/"
            self.transport.write(OK if path.split(b"?")[0] == b"/small" else NOT_FOUND)
            if close:
                self.transport.close()
                return


async def serve(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Upstream, "127.0.0.1", port, backlog=4096, reuse_address=True)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


# ----------------------------------------------------------------------------- client


class Stats:
    def __init__(self, clients):
        self.clients = clients
        self.ok = 0
        self.latencies = []
        self.errors = {}
        self.connects = 0
        self.retries = 0  # a request sent on a kept-alive connection the proxy had just closed
        self.setup_failed = 0
        self.setup_errors = {}
        self.ready = 0
        self.finished = 0
        self.all_ready = asyncio.Event()
        self.all_finished = asyncio.Event()
        self.last_done = None

    def fail(self, kind):
        self.errors[kind] = self.errors.get(kind, 0) + 1


class Connection(asyncio.Protocol):
    """One TCP connection; events go to its client, which ignores those of a dropped one."""

    def __init__(self, client):
        self.client = client
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.client.received(self, data)

    def connection_lost(self, exc):
        self.client.lost(self, exc)


def parse_head(head):
    """(status, content length or None, close) of a response head (without the blank line)."""
    line, _, fields = head.partition(b"\r\n")
    parts = line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError("bad status line")
    status = int(parts[1])
    length = None
    close = parts[0] == b"HTTP/1.0"
    for field in fields.split(b"\r\n"):
        name, _, value = field.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name in (b"connection", b"proxy-connection"):
            value = value.strip().lower()
            close = value == b"close" or (close and value != b"keep-alive")
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            raise ValueError("chunked answer")
    return status, length, close


class Client:
    """One simulated client: requests one after another, reconnecting when it must.

    Callback-driven (no coroutine per request) so the client spends as little CPU as it can:
    on two cores it shares the machine with the proxy and the upstream."""

    def __init__(self, args, stats, loop):
        self.args, self.stats, self.loop = args, stats, loop
        self.conn = None
        self.phase = "setup"  # setup -> ready -> run -> finished
        self.started = None  # when the request in flight began (incl. a connect it needed)
        self.sent = False  # the request in flight went out on self.conn
        self.fresh = False  # self.conn has not carried a request yet
        self.buffer = bytearray()
        self.head = None
        self.end = 0.0

    # -- driving

    def begin(self):
        self.started = time.perf_counter()
        self.loop.create_task(self.open_and_send())

    def go(self, end):
        self.end = end
        self.phase = "run"
        self.next_request()

    def next_request(self):
        now = time.perf_counter()
        if self.phase != "run" or now >= self.end:
            self.finish()
            return
        self.started = now
        if self.conn is None:
            self.loop.create_task(self.open_and_send())
        else:
            self.send()

    async def open_and_send(self):
        timeout = self.args.setup_timeout if self.phase == "setup" else self.args.timeout
        try:
            async with asyncio.timeout(timeout):
                _, conn = await self.loop.create_connection(lambda: Connection(self), self.args.host, self.args.port)
        except (Exception, TimeoutError) as error:
            self.failed(error_kind(error, "connect "))
            return
        self.stats.connects += 1
        self.conn = conn
        self.fresh = True
        self.send()

    def send(self):
        self.sent = True
        self.buffer.clear()
        self.head = None
        self.conn.transport.write(self.args.request)

    def drop(self):
        if self.conn is not None:
            self.conn.transport.abort()
            self.conn = None

    # -- outcomes

    def succeeded(self, status, close):
        now = time.perf_counter()
        self.sent = False
        if close:
            self.drop()
        if status != 200:
            self.failed(f"status {status}")
            return
        if self.phase == "setup":
            self.setup_done()
            return
        self.stats.ok += 1
        self.stats.latencies.append(now - self.started)
        self.stats.last_done = now
        self.next_request()

    def failed(self, kind):
        self.sent = False
        self.started = None
        self.drop()
        if self.phase == "setup":
            self.stats.setup_failed += 1
            self.stats.setup_errors[kind] = self.stats.setup_errors.get(kind, 0) + 1
            self.setup_done()
            return
        self.stats.fail(kind)
        self.loop.call_later(0.05, self.next_request)

    def setup_done(self):
        self.started = None
        self.phase = "ready"
        self.stats.ready += 1
        if self.stats.ready == self.stats.clients:
            self.stats.all_ready.set()

    def finish(self):
        if self.phase == "finished":
            return
        self.drop()
        self.phase = "finished"
        self.started = None
        self.stats.finished += 1
        if self.stats.finished == self.stats.clients:
            self.stats.all_finished.set()

    def check_timeout(self, now):
        limit = self.args.setup_timeout if self.phase == "setup" else self.args.timeout
        if self.started is not None and self.sent and now - self.started > limit:
            self.failed("timeout")

    # -- connection events

    def received(self, conn, data):
        if conn is not self.conn or not self.sent:
            return
        buffer = self.buffer
        buffer += data
        try:
            if self.head is None:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(buffer) > 65536:
                        raise ValueError("head too long")
                    return
                status, length, close = parse_head(bytes(buffer[:end]))
                self.head = (end + 4, status, length, close)
            start, status, length, close = self.head
        except ValueError:
            self.failed("malformed")
            return
        if length is not None and len(buffer) >= start + length:
            self.fresh = False
            self.succeeded(status, close)

    def lost(self, conn, exc):
        if conn is not self.conn:
            return
        self.conn = None
        if not self.sent:
            return  # idle: the next request opens a new connection
        if self.head is not None and self.head[2] is None:
            self.succeeded(self.head[1], True)  # a body delimited by the end of the stream
        elif not self.buffer and not self.fresh:
            # Closed without a byte of answer on a kept-alive connection: what every HTTP
            # client retries on a new one (tinyproxy closes after each answer). The time
            # spent counts towards this request's latency.
            self.stats.retries += 1
            self.sent = False
            self.loop.create_task(self.open_and_send())
        else:
            self.failed("closed" if exc is None else error_kind(exc))


def error_kind(error, prefix=""):
    if isinstance(error, TimeoutError):
        return prefix + "timeout"
    if isinstance(error, ConnectionRefusedError):
        return prefix + "refused"
    if isinstance(error, (ConnectionResetError, BrokenPipeError)):
        return prefix + "reset"
    if isinstance(error, OSError):
        return prefix + f"errno {error.errno}"
    return prefix + type(error).__name__


def percentile(values, fraction):
    values = sorted(values)
    return values[min(len(values) - 1, int(fraction * len(values)))]


async def load(args):
    loop = asyncio.get_running_loop()
    stats = Stats(args.concurrency)
    clients = [Client(args, stats, loop) for _ in range(args.concurrency)]

    async def watch():
        while True:
            await asyncio.sleep(0.05)
            now = time.perf_counter()
            for client in clients:
                client.check_timeout(now)

    watcher = loop.create_task(watch())
    t0 = time.perf_counter()
    for client in clients:
        client.begin()
    aborted = False
    start = None
    try:
        async with asyncio.timeout(args.setup_timeout + args.duration + args.timeout + 5):
            await stats.all_ready.wait()  # each client set up, or gave up (setup_timeout)
            start = time.perf_counter()
            for client in clients:
                client.go(start + args.duration)
            await stats.all_finished.wait()
    except TimeoutError:
        aborted = True
        # Whatever is still outstanding then hangs: one failed request per client.
        stats.errors["aborted"] = sum(1 for c in clients if c.phase != "finished")
    watcher.cancel()
    for client in clients:
        client.drop()
    finish = time.perf_counter()
    if start is None:
        start = finish
    setup_s = start - t0
    if aborted:
        elapsed = finish - start
    else:
        elapsed = max(args.duration, (stats.last_done or start) - start)
    lat = stats.latencies
    result = {
        "concurrency": args.concurrency,
        "ok": stats.ok,
        "failed": sum(stats.errors.values()),
        "errors": stats.errors,
        "req_s": round(stats.ok / elapsed, 1) if stats.ok and elapsed > 0 else 0.0,
        "p50_ms": round(percentile(lat, 0.50) * 1e3, 3) if lat else None,
        "p99_ms": round(percentile(lat, 0.99) * 1e3, 3) if lat else None,
        "mean_ms": round(statistics.fmean(lat) * 1e3, 3) if lat else None,
        "elapsed_s": round(elapsed, 3),
        "setup_s": round(setup_s, 3),
        "setup_failed": stats.setup_failed,
        "setup_errors": stats.setup_errors,
        "connects": stats.connects,
        "retries": stats.retries,
        "aborted": aborted,
        "nofile": args.nofile,
    }
    print(json.dumps(result), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", type=int, metavar="PORT")
    parser.add_argument("--proxy", metavar="HOST:PORT", help="without it, straight to the upstream")
    parser.add_argument("--url", default="http://127.0.0.1:19480/small")
    parser.add_argument("-c", "--concurrency", type=int, default=100)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=5.0, help="per request (and reconnect)")
    parser.add_argument("--setup-timeout", type=float, default=15.0)
    args = parser.parse_args()
    args.nofile = raise_nofile()
    if args.serve:
        asyncio.run(serve(args.serve))
        return
    url = urlsplit(args.url)
    target_host, target_port = url.hostname, url.port or 80
    if args.proxy:
        host, _, port = args.proxy.rpartition(":")
        args.host, args.port = host, int(port)
        target = args.url
    else:
        args.host, args.port = target_host, target_port
        target = (url.path or "/") + (f"?{url.query}" if url.query else "")
    args.request = (
        f"GET {target} HTTP/1.1\r\nHost: {url.netloc}\r\nUser-Agent: proxy-load\r\nAccept: */*\r\n\r\n".encode()
    )
    if args.nofile < args.concurrency + 64:
        print(f"warning: RLIMIT_NOFILE {args.nofile} < {args.concurrency} connections", file=sys.stderr)
    asyncio.run(load(args))


if __name__ == "__main__":
    main()
