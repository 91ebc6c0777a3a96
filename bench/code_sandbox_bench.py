#!/usr/bin/env python3
"""Times one code-sandbox cycle through MCP servers (stdio) and docker, side by side.

Usage: code_sandbox_bench.py RUNS --mcp LABEL=COMMAND [--mcp ...] [--docker LABEL=IMAGE]
                             [--pooled LABEL] [--pause S] [--warmup N] [--timeout S]
                             [--stderr-dir DIR]

A cycle is sandbox_initialize + sandbox_exec("true") + sandbox_stop through an MCP server
(COMMAND, split like a shell would, e.g. "airlock mcp serve code-sandbox --pool 2"), or
docker run -d --network none IMAGE sleep infinity + docker exec ID true + docker rm -f ID.
Each step and the whole cycle are timed with time.perf_counter, from writing the request to
reading its response (for docker: from spawning the client to its exit).

The client is minimal MCP over stdio: newline-delimited JSON-RPC 2.0, initialize, then
notifications/initialized, then tools/call; responses are matched by id, notifications from
the server are ignored, and a request from it is answered (ping with {}, others with
"method not found").

Runs are interleaved (A, B, C, A, B, C, ...) so machine noise hits every peer alike, and the
script sleeps PAUSE seconds (default 1) after every cycle, so that a pooled server refills
its pool, and anything a stop left to do in the background is done before the next peer is
timed. A --pooled LABEL's warm-up repeats until sandbox_initialize says "pooled": true; every
timed result records the flag, so a pool that did not keep up shows in the output.

Prints JSON: per peer the samples (ms), their medians and p90s, and the settings.
"""
import argparse
import json
import os
import selectors
import shlex
import signal
import statistics
import subprocess
import sys
import time

PROTOCOL_VERSION = "2025-06-18"
STEPS = ("initialize", "exec", "stop", "cycle")


