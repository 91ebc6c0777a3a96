#!/usr/bin/env python3
"""A fake Anthropic API that times how long an agent takes to send its first request.

Usage: first_request.py RUNS --listen ADDR:PORT --cert CERT --key KEY
                        --agent LABEL[@USER]=COMMAND [--agent ...] [--step LABEL[@USER]=COMMAND ...]
                        [--setup LABEL=COMMAND] [--teardown LABEL=COMMAND]
                        [--pause S] [--warmup N] [--timeout S] [--out-dir DIR] [--log FILE]
       first_request.py --serve --listen ADDR:PORT --cert CERT --key KEY [--log FILE]

The fake serves HTTPS (TLS 1.2+, CERT/KEY, e.g. from tests/e2e/certs.sh with
DNS:api.anthropic.com) on a ThreadingHTTPServer, each handshake in its connection's own thread:
  POST /v1/messages                 streamed (server-sent events: message_start, one text
                                    block "ok", message_delta with end_turn, message_stop) when
                                    the body asks for "stream", else the same message as JSON
  POST /v1/messages/count_tokens    {"input_tokens": 1}
  GET /api/claude_code/policy_limits  {"restrictions": {}} (no organization limits; Claude Code
                                    retries an answer without "restrictions" for seconds)
  anything else                     {} (200, JSON)
Every request is stamped once its head is read (CLOCK_MONOTONIC for the timing, and the
wall-clock time) and appended to --log as one JSON line: both times, the run it fell into,
method, path, user agent and whether x-api-key held the expected key (never the key itself).

Timing: the peers' commands run one after another, interleaved (A, B, C, A, B, C, ...), each
through `sh -c` (as USER when LABEL@USER is given, switched to directly as bench/timeit.py
does, so no PAM session is timed), with stdin /dev/null and stdout/stderr kept in --out-dir.
"{i}" in a command is replaced by the run number. For every run of an --agent peer the script
reads the clock just before spawning the command (the same clock, in the same process, as
the fake's stamps), and reports
  first_request_ms   until the first request of any kind reached the fake
  first_call_ms      until the first request other than a HEAD reached it (Claude Code
                     sends HEAD /api/hello first to warm the connection, but only when it
                     talks to the API directly, not through a proxy)
  first_messages_ms  until the first POST /v1/messages reached it
  wall_ms            until the command exited
For a --step peer (a plain command that need not reach the API) only wall_ms. --setup and
--teardown commands run outside the timing, before and after the peer's timed command;
PAUSE seconds (default 1) are slept after every run. Before the timed runs each peer runs
WARMUP times untimed (default 1; numbered w0, w1, ... in place of "{i}").

The child's environment: as root, this script's own; as USER, HOME, USER, PATH, LANG of that
user plus ANTHROPIC_API_KEY if set here. A run whose command fails, or an agent run that sends
no request, stops the benchmark with the command's stderr. A run's reply is checked: "ok" on
stdout counts as ok_count; the expected key (ANTHROPIC_API_KEY here) in x-api-key of the
first /v1/messages as key_ok_count.

Prints JSON on stdout: per peer its samples, medians and p90s, and the settings.
"""
import argparse
import json
import os
import pwd
import signal
import ssl
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPLY_TEXT = "ok"


