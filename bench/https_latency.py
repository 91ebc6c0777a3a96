#!/usr/bin/env python3
"""Latency of small HTTPS requests, each on a new connection (through a CONNECT proxy when
one is given): prints "p50_ms p99_ms" over N requests, after a few warm-up requests.

Usage: https_latency.py N URL [--proxy HOST:PORT] [--cafile FILE] [--header NAME:VALUE]
"""
import argparse
import http.client
import ssl
import statistics
import time
from urllib.parse import urlparse


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int)
    parser.add_argument("url")
    parser.add_argument("--proxy")
    parser.add_argument("--cafile")
    parser.add_argument("--header", action="append", default=[])
    args = parser.parse_args()
    url = urlparse(args.url)
    context = ssl.create_default_context(cafile=args.cafile)
    context.check_hostname = False
    headers = dict(h.split(":", 1) for h in args.header)

    def once():
        if args.proxy:
            host, port = args.proxy.split(":")
            connection = http.client.HTTPSConnection(host, int(port), context=context)
            connection.set_tunnel(url.hostname, url.port or 443)
        else:
            connection = http.client.HTTPSConnection(url.hostname, url.port or 443, context=context)
        connection.request("GET", url.path or "/", headers=headers)
        response = connection.getresponse()
        response.read()
        connection.close()
        assert response.status == 200, response.status

    for _ in range(20):
        once()
    times = []
    for _ in range(args.n):
        start = time.perf_counter()
        once()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    print(f"{statistics.median(times):.3f} {times[int(len(times) * 0.99) - 1]:.3f}")


if __name__ == "__main__":
    main()