def log(message):
    print(message, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


class McpServer:
    """One server process on pipes; requests are sent and awaited one at a time."""

    kind = "mcp"

    def __init__(self, label, command, timeout, stderr_path):
        self.label = label
        self.command = command
        self.command_text = shlex.join(command)
        self.timeout = timeout
        self.stderr_path = stderr_path
        self.next_id = 0
        self.buffer = b""
        stderr = open(stderr_path, "wb") if stderr_path else subprocess.DEVNULL
        started = time.perf_counter()
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, bufsize=0,
            start_new_session=True)
        if stderr_path:
            stderr.close()
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.process.stdout, selectors.EVENT_READ)
        try:
            result = self.request("initialize", {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "airlock-code-sandbox-bench", "version": "1"},
            })
        except BaseException:
            self.close()
            raise
        self.startup_ms = (time.perf_counter() - started) * 1000
        self.server_info = result.get("serverInfo", {})
        self.protocol_version = result.get("protocolVersion")
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, message):
        data = (json.dumps(message, separators=(",", ":")) + "\n").encode()
        try:
            self.process.stdin.write(data)
        except BrokenPipeError:
            raise BenchError(f"{self.label}: the server closed its input{self.stderr_tail()}")

    def read_message(self, deadline):
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError(f"{self.label}: no response within {self.timeout:.0f} s{self.stderr_tail()}")
            if not self.selector.select(remaining):
                continue
            chunk = os.read(self.process.stdout.fileno(), 65536)
            if not chunk:
                raise BenchError(f"{self.label}: the server closed its output (exit "
                                 f"{self.process.poll()}){self.stderr_tail()}")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        line = line.strip()
        if not line:
            return None
        try:
            return json.loads(line)
        except ValueError:
            raise BenchError(f"{self.label}: not JSON on stdout: {line[:200]!r}")

    def request(self, method, params):
        self.next_id += 1
        ident = self.next_id
        self.send({"jsonrpc": "2.0", "id": ident, "method": method, "params": params})
        deadline = time.monotonic() + self.timeout
        while True:
            message = self.read_message(deadline)
            if not isinstance(message, dict):
                continue
            if "method" in message:
                if "id" in message:  # a request from the server
                    if message["method"] == "ping":
                        self.send({"jsonrpc": "2.0", "id": message["id"], "result": {}})
                    else:
                        self.send({"jsonrpc": "2.0", "id": message["id"],
                                   "error": {"code": -32601, "message": "method not found"}})
                continue  # a notification
            if message.get("id") != ident:
                continue
            if "error" in message:
                raise BenchError(f"{self.label}: {method} failed: {json.dumps(message['error'])}")
            return message.get("result", {})

    def call(self, tool, arguments):
        result = self.request("tools/call", {"name": tool, "arguments": arguments})
        content = result.get("structuredContent")
        if content is None:
            texts = [c.get("text", "") for c in result.get("content", []) if c.get("type") == "text"]
            try:
                content = json.loads(texts[0]) if texts else {}
            except ValueError:
                content = {"text": texts[0]}
        if result.get("isError"):
            raise BenchError(f"{self.label}: {tool} returned an error: {json.dumps(content)[:400]}")
        return content

    def cycle(self):
        """One timed cycle; returns the step times (ms) and whether the sandbox was pooled."""
        t0 = time.perf_counter()
        init = self.call("sandbox_initialize", {})
        t1 = time.perf_counter()
        sandbox = init.get("sandbox_id")
        if not sandbox:
            raise BenchError(f"{self.label}: sandbox_initialize gave no sandbox_id: {json.dumps(init)[:400]}")
        ran = self.call("sandbox_exec", {"sandbox_id": sandbox, "command": "true"})
        t2 = time.perf_counter()
        self.call("sandbox_stop", {"sandbox_id": sandbox})
        t3 = time.perf_counter()
        if ran.get("exit_code") != 0 or ran.get("timed_out"):
            raise BenchError(f"{self.label}: sandbox_exec true did not succeed: {json.dumps(ran)[:400]}")
        times = {"initialize": t1 - t0, "exec": t2 - t1, "stop": t3 - t2, "cycle": t3 - t0}
        return {k: v * 1000 for k, v in times.items()}, init.get("pooled")

    def close(self):
        """Closes the server's input (a client disconnect) and waits for it to clean up and exit."""
        started = time.perf_counter()
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(self.timeout)
        except subprocess.TimeoutExpired:
            log(f"{self.label}: still running {self.timeout:.0f} s after its input closed; terminating it")
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.selector.close()
        return (time.perf_counter() - started) * 1000

    def stderr_tail(self):
        if not self.stderr_path:
            return ""
        try:
            with open(self.stderr_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 1500))
                tail = f.read().decode(errors="replace").strip()
        except OSError:
            return ""
        return f"\n--- {self.label} stderr (tail) ---\n{tail}" if tail else ""