def log(message):
    print(message, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


class Recorder:
    """Which run is under way, and the requests that reached the fake during it."""

    def __init__(self, log_path, expected_key):
        self.lock = threading.Lock()
        self.run = None
        self.requests = []
        self.stray = 0
        self.expected_key = expected_key
        self.log_file = open(log_path, "a", buffering=1) if log_path else None

    def begin(self, run):
        with self.lock:
            self.run = run
            self.requests = []

    def end(self):
        with self.lock:
            requests, self.run, self.requests = self.requests, None, []
            return requests

    def record(self, entry):
        with self.lock:
            entry["run"] = self.run
            if self.run is None:
                self.stray += 1
            else:
                self.requests.append(entry)
            if self.log_file:
                self.log_file.write(json.dumps(entry) + "\n")


def message(model):
    return {
        "id": "msg_bench_%d" % (time.time_ns() // 1000),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": REPLY_TEXT}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0},
    }


def sse(model):
    msg = message(model)
    start = dict(msg, content=[], stop_reason=None)
    events = [
        ("message_start", {"type": "message_start", "message": start}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": REPLY_TEXT}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"output_tokens": 1}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def _reply(self, body, content_type="application/json", status=200):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("request-id", "req_bench")
        self.end_headers()
        self.wfile.write(body)

    def _record(self):
        arrived_mono = time.monotonic_ns()
        arrived_ns = time.time_ns()
        recorder = self.server.recorder
        key = self.headers.get("x-api-key")
        recorder.record({
            "mono_ns": arrived_mono,
            "time_ns": arrived_ns,
            "method": self.command,
            "path": self.path,
            "user_agent": self.headers.get("User-Agent"),
            "x_api_key": None if key is None else ("expected" if key == recorder.expected_key else "other"),
            "authorization": "Authorization" in self.headers,
        })

    def _handle(self):
        self._record()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        model = body.get("model") or "claude-sonnet-4-5"
        if self.command == "POST" and path == "/v1/messages":
            if body.get("stream"):
                self.close_connection = False
                return self._reply(sse(model), "text/event-stream")
            return self._reply(json.dumps(message(model)).encode())
        if path == "/v1/messages/count_tokens":
            return self._reply(b'{"input_tokens": 1}')
        if path == "/api/claude_code/policy_limits":
            # Checked against a schema: {} is refused, and Claude Code retries it for seconds.
            return self._reply(b'{"restrictions": {}}')
        return self._reply(b"{}")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    def do_HEAD(self):
        self._record()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


class TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, context, recorder):
        super().__init__(address, Handler)
        self.context = context
        self.recorder = recorder

    def finish_request(self, request, client_address):
        # The handshake happens here, in the connection's thread, not in the accept loop.
        try:
            request = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(request, client_address, self)
        finally:
            try:
                request.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        pass  # a client that goes away mid-reply is no concern of the timing


def serve(listen, cert, key, recorder):
    host, _, port = listen.rpartition(":")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    server = TLSServer((host, int(port)), context, recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Peer:
    def __init__(self, label, user, command, kind):
        self.label = label
        self.user = user
        self.command = command
        self.kind = kind  # "agent" (times the first request) or "step" (wall time only)
        self.setup = None
        self.teardown = None
        self.samples = {"first_request_ms": [], "first_call_ms": [], "first_messages_ms": [], "wall_ms": []}
        self.ok = 0
        self.key_ok = 0
        self.first_paths = []
        self.requests_per_run = []


class Tagged(argparse.Action):
    """Appends (option name, value) to one list, keeping --agent and --step in their order."""

    def __call__(self, parser, namespace, value, option_string=None):
        getattr(namespace, self.dest).append((option_string.lstrip("-"), value))


def labelled(value, option):
    label, sep, rest = value.partition("=")
    if not sep or not label or not rest:
        sys.exit(f"{option} wants LABEL=VALUE, got {value!r}")
    return label, rest


def child_options(peer):
    if peer.user is None:
        return {"env": dict(os.environ)}
    account = pwd.getpwnam(peer.user)

    def become():
        os.setgid(account.pw_gid)
        os.setgroups([])
        os.setuid(account.pw_uid)

    env = {"HOME": account.pw_dir, "USER": account.pw_name, "LOGNAME": account.pw_name,
           "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    if "ANTHROPIC_API_KEY" in os.environ:
        env["ANTHROPIC_API_KEY"] = os.environ["ANTHROPIC_API_KEY"]
    return {"env": env, "preexec_fn": become, "cwd": account.pw_dir}


def run_untimed(peer, command, what, timeout):
    result = subprocess.run(["sh", "-c", command], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, timeout=timeout, **child_options(peer))
    if result.returncode != 0:
        raise BenchError(f"{peer.label}: {what} failed (exit {result.returncode}): {command}\n"
                         f"{result.stderr.decode(errors='replace')[-800:]}")


def run_timed(peer, i, recorder, timeout, out_dir):
    """One run of the peer's command; returns (wall_ms, requests, stdout, stderr)."""
    command = peer.command.replace("{i}", str(i))
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in peer.label)
    out_path = os.path.join(out_dir, f"{safe}-{i}.out")
    err_path = os.path.join(out_dir, f"{safe}-{i}.err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        options = child_options(peer)
        recorder.begin((peer.label, i))
        start_mono = time.monotonic_ns()
        process = subprocess.Popen(["sh", "-c", command], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                   start_new_session=True, **options)
        try:
            status = process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            status = None
        end_mono = time.monotonic_ns()
        requests = recorder.end()
    with open(out_path, "rb") as f:
        stdout = f.read().decode(errors="replace")
    with open(err_path, "rb") as f:
        stderr = f.read().decode(errors="replace")
    if status is None:
        raise BenchError(f"{peer.label} run {i}: still running after {timeout:.0f} s; killed: {command}\n"
                         f"stderr (tail): {stderr[-800:]}\nrequests: {[r['path'] for r in requests]}")
    if status != 0:
        raise BenchError(f"{peer.label} run {i} failed (exit {status}): {command}\n"
                         f"stdout (tail): {stdout[-400:]}\nstderr (tail): {stderr[-800:]}")
    return start_mono, end_mono, requests, stdout, stderr


def one_run(peer, i, recorder, args, timed):
    """One run (warm-up runs are numbered w0, w1, ... in their commands); records its samples if timed."""
    i = i if timed else f"w{i}"
    if peer.setup:
        run_untimed(peer, peer.setup.replace("{i}", str(i)), "setup", args.timeout)
    start, end, requests, stdout, stderr = run_timed(peer, i, recorder, args.timeout, args.out_dir)
    try:
        if peer.kind == "agent" and not requests:
            raise BenchError(f"{peer.label} run {i}: the command exited without a request reaching the fake\n"
                             f"stdout (tail): {stdout[-400:]}\nstderr (tail): {stderr[-800:]}")
        if timed:
            peer.samples["wall_ms"].append(round((end - start) / 1e6, 3))
            if peer.kind == "agent":
                first = min(requests, key=lambda r: r["mono_ns"])
                peer.samples["first_request_ms"].append(round((first["mono_ns"] - start) / 1e6, 3))
                calls = [r for r in requests if r["method"] != "HEAD"]
                if calls:
                    first_call = min(calls, key=lambda r: r["mono_ns"])
                    peer.samples["first_call_ms"].append(round((first_call["mono_ns"] - start) / 1e6, 3))
                messages = [r for r in requests if r["method"] == "POST" and r["path"].split("?")[0] == "/v1/messages"]
                if messages:
                    first_messages = min(messages, key=lambda r: r["mono_ns"])
                    peer.samples["first_messages_ms"].append(round((first_messages["mono_ns"] - start) / 1e6, 3))
                    peer.key_ok += first_messages["x_api_key"] == "expected"
                peer.first_paths.append(f"{first['method']} {first['path']}")
                peer.requests_per_run.append(len(requests))
                peer.ok += stdout.strip() == REPLY_TEXT
    finally:
        if peer.teardown:
            try:
                run_untimed(peer, peer.teardown.replace("{i}", str(i)), "teardown", args.timeout)
            except (BenchError, subprocess.TimeoutExpired) as error:
                log(f"warning: {error}")
    time.sleep(args.pause)


def p90(samples):
    if len(samples) < 2:
        return samples[0]
    return statistics.quantiles(samples, n=10, method="inclusive")[8]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=int, nargs="?")
    parser.add_argument("--listen", required=True, help="ADDR:PORT, e.g. 127.0.0.3:443")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--serve", action="store_true", help="only serve the fake (until interrupted)")
    parser.add_argument("--agent", dest="peers", action=Tagged, default=[], metavar="LABEL[@USER]=COMMAND",
                        help="a command whose first request to the fake is timed")
    parser.add_argument("--step", dest="peers", action=Tagged, default=[], metavar="LABEL[@USER]=COMMAND",
                        help="a command timed to its exit only")
    parser.add_argument("--setup", action="append", default=[], metavar="LABEL=COMMAND")
    parser.add_argument("--teardown", action="append", default=[], metavar="LABEL=COMMAND")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds to sleep after every run")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per peer first")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds one command may take")
    parser.add_argument("--out-dir", default=".", help="where each run's stdout and stderr go")
    parser.add_argument("--log", help="append every request to FILE as a JSON line")
    args = parser.parse_args()

    recorder = Recorder(args.log, os.environ.get("ANTHROPIC_API_KEY"))
    server = serve(args.listen, args.cert, args.key, recorder)
    if args.serve:
        log(f"serving on https://{args.listen}")
        threading.Event().wait()
    if not args.runs or args.runs < 1:
        sys.exit("RUNS must be at least 1")

    # The order on the command line is the order within a run (a step may prepare the next).
    peers = []
    for kind, value in args.peers:
        label, command = labelled(value, "--" + kind)
        label, _, user = label.partition("@")
        if user:
            pwd.getpwnam(user)
        peers.append(Peer(label, user or None, command, kind))
    if not peers:
        sys.exit("nothing to time: give --agent and/or --step")
    by_label = {p.label: p for p in peers}
    for option in ("setup", "teardown"):
        for value in getattr(args, option):
            label, command = labelled(value, "--" + option)
            if label not in by_label:
                sys.exit(f"--{option} names no peer: {label}")
            setattr(by_label[label], option, command)

    try:
        for w in range(args.warmup):
            for peer in peers:
                one_run(peer, w, recorder, args, timed=False)
        if args.warmup:
            log(f"warmed up ({args.warmup} untimed run{'s' if args.warmup > 1 else ''} per peer)")
        for i in range(args.runs):
            for peer in peers:
                one_run(peer, i, recorder, args, timed=True)
            log(f"run {i + 1}/{args.runs} done: " + ", ".join(
                f"{p.label} {p.samples['first_request_ms'][-1] if p.kind == 'agent' else p.samples['wall_ms'][-1]:.0f}"
                for p in peers) + " ms")
    except (BenchError, subprocess.TimeoutExpired) as error:
        sys.exit(str(error))
    finally:
        server.shutdown()

    report = {"runs": args.runs, "pause_s": args.pause, "warmup": args.warmup, "listen": args.listen,
              "stray_requests": recorder.stray, "peers": {}}
    for peer in peers:
        entry = {"kind": peer.kind, "user": peer.user or "root", "command": peer.command,
                 "setup": peer.setup, "teardown": peer.teardown, "samples_ms": {}, "median_ms": {}, "p90_ms": {}}
        for name, values in peer.samples.items():
            if values:
                entry["samples_ms"][name] = values
                entry["median_ms"][name] = round(statistics.median(values), 3)
                entry["p90_ms"][name] = round(p90(values), 3)
        if peer.kind == "agent":
            entry["ok_count"] = peer.ok
            entry["key_ok_count"] = peer.key_ok
            entry["first_paths"] = sorted(set(peer.first_paths))
            entry["requests_per_run"] = peer.requests_per_run
        report["peers"][peer.label] = entry
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
