"""Checks for the Python halves of the end-to-end suites: one line per check, "ok - NAME" or
"FAIL - NAME: detail", the totals the suite's shell half adds up, polling, and the host-side
targets their network probes aim at."""
import contextlib
import json
import re
import socket
import subprocess
import threading
import time

totals = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    if ok:
        totals["passed"] += 1
        print(f"ok - {name}", flush=True)
    else:
        totals["failed"] += 1
        print(f"FAIL - {name}: {detail}", flush=True)
    return ok


def expect(name, want, got):
    return check(name, want == got, f"want {want!r} got {got!r}")


def short(value, limit=400):
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def wait_until(predicate, timeout, interval=0.25):
    """Polls until predicate() is truthy; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


async def settle(predicate, timeout, interval=0.25):
    """wait_until in a worker thread, so the client keeps reading the server meanwhile."""
    import anyio

    return await anyio.to_thread.run_sync(wait_until, predicate, timeout, interval)


def host_addresses():
    """The host's own non-loopback IPv4 addresses."""
    try:
        out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True)
    except OSError:
        return []
    return re.findall(r"\binet (\d+\.\d+\.\d+\.\d+)/", out.stdout)


class HostListener:
    """A TCP service on the host (every address by default, any free port unless given) that
    greets with "host-service" and counts the connections it accepts."""

    def __init__(self, address="0.0.0.0", port=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))
        self.sock.listen(16)
        self.address, self.port = self.sock.getsockname()
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            with contextlib.suppress(OSError):
                conn.sendall(b"host-service\n")
            conn.close()

    def close(self):
        self.sock.close()