class DockerPeer:
    """The same cycle with the docker CLI against a running daemon."""

    kind = "docker"

    def __init__(self, label, image, timeout):
        self.label = label
        self.image = image
        self.command_text = (f"docker run -d --network none {image} sleep infinity; "
                             "docker exec ID true; docker rm -f ID")
        self.timeout = timeout
        self.startup_ms = None
        self.leftover = None

    def docker(self, *args, capture=False):
        result = subprocess.run(["docker", *args], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                                stderr=subprocess.PIPE, timeout=self.timeout)
        if result.returncode != 0:
            raise BenchError(f"{self.label}: docker {' '.join(args)} failed (exit {result.returncode}): "
                             f"{result.stderr.decode(errors='replace')[-400:]}")
        return result.stdout.decode().strip() if capture else None

    def cycle(self):
        t0 = time.perf_counter()
        container = self.docker("run", "-d", "--network", "none", self.image, "sleep", "infinity", capture=True)
        t1 = time.perf_counter()
        self.leftover = container
        self.docker("exec", container, "true")
        t2 = time.perf_counter()
        self.docker("rm", "-f", container)
        t3 = time.perf_counter()
        self.leftover = None
        times = {"initialize": t1 - t0, "exec": t2 - t1, "stop": t3 - t2, "cycle": t3 - t0}
        return {k: v * 1000 for k, v in times.items()}, None

    def close(self):
        if self.leftover:
            subprocess.run(["docker", "rm", "-f", self.leftover], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        return None


def p90(samples):
    if len(samples) < 2:
        return samples[0]
    return statistics.quantiles(samples, n=10, method="inclusive")[8]


def labelled(value, option):
    label, sep, rest = value.partition("=")
    if not sep or not label or not rest:
        sys.exit(f"{option} wants LABEL=VALUE, got {value!r}")
    return label, rest


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=int)
    parser.add_argument("--mcp", action="append", default=[], metavar="LABEL=COMMAND")
    parser.add_argument("--docker", action="append", default=[], metavar="LABEL=IMAGE")
    parser.add_argument("--pooled", action="append", default=[], metavar="LABEL",
                        help="an MCP peer with a pool: warm up until initialize is pooled")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds to sleep after every cycle")
    parser.add_argument("--warmup", type=int, default=2, help="untimed cycles per peer first")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for one response")
    parser.add_argument("--stderr-dir", help="write each server's stderr to DIR/LABEL.log")
    args = parser.parse_args()
    if args.runs < 1:
        sys.exit("RUNS must be at least 1")

    peers = []
    try:
        for value in args.mcp:
            label, command = labelled(value, "--mcp")
            stderr_path = None
            if args.stderr_dir:
                safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
                stderr_path = os.path.join(args.stderr_dir, safe + ".log")
            log(f"starting {label}: {command}")
            peers.append(McpServer(label, shlex.split(command), args.timeout, stderr_path))
        for value in args.docker:
            label, image = labelled(value, "--docker")
            peers.append(DockerPeer(label, image, args.timeout))
        unknown = set(args.pooled) - {p.label for p in peers if p.kind == "mcp"}
        if unknown:
            sys.exit(f"--pooled names no --mcp peer: {', '.join(sorted(unknown))}")
        if not peers:
            sys.exit("nothing to time: give --mcp and/or --docker")

        for peer in peers:
            pooled_peer = peer.label in args.pooled
            needed = max(args.warmup, 1 if pooled_peer else 0)
            warm = tries = 0
            while warm < needed:
                _, pooled = peer.cycle()
                tries += 1
                time.sleep(args.pause)
                if pooled_peer and pooled is not True:
                    if tries >= 60:
                        raise BenchError(f"{peer.label}: sandbox_initialize never said pooled: true "
                                         f"in {tries} warm-up cycles")
                    continue
                warm += 1
            log(f"{peer.label}: warmed up ({tries} untimed cycles)")

        samples = {p.label: {s: [] for s in STEPS} for p in peers}
        pooled_flags = {p.label: [] for p in peers}
        for run in range(args.runs):
            for peer in peers:
                times, pooled = peer.cycle()
                for step in STEPS:
                    samples[peer.label][step].append(round(times[step], 3))
                pooled_flags[peer.label].append(pooled)
                time.sleep(args.pause)
            if (run + 1) % 5 == 0 or run + 1 == args.runs:
                log(f"run {run + 1}/{args.runs} done")

        report = {"runs": args.runs, "pause_s": args.pause, "warmup": args.warmup, "peers": {}}
        for peer in peers:
            shutdown_ms = peer.close()
            entry = {
                "kind": peer.kind,
                "command": peer.command_text,
                "samples_ms": samples[peer.label],
                "median_ms": {s: round(statistics.median(samples[peer.label][s]), 3) for s in STEPS},
                "p90_ms": {s: round(p90(samples[peer.label][s]), 3) for s in STEPS},
            }
            if peer.kind == "mcp":
                entry["pooled"] = pooled_flags[peer.label]
                entry["pooled_count"] = sum(1 for f in pooled_flags[peer.label] if f is True)
                entry["server_startup_ms"] = round(peer.startup_ms, 3)
                entry["server_info"] = peer.server_info
                entry["protocol_version"] = peer.protocol_version
                entry["shutdown_ms"] = round(shutdown_ms, 3)
            report["peers"][peer.label] = entry
        peers = []
        print(json.dumps(report, indent=2))
    except BenchError as error:
        sys.exit(str(error))
    finally:
        for peer in peers:
            try:
                peer.close()
            except Exception as error:  # cleanup must reach every peer
                log(f"{peer.label}: cleanup failed: {error}")


if __name__ == "__main__":
    main()
