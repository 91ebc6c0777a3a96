#!/usr/bin/env python3
"""Load and stall checks of a sandbox's proxy (tests/e2e/load.sh), standard library only.

  proxy_load.py serve PORT              an asyncio HTTP/1.1 upstream on 127.0.0.1:PORT (keep-alive,
                                        backlog 4096): every request gets 64 bytes, an Upgrade
                                        request a 101 and then an echo
  proxy_load.py burst N URL             N requests at once, each on its own connection to the
                                        proxy at 127.0.0.1:3128; prints one JSON line
  proxy_load.py slowloris N SECONDS URL N connections that send a request head a few bytes at a
                                        time and never finish it, while one normal request goes
                                        every 0.25 s; prints one JSON line
  proxy_load.py stall KIND URL          one stalled connection (head, body, idle, tunnel); prints
                                        how long until the proxy closed it and what it said

Run inside the sandbox (all but serve), where the proxy is 127.0.0.1:3128.
"""
import asyncio
import json
import re
import resource
import sys
import time

PROXY = ("127.0.0.1", 3128)


def raise_descriptor_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def split(url):
    rest = url.split("://", 1)[1]
    authority, _, path = rest.partition("/")
    return authority, "/" + path


async def serve(port):
    body = b"x" * 64

    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    await reader.readexactly(length)
                if b" /headfirst" in head.split(b"\r\n", 1)[0]:
                    # A long-poll that answers with its head at once and its body 5 s later.
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
                    await writer.drain()
                    await asyncio.sleep(5)
                    writer.write(b"0123456789")
                    await writer.drain()
                    continue
                if b"\r\nupgrade:" in head.lower():
                    # A protocol switch (as WebSocket's): then an echo, byte for byte.
                    writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
                    while data := await reader.read(65536):
                        writer.write(data)
                        await writer.drain()
                    return
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body) + body
                )
                await writer.drain()
                if b"\r\nconnection: close" in head.lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


async def one_request(url, timeout=30):
    """One GET through the proxy on a new connection: (ok, seconds, detail)."""
    started = time.monotonic()
    authority, _ = split(url)
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*PROXY), timeout)
        writer.write(f"GET {url} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout)
        writer.close()
        status = answer.split(b"\r\n", 1)[0].decode(errors="replace")
        return status.endswith("200 OK"), time.monotonic() - started, status
    except Exception as error:  # noqa: BLE001 - any failure is a failed request
        return False, time.monotonic() - started, f"{type(error).__name__}: {error}"


async def burst(count, url):
    results = await asyncio.gather(*(one_request(url) for _ in range(count)))
    failures = [detail for ok, _, detail in results if not ok]
    print(
        json.dumps(
            {
                "requests": count,
                "succeeded": count - len(failures),
                "failures": sorted(set(failures))[:5],
                "slowest_s": round(max(seconds for _, seconds, _ in results), 3),
            }
        )
    )


async def slowloris(count, seconds, url):
    authority, _ = split(url)
    head = f"GET {url} HTTP/1.1\r\nHost: {authority}\r\nX-Slow: ".encode()
    writers = []
    opened = 0

    async def open_one():
        nonlocal opened
        try:
            reader, writer = await asyncio.open_connection(*PROXY)
            writer.write(head[:10])
            await writer.drain()
            writers.append([writer, 10])
            opened += 1
        except OSError:
            pass

    await asyncio.gather(*(open_one() for _ in range(count)))
    latencies = []
    failures = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        # One more byte of the head on each connection; past its end, more of a header value.
        for entry in writers:
            writer, sent = entry
            if writer.transport.is_closing():
                continue
            try:
                writer.write(head[sent : sent + 1] if sent < len(head) else b"a")
                entry[1] = sent + 1
            except (ConnectionError, RuntimeError):
                pass
        ok, took, detail = await one_request(url, timeout=5)
        latencies.append(took)
        if not ok:
            failures.append(detail)
        await asyncio.sleep(0.25)
    still_open = sum(1 for writer, _ in writers if not writer.transport.is_closing())
    for writer, _ in writers:
        writer.close()
    latencies.sort()
    print(
        json.dumps(
            {
                "slow_connections": opened,
                "still_open": still_open,
                "normal_requests": len(latencies),
                "normal_failed": len(failures),
                "failures": sorted(set(failures))[:5],
                "normal_max_s": round(latencies[-1], 3) if latencies else None,
                "normal_median_s": round(latencies[len(latencies) // 2], 3) if latencies else None,
            }
        )
    )


async def stall(kind, url):
    """Opens one connection that stalls the way KIND says and times how long the proxy waits."""
    authority, path = split(url)
    reader, writer = await asyncio.open_connection(*PROXY)
    if kind == "head":
        writer.write(f"GET {url} HTTP/1.1\r\nHost: ".encode())
    elif kind == "body":
        writer.write(f"POST {url} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 100\r\n\r\nabc".encode())
    elif kind == "idle":
        writer.write(f"GET {url} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
    elif kind == "pipelined":
        # A whole request and the first bytes of the next one together; then nothing more.
        writer.write(f"GET {url} HTTP/1.1\r\nHost: {authority}\r\n\r\nGET {url} HT".encode())
    elif kind == "headfirst":
        writer.write(f"GET http://{authority}/headfirst HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
    elif kind == "tunnel":
        # A protocol switch: after the 101 the proxy relays bytes as it relays a tunnel.
        writer.write(f"GET {url} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n".encode())
    await writer.drain()
    started = time.monotonic()
    received = b""
    if kind == "headfirst":
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        started = time.monotonic()
        try:
            body = await asyncio.wait_for(reader.readexactly(10), 60)
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            body = getattr(error, "partial", b"")
        writer.close()
        print(json.dumps({"kind": kind, "body_after_s": round(time.monotonic() - started, 2),
                          "body": body.decode(errors="replace"), "first_line": answer.split(b"\r\n")[0].decode()}))
        return
    if kind == "pipelined":
        # The first answer comes at once; the clock for the second head started with its bytes.
        received = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        received += await reader.readexactly(64)
    if kind in ("idle", "tunnel"):
        # The answer (or the tunnel's 200) comes at once; the idle clock starts after it.
        received = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        if kind == "idle":
            received += await reader.readexactly(64)
        started = time.monotonic()
    try:
        rest = await asyncio.wait_for(reader.read(), 600)
    except ConnectionError:
        rest = b""
    received += rest
    writer.close()
    first = received.split(b"\r\n", 1)[0].decode(errors="replace")
    # Every status line, also one that follows a body without a line break.
    statuses = [match.decode(errors="replace") for match in re.findall(rb"HTTP/1\.[01] \d{3}[^\r]*", received)]
    print(json.dumps({"kind": kind, "closed_after_s": round(time.monotonic() - started, 2), "first_line": first,
                      "statuses": statuses}))


def main():
    raise_descriptor_limit()
    command = sys.argv[1]
    if command == "serve":
        asyncio.run(serve(int(sys.argv[2])))
    elif command == "burst":
        asyncio.run(burst(int(sys.argv[2]), sys.argv[3]))
    elif command == "slowloris":
        asyncio.run(slowloris(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]))
    elif command == "stall":
        asyncio.run(stall(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
