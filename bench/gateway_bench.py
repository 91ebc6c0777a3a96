#!/usr/bin/env python3
"""Times MCP tools/call through Airlock's gateway and directly over stdio, side by side.

Usage: gateway_bench.py [--rounds R] [--calls N] [--warmup W] [--clients C] [--per-client K]
                        [--stdio LABEL=COMMAND ...] [--http LABEL=COMMAND --port PORT]
                        [--fanout LABEL=COMMAND ...] [--raw LABEL=COMMAND ...] [--call-log LABEL]
                        [--raw-http LABEL=HTTPLABEL] [--raw-baseline LABEL]
                        [--headline-direct LABEL] [--headline-gateway LABEL ...] [--target-ms MS]
                        [--stderr-dir DIR] [--json PATH]

Every call is tools/call get_current_time {"timezone": "UTC"} through the Python `mcp` SDK
(ClientSession), timed with time.perf_counter from the call to its result.

Peers, each started once and kept for the whole run (long-lived servers):
  --stdio LABEL=COMMAND  an MCP server (or the gateway) the client spawns, on its stdio
  --http LABEL=COMMAND   a gateway over streamable HTTP: COMMAND is started here and served at
                         http://127.0.0.1:PORT/mcp, token from AIRLOCK_MCP_TOKEN
  --raw LABEL=COMMAND    like --stdio, but a minimal JSON-RPC client instead of the SDK
                         (sequential phase only: a cross-check without the SDK's own cost);
                         --call-log LABEL parses that peer's `--log-calls` lines (duration_ms)
  --raw-http LABEL=HTTPLABEL  the minimal client over HTTP (http.client, one keep-alive
                         connection) to the gateway of the --http peer HTTPLABEL
  --fanout LABEL=COMMAND C separate server processes of COMMAND, one SDK session each,
                         started for that phase only and ended after it

Phases, in rounds (R, default 3), peers interleaved and their order rotated every round:
  sequential  one session: W untimed calls, then N timed calls one after another
  concurrent  stdio peers: C tasks on the one session (C calls in flight), K calls each;
              HTTP peers: C sessions of their own (each its own HTTP client), K calls each
  fanout      C processes, one session each, K calls each (skipped when memory runs short)
In concurrent and fanout phases every session makes one untimed call first, all start
together, and throughput is calls / time from the start to the last answer.

CPU time of the client (this process) and of each peer's processes (from /proc: the
gateway, the server, runc, and wrappers such as runuser, nsenter and `airlock exec`) is
taken around every phase and reported per call.

Prints the table: per path the median over the rounds of each statistic, and what the
gateways (--headline-gateway) add to the direct peer --headline-direct (raw peers: to
--raw-baseline) as the median of the per-round differences, against --target-ms for the p50.
--json writes every sample and per-round statistic.
"""
import argparse
import contextlib
import http.client
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

TOOL = "get_current_time"
ARGUMENTS = {"timezone": "UTC"}
PROTOCOL_VERSION = "2025-06-18"
CALL_TIMEOUT = 60.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
# A fanout phase stops starting servers when less than this is left (bytes).
MEMORY_RESERVE = 3 << 30


def log(message):
    print(message, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


def first_bench_error(error):
    if isinstance(error, BenchError):
        return error
    for inner in getattr(error, "exceptions", ()):
        found = first_bench_error(inner)
        if found is not None:
            return found
    return None


def labelled(value, option):
    label, sep, rest = value.partition("=")
    if not sep or not label or not rest:
        sys.exit(f"{option} wants LABEL=VALUE, got {value!r}")
    return label, rest


def safe_name(label):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


# ---- processes and their CPU time -------------------------------------------------------

def process_table():
    """pid -> (ppid, comm, cmdline, cpu ticks) for every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        close = stat.rfind(")")
        comm = stat[stat.find("(") + 1:close]
        fields = stat[close + 2:].split()
        table[int(entry)] = (int(fields[1]), comm, cmdline, int(fields[11]) + int(fields[12]))
    return table


def children(pid, table=None):
    table = table if table is not None else process_table()
    return {p for p, (ppid, *_rest) in table.items() if ppid == pid}


def descendants(roots, table):
    found = set()
    frontier = [r for r in roots if r in table]
    found.update(frontier)
    while frontier:
        kids = [p for p, (ppid, *_rest) in table.items() if ppid in frontier and p not in found]
        found.update(kids)
        frontier = kids
    return found


def category(comm, cmdline):
    if comm == "airlock":
        return "gateway" if " gateway run" in cmdline else "wrappers"
    if comm.startswith("mcp-server-time") or (comm.startswith("python") and "mcp-server-time" in cmdline):
        return "server"
    if comm.startswith("runc"):
        return "runc"
    return "wrappers"


CATEGORIES = ("client", "gateway", "server", "runc", "wrappers")


def cpu_snapshot(roots):
    """CPU ticks by category: this process, and the trees under `roots`."""
    table = process_table()
    ticks = dict.fromkeys(CATEGORIES, 0)
    ticks["client"] = table.get(os.getpid(), (0, "", "", 0))[3]
    for pid in descendants(roots, table):
        _ppid, comm, cmdline, cpu = table[pid]
        ticks[category(comm, cmdline)] += cpu
    return ticks


def cpu_per_call(before, after, calls):
    """Microseconds of CPU per call, by category (processes that ended in between count 0)."""
    return {k: round(max(0, after[k] - before[k]) * 1e6 / CLK_TCK / calls, 1) for k in CATEGORIES}


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


# ---- statistics ------------------------------------------------------------------------

def summary(samples, wall=None):
    """p50/p90/p99/mean of samples (ms), and throughput when the wall time is known."""
    q = statistics.quantiles(samples, n=100, method="inclusive")
    result = {"n": len(samples), "p50": q[49], "p90": q[89], "p99": q[98], "mean": statistics.fmean(samples),
              "max": max(samples)}
    if wall:
        result["wall_s"] = wall
        result["calls_per_s"] = len(samples) / wall
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}


# ---- the SDK client --------------------------------------------------------------------

async def call(session, samples=None):
    started = time.perf_counter()
    with anyio.fail_after(CALL_TIMEOUT):
        result = await session.call_tool(TOOL, ARGUMENTS)
    elapsed = (time.perf_counter() - started) * 1000
    if result.is_error:
        text = " ".join(getattr(c, "text", "") for c in result.content)
        raise BenchError(f"{TOOL} returned an error: {text[:300]}")
    if samples is not None:
        samples.append(elapsed)
    return result


def check_result(label, result):
    content = result.structured_content or {}
    if content.get("timezone") != "UTC" or "datetime" not in content:
        raise BenchError(f"{label}: unexpected {TOOL} result: {result!r}"[:500])


@contextlib.asynccontextmanager
async def stdio_session(command, errlog):
    params = StdioServerParameters(command=command[0], args=command[1:])
    async with stdio_client(params, errlog=errlog) as (read, write):
        async with ClientSession(read, write, read_timeout_seconds=CALL_TIMEOUT) as session:
            with anyio.fail_after(120):
                await session.initialize()
            yield session


@contextlib.asynccontextmanager
async def http_session(url, token):
    client = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with client:
        async with streamable_http_client(url, http_client=client) as (read, write):
            async with ClientSession(read, write, read_timeout_seconds=CALL_TIMEOUT) as session:
                with anyio.fail_after(120):
                    await session.initialize()
                yield session


class Phase:
    """What a phase measured: the call times (ms), the wall time of the timed part, the CPU
    per call by category over exactly that part, or a note why it was abandoned."""

    def __init__(self, roots):
        self.roots = roots  # a function: the pids whose process trees count
        self.samples = []
        self.wall = None
        self.cpu = None
        self.note = None

    def start(self):
        self.mem_available = mem_available()
        self.before = cpu_snapshot(self.roots())
        self.started = time.perf_counter()

    def stop(self):
        self.wall = time.perf_counter() - self.started
        self.cpu = cpu_per_call(self.before, cpu_snapshot(self.roots()), len(self.samples))

    def record(self):
        if self.note:
            return {"note": self.note}
        return {"samples_ms": [round(s, 4) for s in self.samples], **summary(self.samples, self.wall),
                "cpu_us_per_call": self.cpu, "mem_available_at_start": self.mem_available}


async def sequential(session, calls, warmup, phase):
    for _ in range(warmup):
        await call(session)
    phase.start()
    for _ in range(calls):
        await call(session, phase.samples)
    phase.stop()


async def multiplexed(session, clients, per_client, phase):
    """`clients` tasks on one session, `per_client` calls each, one after another."""
    async with anyio.create_task_group() as group:  # warm-up: every task once, together
        for _ in range(clients):
            group.start_soon(call, session)

    async def worker():
        for _ in range(per_client):
            await call(session, phase.samples)

    phase.start()
    async with anyio.create_task_group() as group:
        for _ in range(clients):
            group.start_soon(worker)
    phase.stop()


async def separate_sessions(open_session, clients, per_client, start_limit, memory_guard, phase):
    """`clients` sessions of their own, opened `start_limit` at a time, one untimed call each;
    then all make `per_client` calls together, timed from the start to the last answer (the
    sessions close after that). When memory runs short, the phase is abandoned with a note."""
    state = {"ready": 0, "finished": 0, "note": None}
    all_ready = anyio.Event()
    go = anyio.Event()
    all_done = anyio.Event()
    release = anyio.Event()
    gate = anyio.Semaphore(start_limit)

    def count_ready():
        state["ready"] += 1
        if state["ready"] == clients:
            all_ready.set()

    async def client(index):
        await gate.acquire()
        held = True
        try:
            if state["note"] is None and memory_guard and mem_available() < MEMORY_RESERVE:
                state["note"] = (f"stopped at {index} of {clients} sessions: "
                                 f"under {MEMORY_RESERVE >> 30} GiB of memory left")
            if state["note"] is not None:
                count_ready()
                return
            async with open_session() as session:
                await call(session)
                gate.release()
                held = False
                count_ready()
                await go.wait()
                if state["note"] is not None:
                    return
                for _ in range(per_client):
                    await call(session, phase.samples)
                state["finished"] += 1
                if state["finished"] == clients:
                    all_done.set()
                await release.wait()  # sessions close only after the phase is measured
        finally:
            if held:
                gate.release()

    async with anyio.create_task_group() as group:
        for index in range(clients):
            group.start_soon(client, index)
        await all_ready.wait()
        if state["note"] is None:
            phase.start()
            go.set()
            await all_done.wait()
            phase.stop()
        go.set()
        release.set()
    phase.note = state["note"]


# ---- peers -----------------------------------------------------------------------------

class StdioPeer:
    kind = "stdio"

    def __init__(self, label, command, stderr_dir):
        self.label = label
        self.command = shlex.split(command)
        self.command_text = command
        self.stderr_dir = stderr_dir
        self.roots = set()

    async def open(self, stack):
        errlog = stack.enter_context(open(os.path.join(self.stderr_dir, safe_name(self.label) + ".log"), "w"))
        before = children(os.getpid())
        started = time.perf_counter()
        self.session = await stack.enter_async_context(stdio_session(self.command, errlog))
        check_result(self.label, await call(self.session))
        self.startup_ms = (time.perf_counter() - started) * 1000
        self.roots = children(os.getpid()) - before

    async def sequential(self, calls, warmup, phase):
        await sequential(self.session, calls, warmup, phase)

    async def concurrent(self, clients, per_client, start_limit, phase):
        await multiplexed(self.session, clients, per_client, phase)

    concurrent_mode = "1 session, C in flight"


class HttpPeer:
    kind = "http"

    def __init__(self, label, command, port, token, stderr_dir):
        self.label = label
        self.command = shlex.split(command)
        self.command_text = command
        self.url = f"http://127.0.0.1:{port}/mcp"
        self.health = f"http://127.0.0.1:{port}/health"
        self.token = token
        self.stderr_path = os.path.join(stderr_dir, safe_name(label) + ".log")
        self.process = None

    async def open(self, stack):
        try:
            with urllib.request.urlopen(self.health, timeout=1):
                raise BenchError(f"{self.label}: something already answers at {self.health}")
        except (urllib.error.URLError, OSError):
            pass
        stderr = open(self.stderr_path, "w")
        started = time.perf_counter()
        self.process = subprocess.Popen(
            self.command, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
            env=dict(os.environ, AIRLOCK_MCP_TOKEN=self.token), start_new_session=True)
        stderr.close()
        stack.callback(self.stop)
        self.roots = {self.process.pid}
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise BenchError(f"{self.label}: the gateway exited ({self.process.returncode}){self.tail()}")
            try:
                with urllib.request.urlopen(self.health, timeout=1) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"{self.label}: no /health within 60 s{self.tail()}")
            await anyio.sleep(0.1)
        self.session = await stack.enter_async_context(http_session(self.url, self.token))
        check_result(self.label, await call(self.session))
        self.startup_ms = (time.perf_counter() - started) * 1000

    def tail(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                text = f.read()[-1500:].strip()
        except OSError:
            return ""
        return f"\n--- {self.label} stderr (tail) ---\n{text}" if text else ""

    def stop(self):
        """Ends the gateway itself (SIGTERM, so it removes its server sandboxes) and waits."""
        if self.process is None or self.process.poll() is not None:
            return
        table = process_table()
        gateways = [p for p in descendants({self.process.pid}, table)
                    if category(table[p][1], table[p][2]) == "gateway"]
        for pid in gateways or [self.process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            log(f"{self.label}: still running 60 s after SIGTERM; killing it")
            for pid in gateways:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    async def sequential(self, calls, warmup, phase):
        await sequential(self.session, calls, warmup, phase)

    async def concurrent(self, clients, per_client, start_limit, phase):
        await separate_sessions(
            lambda: http_session(self.url, self.token), clients, per_client, start_limit, False, phase)

    concurrent_mode = "C sessions (HTTP)"


class RawPeer:
    """A minimal newline-delimited JSON-RPC client on a server's stdio, one call at a time."""

    kind = "raw"

    def __init__(self, label, command, stderr_dir, call_log):
        self.label = label
        self.command = shlex.split(command)
        self.command_text = command
        self.stderr_path = os.path.join(stderr_dir, safe_name(label) + ".log")
        self.call_log = call_log
        self.buffer = b""
        self.next_id = 0
        self.process = None

    async def open(self, stack):
        stderr = open(self.stderr_path, "w")
        started = time.perf_counter()
        self.process = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=stderr, bufsize=0, start_new_session=True)
        stderr.close()
        stack.callback(self.close)
        self.roots = {self.process.pid}
        self.request("initialize", {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                                    "clientInfo": {"name": "airlock-gateway-bench-raw", "version": "1"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        result = self.call()
        if (result.get("structuredContent") or {}).get("timezone") != "UTC":
            raise BenchError(f"{self.label}: unexpected result {json.dumps(result)[:300]}")
        self.startup_ms = (time.perf_counter() - started) * 1000

    def send(self, message):
        self.process.stdin.write((json.dumps(message, separators=(",", ":")) + "\n").encode())

    def request(self, method, params):
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        deadline = time.monotonic() + CALL_TIMEOUT
        while True:
            while b"\n" not in self.buffer:
                if time.monotonic() > deadline:
                    raise BenchError(f"{self.label}: no answer to {method} in {CALL_TIMEOUT:.0f} s")
                chunk = os.read(self.process.stdout.fileno(), 65536)
                if not chunk:
                    raise BenchError(f"{self.label}: the server closed its output")
                self.buffer += chunk
            line, _, self.buffer = self.buffer.partition(b"\n")
            if not line.strip():
                continue
            message = json.loads(line)
            if message.get("id") == self.next_id and "method" not in message:
                if "error" in message:
                    raise BenchError(f"{self.label}: {method}: {json.dumps(message['error'])}")
                return message.get("result", {})

    def call(self):
        result = self.request("tools/call", {"name": TOOL, "arguments": ARGUMENTS})
        if result.get("isError"):
            raise BenchError(f"{self.label}: {TOOL} returned an error: {json.dumps(result)[:300]}")
        return result

    def log_size(self):
        return os.path.getsize(self.stderr_path)

    def logged_durations(self, offset, count):
        """duration_ms of the last `count` calls logged after `offset` (the gateway's own time)."""
        with open(self.stderr_path, "rb") as f:
            f.seek(offset)
            lines = f.read().decode(errors="replace").splitlines()
        durations = []
        for line in lines:
            start = line.find("{")
            if start < 0 or "duration_ms" not in line:
                continue
            with contextlib.suppress(ValueError):
                durations.append(float(json.loads(line[start:])["duration_ms"]))
        return durations[-count:]

    async def sequential(self, calls, warmup, phase):
        for _ in range(warmup):
            self.call()
        phase.start()
        for _ in range(calls):
            t0 = time.perf_counter()
            self.call()
            phase.samples.append((time.perf_counter() - t0) * 1000)
        phase.stop()

    def close(self):
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


class RawHttpPeer(RawPeer):
    """The minimal client over streamable HTTP: one keep-alive connection, one POST a call,
    the answer read as JSON (the gateway answers requests with application/json)."""

    kind = "raw"

    def __init__(self, label, http_peer):
        self.label = label
        self.http_peer = http_peer
        self.command_text = f"POST {http_peer.url} (the gateway of '{http_peer.label}')"
        self.call_log = False
        self.next_id = 0
        self.session_id = None

    async def open(self, stack):
        started = time.perf_counter()
        self.roots = self.http_peer.roots
        host, port = self.http_peer.url.split("//", 1)[1].split("/", 1)[0].split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=CALL_TIMEOUT)
        stack.callback(self.close)
        self.request("initialize", {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                                    "clientInfo": {"name": "airlock-gateway-bench-raw", "version": "1"}})
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        result = self.call()
        if (result.get("structuredContent") or {}).get("timezone") != "UTC":
            raise BenchError(f"{self.label}: unexpected result {json.dumps(result)[:300]}")
        self.startup_ms = (time.perf_counter() - started) * 1000

    def post(self, message):
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                   "Authorization": f"Bearer {self.http_peer.token}"}
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        self.connection.request("POST", "/mcp", body=json.dumps(message, separators=(",", ":")), headers=headers)
        response = self.connection.getresponse()
        body = response.read()
        if response.status not in (200, 202):
            raise BenchError(f"{self.label}: HTTP {response.status}: {body[:300]!r}")
        self.session_id = response.getheader("Mcp-Session-Id") or self.session_id
        return json.loads(body) if response.status == 200 else None

    def request(self, method, params):
        self.next_id += 1
        message = self.post({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        if not message or message.get("id") != self.next_id:
            raise BenchError(f"{self.label}: no answer to {method}: {json.dumps(message)[:300]}")
        if "error" in message:
            raise BenchError(f"{self.label}: {method}: {json.dumps(message['error'])}")
        return message.get("result", {})

    def close(self):
        with contextlib.suppress(Exception):
            if self.session_id:
                self.connection.request("DELETE", "/mcp", headers={
                    "Authorization": f"Bearer {self.http_peer.token}", "Mcp-Session-Id": self.session_id})
                self.connection.getresponse().read()
        self.connection.close()


class Fanout:
    kind = "fanout"

    def __init__(self, label, command, stderr_dir):
        self.label = label
        self.command = shlex.split(command)
        self.command_text = command
        self.stderr_path = os.path.join(stderr_dir, safe_name(label) + ".fanout.log")

    async def run(self, clients, per_client, start_limit, phase):
        phase.mem_before = mem_available()
        with open(self.stderr_path, "a") as errlog:
            before = children(os.getpid())
            phase.roots = lambda: children(os.getpid()) - before
            await separate_sessions(
                lambda: stdio_session(self.command, errlog), clients, per_client, start_limit, True, phase)


# ---- the run ---------------------------------------------------------------------------

def rotated(items, by):
    if not items:
        return items
    by %= len(items)
    return items[by:] + items[:by]


async def run(args):
    token = os.environ.get("AIRLOCK_MCP_TOKEN", "")
    if args.http and not token:
        sys.exit("--http needs AIRLOCK_MCP_TOKEN in the environment")
    os.makedirs(args.stderr_dir, exist_ok=True)
    peers = [StdioPeer(*labelled(v, "--stdio"), args.stderr_dir) for v in args.stdio]
    peers += [HttpPeer(*labelled(v, "--http"), args.port, token, args.stderr_dir) for v in args.http]
    raws = [RawPeer(*labelled(v, "--raw"), args.stderr_dir, False) for v in args.raw]
    for raw in raws:
        raw.call_log = raw.label in args.call_log
    for value in args.raw_http:
        label, http_label = labelled(value, "--raw-http")
        targets = [p for p in peers if p.kind == "http" and p.label == http_label]
        if not targets:
            sys.exit(f"--raw-http {value}: no --http peer labelled {http_label!r}")
        raws.append(RawHttpPeer(label, targets[0]))
    fanouts = [Fanout(*labelled(v, "--fanout"), args.stderr_dir) for v in args.fanout]
    labels = [p.label for p in peers + raws + fanouts]
    if len(set(labels)) != len(labels):
        sys.exit("labels must differ")

    result = {
        "settings": {
            "rounds": args.rounds, "calls": args.calls, "warmup": args.warmup, "clients": args.clients,
            "per_client": args.per_client, "tool": TOOL, "arguments": ARGUMENTS,
        },
        "peers": {},
    }
    for peer in peers + raws + fanouts:
        result["peers"][peer.label] = {"kind": peer.kind, "command": peer.command_text, "rounds": []}

    async with contextlib.AsyncExitStack() as stack:
        for peer in peers + raws:
            log(f"starting {peer.label}: {peer.command_text}")
            await peer.open(stack)
            result["peers"][peer.label]["startup_ms"] = round(peer.startup_ms, 1)
            log(f"  ready in {peer.startup_ms:.0f} ms")

        result["loads"] = []
        for round_index in range(args.rounds):
            log(f"round {round_index + 1}/{args.rounds}")
            result["loads"].append({"load": os.getloadavg()[0], "mem_available": mem_available()})
            records = {label: {} for label in labels}
            # Sequential: every peer, SDK and raw, interleaved.
            for peer in rotated(peers + raws, round_index):
                phase = Phase(lambda: peer.roots)
                offset = peer.log_size() if getattr(peer, "call_log", False) else None
                await peer.sequential(args.calls, args.warmup, phase)
                record = phase.record()
                if offset is not None:
                    internal = peer.logged_durations(offset, args.calls)
                    if len(internal) == args.calls:
                        record["gateway_logged"] = summary(internal)
                records[peer.label]["sequential"] = record
                log(f"  {peer.label}, sequential: p50 {record['p50']:.3f} ms, p99 {record['p99']:.3f} ms")
            # Concurrent: C clients at once.
            for peer in rotated(peers, round_index):
                phase = Phase(lambda: peer.roots)
                await peer.concurrent(args.clients, args.per_client, args.start_limit, phase)
                records[peer.label]["concurrent"] = record = phase.record()
                log(f"  {peer.label}, concurrent ({peer.concurrent_mode}): p50 {record['p50']:.3f} ms, "
                    f"p99 {record['p99']:.3f} ms, {record['calls_per_s']:.0f} calls/s")
            # Fanout: C processes, started and ended here.
            for fanout in rotated(fanouts, round_index):
                log(f"  {fanout.label}, fanout: starting {args.clients} processes")
                phase = Phase(None)
                await fanout.run(args.clients, args.per_client, args.start_limit, phase)
                records[fanout.label]["fanout"] = record = phase.record()
                if phase.note:
                    log(f"  {fanout.label}, fanout: {phase.note}")
                    continue
                record["mem_used"] = phase.mem_before - phase.mem_available
                log(f"  {fanout.label}, fanout: p50 {record['p50']:.3f} ms, p99 {record['p99']:.3f} ms, "
                    f"{record['calls_per_s']:.0f} calls/s")
            for label in labels:
                result["peers"][label]["rounds"].append(records[label])
    return result


# ---- the report ------------------------------------------------------------------------

STATS = ("p50", "p90", "p99", "mean", "calls_per_s")


def medians(peer, phase):
    """Per statistic, the median over the rounds that have the phase (and how many do)."""
    records = [r[phase] for r in peer["rounds"] if phase in r and "p50" in r[phase]]
    if not records:
        notes = [r[phase]["note"] for r in peer["rounds"] if phase in r and "note" in r[phase]]
        return None, notes[0] if notes else None
    out = {k: statistics.median(r[k] for r in records if k in r) for k in STATS if k in records[0]}
    out["rounds"] = len(records)
    out["cpu"] = {k: statistics.median(r["cpu_us_per_call"][k] for r in records) for k in CATEGORIES}
    logged = [r["gateway_logged"] for r in records if "gateway_logged" in r]
    if logged:
        out["logged"] = {k: statistics.median(g[k] for g in logged) for k in ("p50", "p90", "p99", "mean")}
    return out, None


def paired(a, b, phase_a, phase_b, stat):
    """a - b for `stat`, per round where both have it (a round's peers ran side by side)."""
    return [ra[phase_a][stat] - rb[phase_b][stat] for ra, rb in zip(a["rounds"], b["rounds"])
            if stat in ra.get(phase_a, {}) and stat in rb.get(phase_b, {})]


def report(result, headline_direct, headline_gateways, target_ms, raw_baseline):
    s = result["settings"]
    peers = result["peers"]
    rounds = s["rounds"]
    width = max([len(label) for label in peers] + [20]) + 2

    def row(label, m, extra=""):
        rate = f"{m['calls_per_s']:>9.0f}" if "calls_per_s" in m else f"{'':>9}"
        cpu = m["cpu"]
        return (f"{label:<{width}}{m['p50']:>8.3f}{m['p90']:>8.3f}{m['p99']:>8.3f}{m['mean']:>8.3f}{rate}"
                f"{cpu['client']:>8.0f}{cpu['gateway']:>8.0f}{cpu['server']:>8.0f}"
                f"{cpu['runc'] + cpu['wrappers']:>8.0f}{extra}")

    header = (f"{'path':<{width}}{'p50':>8}{'p90':>8}{'p99':>8}{'mean':>8}{'calls/s':>9}"
              f"{'cpu:cli':>8}{'gw':>8}{'server':>8}{'runc+':>8}")

    def added_line(name, a, b, phase_a, phase_b, throughput=False):
        """Median over rounds of the per-round differences, and the rounds' own values."""
        out = []
        for stat in ("p50", "p99"):
            values = paired(a, b, phase_a, phase_b, stat)
            if not values:
                return None
            out.append((stat, statistics.median(values), values))
        text = f"  {name:<{width + 16}}" + "".join(f"+{stat} {median:7.3f}   " for stat, median, _ in out)
        text += "(per round p50: " + ", ".join(f"{v:+.3f}" for v in out[0][2]) + ")"
        if throughput:
            ratios = [ra[phase_a]["calls_per_s"] / rb[phase_b]["calls_per_s"]
                      for ra, rb in zip(a["rounds"], b["rounds"])
                      if "calls_per_s" in ra.get(phase_a, {}) and "calls_per_s" in rb.get(phase_b, {})]
            text += f"; throughput {statistics.median(ratios):.2f}x"
        print(text)
        return out[0][1]

    print()
    print(f"sequential: {s['calls']} calls after {s['warmup']} warm-up calls, one client "
          f"(ms; median of {rounds} interleaved rounds; cpu = CPU us per call)")
    print(header)
    for label, peer in peers.items():
        if peer["kind"] in ("stdio", "http"):
            print(row(label, medians(peer, "sequential")[0]))
    print()
    print(f"concurrent: {s['clients']} clients x {s['per_client']} calls each, all at once "
          f"(ms per call; median of {rounds} rounds)")
    print(header + "  mode")
    for label, peer in peers.items():
        if peer["kind"] in ("stdio", "http"):
            m, note = medians(peer, "concurrent")
            mode = (f"1 session, {s['clients']} calls in flight" if peer["kind"] == "stdio"
                    else f"{s['clients']} HTTP sessions, one gateway")
            print(row(label, m, "  " + mode) if m else f"{label:<{width}}skipped: {note}")
    for label, peer in peers.items():
        if peer["kind"] == "fanout":
            m, note = medians(peer, "fanout")
            mode = f"{s['clients']} server processes, a session each"
            if m:
                partial = f" ({m['rounds']} of {rounds} rounds)" if m["rounds"] < rounds else ""
                used = [r["fanout"]["mem_used"] for r in peer["rounds"] if "mem_used" in r.get("fanout", {})]
                memory = f", {statistics.median(used) / (1 << 30):.1f} GiB" if used else ""
                print(row(label, m, "  " + mode + memory + partial))
            else:
                print(f"{label:<{width}}skipped: {note}")

    verdicts = []
    direct = peers.get(headline_direct)
    if direct:
        fan = [p for p in peers.values() if p["kind"] == "fanout" and p["command"] == direct["command"]]
        print()
        print(f"added by the gateway against '{headline_direct}' (ms; median over rounds of the "
              f"per-round difference):")
        for label in headline_gateways:
            gateway = peers.get(label)
            if not gateway:
                continue
            added = added_line(label + ", sequential:", gateway, direct, "sequential", "sequential")
            verdicts.append((label, added))
            if gateway["kind"] == "stdio":
                added_line(label + ", concurrent:", gateway, direct, "concurrent", "concurrent", True)
            else:
                if fan:
                    added_line(label + ", concurrent:", gateway, fan[0], "concurrent", "fanout", True)
                    print(f"  {'':<{width + 16}}(against {s['clients']} direct server processes)")
                added_line(label + ", concurrent:", gateway, direct, "concurrent", "concurrent", True)
                print(f"  {'':<{width + 16}}(against one direct server, {s['clients']} calls in flight)")

    raws = {label: p for label, p in peers.items() if p["kind"] == "raw"}
    raw_verdicts = []
    if raws:
        print()
        print("cross-check without the SDK: a minimal JSON-RPC client (stdio pipes, or http.client on one "
              "keep-alive connection), sequential, same calls (ms)")
        print(header)
        for label, peer in raws.items():
            m, _ = medians(peer, "sequential")
            print(row(label, m))
            if "logged" in m:
                g = m["logged"]
                print(f"{'  its duration_ms':<{width}}{g['p50']:>8.3f}{g['p90']:>8.3f}{g['p99']:>8.3f}"
                      f"{g['mean']:>8.3f}   (--log-calls: the gateway's own time for the call, 0.1 ms steps)")
        base = raws.get(raw_baseline)
        if base:
            print(f"added against '{raw_baseline}' (ms):")
            for label, peer in raws.items():
                if label != raw_baseline:
                    raw_verdicts.append((label, added_line(label + ":", peer, base, "sequential", "sequential")))

    print()
    for label, added in verdicts:
        print(f"target, added p50 at most {target_ms:g} ms: {label}: {added:+.3f} ms, "
              f"{'met' if added <= target_ms else 'MISSED'}")
    for label, added in raw_verdicts:
        print(f"  without the SDK: {label}: {added:+.3f} ms, {'met' if added <= target_ms else 'MISSED'}")
    loads = [r.get("load") for r in result.get("loads", [])]
    if loads:
        print("load average (1 min) at the start of each round: " + ", ".join(f"{l:.1f}" for l in loads)
              + (" (it lags: a later round's includes the fanout before it)" if len(loads) > 1 else ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--per-client", type=int, default=20)
    parser.add_argument("--start-limit", type=int, default=8, help="sessions opened at once (fanout, HTTP)")
    parser.add_argument("--stdio", action="append", default=[], metavar="LABEL=COMMAND")
    parser.add_argument("--http", action="append", default=[], metavar="LABEL=COMMAND")
    parser.add_argument("--port", type=int, default=18831)
    parser.add_argument("--raw", action="append", default=[], metavar="LABEL=COMMAND")
    parser.add_argument("--raw-http", action="append", default=[], metavar="LABEL=HTTPLABEL",
                        help="the minimal client over HTTP, to the gateway of an --http peer")
    parser.add_argument("--call-log", action="append", default=[], metavar="LABEL")
    parser.add_argument("--fanout", action="append", default=[], metavar="LABEL=COMMAND")
    parser.add_argument("--headline-direct", default="", metavar="LABEL",
                        help="the direct peer the gateway is compared with")
    parser.add_argument("--headline-gateway", action="append", default=[], metavar="LABEL")
    parser.add_argument("--raw-baseline", default="", metavar="LABEL",
                        help="the raw peer the other raw peers are compared with")
    parser.add_argument("--target-ms", type=float, default=2.0)
    parser.add_argument("--stderr-dir", default=".")
    parser.add_argument("--json", help="write every sample and statistic here")
    args = parser.parse_args()
    if args.rounds < 1 or args.calls < 2 or args.clients < 1 or args.per_client < 1:
        sys.exit("rounds, calls, clients and per-client must be positive (calls at least 2)")
    try:
        result = anyio.run(run, args)
    except BaseException as error:  # task groups wrap failures in exception groups
        found = first_bench_error(error)
        if found is None:
            raise
        sys.exit(str(found))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f)
    report(result, args.headline_direct, args.headline_gateway, args.target_ms, args.raw_baseline)


if __name__ == "__main__":
    main()
