#!/usr/bin/env python3
"""End-to-end checks of `airlock mcp serve code-sandbox` through the real MCP Python client.

Run by tests/e2e/code-sandbox.sh in a venv holding the `mcp` package (1.x or 2.x). It starts
`$AIRLOCK mcp serve code-sandbox --pool 1` with `mcp.client.stdio.stdio_client`, calls every
tool of the README's contract, runs attacks inside the sandboxes and checks that they fail,
each next to a companion showing the probe works, then kills a server with SIGKILL (speaking
newline-delimited JSON-RPC itself) and checks that its sandboxes are gone.

Prints one line per check, "ok - NAME" or "FAIL - NAME: detail"; exits 1 if any failed.
Environment: AIRLOCK (the binary), AIRLOCK_HOME (its state), CODE_SANDBOX_WORK (a scratch
directory on the host, removed by the caller).
"""

import json
import os
import queue
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from e2e_checks import HostListener, check, expect, host_addresses, settle, short, totals, wait_until

AIRLOCK = os.environ.get("AIRLOCK", "airlock")
# Under gVisor (AIRLOCK_RUNTIME=runsc) a sandbox's processes are not host processes: its
# kernel, runsc, is.
GVISOR = os.environ.get("AIRLOCK_RUNTIME") == "runsc"
HOME = os.path.expanduser("~")
AIRLOCK_HOME = os.environ.get("AIRLOCK_HOME") or os.path.join(
    os.environ.get("XDG_DATA_HOME") or os.path.join(HOME, ".local", "share"), "airlock"
)
WORK = os.environ.get("CODE_SANDBOX_WORK") or "/tmp"
SERVER_ARGS = ["mcp", "serve", "code-sandbox", "--pool", "1"]
# The server and the sandboxes it starts need the whole environment (AIRLOCK_HOME above all);
# the stdio client would pass only HOME, PATH and a few others.
SERVER_ENV = dict(os.environ)

CONTRACT = {
    "sandbox_initialize": ["template", "image", "network", "memory", "cpus", "pids", "disk"],
    "sandbox_exec": ["sandbox_id", "command", "timeout_s", "workdir", "env"],
    "run_code": ["sandbox_id", "language", "code", "timeout_s"],
    "write_file": ["sandbox_id", "path", "content", "executable"],
    "read_file": ["sandbox_id", "path", "max_bytes"],
    "list_files": ["sandbox_id", "path"],
    "exec_background": ["sandbox_id", "command", "workdir", "env"],
    "process_status": ["sandbox_id", "process_id"],
    "process_logs": ["sandbox_id", "process_id", "max_bytes"],
    "process_kill": ["sandbox_id", "process_id"],
    "sandbox_stop": ["sandbox_id"],
    "sandbox_list": [],
}
FIRST_START_S = 600  # the first sandbox may wait for its image (mmdebstrap, a few minutes)
CALL_S = 120  # any other call
MIB = 1 << 20

created = set()  # every sandbox id any server handed out



# ---- the host side ------------------------------------------------------------------------


def airlock(*args, timeout=120):
    return subprocess.run([AIRLOCK, *args], capture_output=True, text=True, timeout=timeout, env=SERVER_ENV)


def listed():
    """The names `airlock ls -q` shows."""
    return set(airlock("ls", "-q").stdout.split())


def state_dir(sandbox_id):
    return os.path.join(AIRLOCK_HOME, "sandboxes", sandbox_id)


def processes_with(text):
    """Host processes (but this one) whose command line holds `text`, as 'pid: cmdline'."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{pid}: {cmdline}")
    return found


# ---- the MCP client side ------------------------------------------------------------------


class Result:
    """A tools/call result: isError, the structured result and the text content."""

    def __init__(self, raw, elapsed):
        self.raw = raw
        self.elapsed = elapsed
        self.is_error = bool(raw.get("isError"))
        texts = [c.get("text", "") for c in raw.get("content") or [] if c.get("type") == "text"]
        self.text = "\n".join(texts)
        self.data = None
        structured = raw.get("structuredContent")
        if isinstance(structured, dict):
            self.data = structured
        else:
            for text in texts:
                try:
                    value = json.loads(text)
                except ValueError:
                    continue
                if isinstance(value, dict):
                    self.data = value
                    break
        self.data = self.data or {}

    def get(self, key, default=None):
        return self.data.get(key, default)

    def __repr__(self):
        return short(self.data or self.raw, 600)


class Server:
    def __init__(self, session):
        self.session = session

    async def call(self, tool, arguments=None, timeout=CALL_S):
        started = time.monotonic()
        try:
            with anyio.fail_after(timeout):
                result = await self.session.call_tool(tool, arguments or {})
        except TimeoutError:
            raise TimeoutError(f"no answer to {tool} in {timeout} s") from None
        raw = result.model_dump(by_alias=True, mode="json")
        return Result(raw, time.monotonic() - started)

    async def initialize_sandbox(self, timeout=CALL_S, **arguments):
        result = await self.call("sandbox_initialize", arguments, timeout=timeout)
        sandbox_id = result.get("sandbox_id")
        if isinstance(sandbox_id, str) and sandbox_id:
            created.add(sandbox_id)
        return result

    async def sh(self, sandbox_id, command, timeout_s=30, **more):
        arguments = {"sandbox_id": sandbox_id, "command": command, "timeout_s": timeout_s, **more}
        return await self.call("sandbox_exec", arguments, timeout=timeout_s + 90)

    async def out(self, sandbox_id, command, timeout_s=30):
        """The command's stdout, stripped, or a marker saying why there is none."""
        result = await self.sh(sandbox_id, command, timeout_s)
        if result.is_error:
            return f"<tool error: {short(result.text)}>"
        return (result.get("stdout") or "").strip()

    async def alive(self):
        try:
            with anyio.fail_after(20):
                await self.session.send_ping()
            return True
        except Exception:
            return False


def sandbox_ids(result):
    return [s.get("sandbox_id") for s in result.get("sandboxes") or [] if isinstance(s, dict)]


async def section(server, title, body, *args):
    """Runs one group of checks; an exception fails it without stopping the others."""
    print(f"== {title}", flush=True)
    try:
        await body(server, *args)
        return True
    except Exception as error:  # a timeout, a dead connection, a result of the wrong shape
        check(f"{title}: ran to the end", False, f"{type(error).__name__}: {short(str(error))}")
        return await server.alive()


# ---- the checks over the MCP client ------------------------------------------------------


async def tools_listed(server):
    result = await server.session.list_tools()
    tools = {t.name: t.model_dump(by_alias=True, mode="json") for t in result.tools}
    print(f"   tools: {' '.join(sorted(tools))}", flush=True)
    missing = sorted(set(CONTRACT) - set(tools))
    check(f"tools/list has all {len(CONTRACT)} tools of the contract", not missing, f"missing {missing}")
    wrong = []
    for name, arguments in CONTRACT.items():
        if name in tools:
            properties = (tools[name].get("inputSchema") or {}).get("properties") or {}
            wrong += [f"{name}.{a}" for a in arguments if a not in properties]
    check("every tool's inputSchema names the contract's arguments", not wrong, f"missing {wrong}")


async def two_sandboxes(server, s):
    known = listed()
    a = await server.initialize_sandbox(timeout=FIRST_START_S)
    print(f"   first sandbox_initialize took {a.elapsed:.1f} s: {a}", flush=True)
    if not check("sandbox_initialize returns a sandbox_id", isinstance(a.get("sandbox_id"), str), repr(a)):
        raise RuntimeError("no sandbox to test in")
    s["a"] = a.get("sandbox_id")
    expect("a default sandbox has network none", "none", a.get("network"))
    check("the result says whether it came from the pool", isinstance(a.get("pooled"), bool), repr(a))
    check("the result reports the limits", isinstance(a.get("limits"), dict) and bool(a.get("limits")), repr(a))
    check("companion: airlock ls -q lists the live sandbox", s["a"] in listed(), f"ls -q: {sorted(listed())}")

    # With --pool 1 the server refills its pool in the background; give it time, then the next
    # default sandbox should come from there at once.
    await settle(lambda: listed() - known - created, 30)
    b = await server.initialize_sandbox()
    if not check("a second sandbox_initialize returns another id", b.get("sandbox_id") not in (None, s["a"]), repr(b)):
        raise RuntimeError("no second sandbox")
    s["b"] = b.get("sandbox_id")
    check("--pool 1: the second default sandbox is pooled and handed out at once",
          b.get("pooled") is True and b.elapsed < 5, f"pooled={b.get('pooled')!r} in {b.elapsed:.1f} s")

    content_a, content_b = 'print("from A")\n', 'print("from sandbox B")\n'
    wa = await server.call("write_file", {"sandbox_id": s["a"], "path": "x.py", "content": content_a})
    wb = await server.call("write_file", {"sandbox_id": s["b"], "path": "/workspace/x.py", "content": content_b})
    expect("write_file reports the bytes written", len(content_a), wa.get("bytes"))
    check("write_file of a relative path reports it under /workspace", wa.get("path") in ("/workspace/x.py", "x.py"),
          repr(wa))
    check("write_file with an absolute path works", not wb.is_error and wb.get("bytes") == len(content_b), repr(wb))
    ra = await server.sh(s["a"], "python3 /workspace/x.py")
    rb = await server.sh(s["b"], "python3 /workspace/x.py")
    expect("sandbox A runs its own file (relative path landed in /workspace)", ["from A\n", 0],
           [ra.get("stdout"), ra.get("exit_code")])
    expect("sandbox B runs its own file", ["from sandbox B\n", 0], [rb.get("stdout"), rb.get("exit_code")])
    expect("sandbox_exec says timed_out false and nothing truncated", [False, False, False],
           [ra.get("timed_out"), ra.get("stdout_truncated"), ra.get("stderr_truncated")])
    check("sandbox_exec reports its duration", isinstance(ra.get("duration_ms"), (int, float)), repr(ra))

    r = await server.call("read_file", {"sandbox_id": s["a"], "path": "/workspace/x.py"})
    expect("read_file gives the content back", ['print("from A")\n', 16, False],
           [r.get("content"), r.get("bytes"), r.get("truncated")])
    r = await server.call("read_file", {"sandbox_id": s["b"], "path": "x.py", "max_bytes": 5})
    expect("read_file of a relative path with max_bytes: cut and says so", ["print", True],
           [r.get("content"), r.get("truncated")])
    r = await server.call("list_files", {"sandbox_id": s["a"]})
    entries = {e.get("name"): e for e in r.get("entries") or [] if isinstance(e, dict)}
    check("list_files without a path lists /workspace", "x.py" in entries, repr(r))
    check("  with each entry's type and size", entries.get("x.py", {}).get("size") == 16
          and str(entries.get("x.py", {}).get("type", "")).startswith(("f", "regular")), repr(entries.get("x.py")))
    await server.sh(s["a"], "mkdir -p /workspace/sub && echo x > /workspace/sub/y.txt")
    r = await server.call("list_files", {"sandbox_id": s["a"], "path": "/workspace"})
    types_ = {e.get("name"): str(e.get("type", "")) for e in r.get("entries") or [] if isinstance(e, dict)}
    check("list_files marks a directory", types_.get("sub", "").startswith("d"), repr(r))
    r = await server.call("list_files", {"sandbox_id": s["a"], "path": "sub"})
    check("list_files of a relative path", any(e.get("name") == "y.txt" for e in r.get("entries") or []), repr(r))

    await server.call("write_file", {"sandbox_id": s["a"], "path": "run.sh", "content": "#!/bin/bash\necho exec-ok\n",
                                     "executable": True})
    expect("write_file executable: true makes a runnable file", "exec-ok", await server.out(s["a"], "./run.sh"))
    expect("commands start in /workspace", "/workspace", await server.out(s["a"], "pwd"))
    r = await server.sh(s["a"], "pwd", workdir="/tmp")
    expect("workdir sets the directory", "/tmp\n", r.get("stdout"))
    r = await server.sh(s["a"], 'echo "$GREETING"', env={"GREETING": "hi there"})
    expect("env sets variables", "hi there\n", r.get("stdout"))
    r = await server.sh(s["a"], "echo to-err >&2; exit 7")
    expect("exit status and stderr come back", [7, "to-err\n", ""], [r.get("exit_code"), r.get("stderr"),
                                                                     r.get("stdout")])
    expect("a sandbox does not see another's files", "from sandbox B", await server.out(s["b"], "python3 x.py"))

    # Paths name files in the sandbox, never on the host.
    secret = os.path.join(WORK, "host-secret.txt")
    with open(secret, "w") as f:
        f.write("host-only-secret\n")
    r = await server.call("read_file", {"sandbox_id": s["a"], "path": secret})
    check("read_file of a host file's path does not read the host file",
          "host-only-secret" not in json.dumps(r.raw), repr(r))
    check("companion: the host file is there", open(secret).read() == "host-only-secret\n")
    tag = f"airlock-cs-probe-{random.randrange(1 << 30)}"
    for path in (f"/tmp/{tag}-abs", f"../../../../../../tmp/{tag}-rel", os.path.join(HOME, f"{tag}-home"),
                 os.path.join(WORK, f"{tag}-work")):
        await server.call("write_file", {"sandbox_id": s["a"], "path": path, "content": "x"})
    leaked = [p for p in (f"/tmp/{tag}-abs", f"/tmp/{tag}-rel", os.path.join(HOME, f"{tag}-home"),
                          os.path.join(WORK, f"{tag}-work")) if os.path.exists(p)]
    check("write_file never writes on the host (/tmp, ../.., $HOME, the test's dir)", not leaked, f"found {leaked}")
    expect("companion: the /tmp write landed inside the sandbox", "x", await server.out(s["a"], f"cat /tmp/{tag}-abs"))


async def concurrent_exec(server, s):
    """100 sandbox_exec calls at once on one sandbox: every one runs, none gets the runtime's
    failure as its output (once runc crashed in a burst: exit 255 and a Go dump as stderr)."""
    count = 100
    results = [None] * count

    async def one(i):
        results[i] = await server.sh(s["a"], f"echo run-{i}", timeout_s=60)

    started = time.monotonic()
    async with anyio.create_task_group() as group:
        for i in range(count):
            group.start_soon(one, i)
    took = time.monotonic() - started
    good = [i for i, r in enumerate(results)
            if not r.is_error and r.get("exit_code") == 0 and r.get("stdout") == f"run-{i}\n" and not r.get("stderr")]
    good_set = set(good)
    bad = [short(results[i].text if results[i] else "no result") for i in range(count) if i not in good_set]
    expect(f"{count} concurrent sandbox_exec calls all succeed with their own output ({took:.1f} s)",
           count, len(good))
    if bad:
        print(f"   first failures: {bad[:3]}", flush=True)
    dumps = [r for r in results if "goroutine" in (r.get("stderr") or "") or "pthread_create" in (r.get("stderr") or "")]
    expect("no result carries a runtime crash dump as the command's stderr", 0, len(dumps))


async def run_code(server, s):
    snippets = {
        "python": ("import sys; print('py', sys.version_info[0])", "py 3"),
        "node": ("console.log('node', 6 * 7)", "node 42"),
        "bash": ("echo bash $((6 * 7)); pwd", "bash 42\n/workspace"),
    }
    for language, (code, want) in snippets.items():
        listed_before = set(sandbox_ids(await server.call("sandbox_list")))
        r = await server.call("run_code", {"language": language, "code": code, "timeout_s": 60}, timeout=300)
        expect(f"run_code {language} without a sandbox_id", [want, 0], [(r.get("stdout") or "").strip(),
                                                                        r.get("exit_code")])
        # The sandbox made for the call is gone after it: checked by its id where the result names
        # it, and in any case by sandbox_list holding nothing new.
        temporary = r.get("sandbox_id")
        if isinstance(temporary, str) and temporary:
            created.add(temporary)
            gone = await settle(lambda: temporary not in listed() and not os.path.exists(state_dir(temporary)), 15)
            check(f"  {language}: the sandbox made for it ({temporary}) is removed after the call", gone,
                  f"{temporary} still in airlock ls -q or on disk")
        new = set(sandbox_ids(await server.call("sandbox_list"))) - listed_before
        check(f"  {language}: sandbox_list holds no sandbox left by the call", not new, f"new: {sorted(new)}")
    with_id = {
        "python": ("print(open('/workspace/x.py').read().strip())", 'print("from A")'),
        "node": ("process.stdout.write(require('fs').readFileSync('x.py', 'utf8'))", 'print("from A")'),
        "bash": ("cat x.py", 'print("from A")'),
    }
    for language, (code, want) in with_id.items():
        r = await server.call("run_code", {"sandbox_id": s["a"], "language": language, "code": code})
        expect(f"run_code {language} in a given sandbox sees its files", [want, s["a"]],
               [(r.get("stdout") or "").strip(), r.get("sandbox_id")])
    r = await server.call("run_code", {"sandbox_id": s["a"], "language": "python", "code": "import sys; sys.exit(3)"})
    expect("run_code gives the program's exit status", 3, r.get("exit_code"))
    r = await server.call("run_code", {"sandbox_id": s["a"], "language": "cobol", "code": "DISPLAY 'X'."})
    check("run_code of an unknown language is a tool error", r.is_error, repr(r))


async def background(server, s):
    loop = "for i in $(seq 1 3000); do echo line$i; sleep 0.1; done"
    r = await server.call("exec_background", {"sandbox_id": s["a"], "command": loop})
    pid = r.get("process_id")
    if not check("exec_background returns a process_id", pid not in (None, ""), repr(r)):
        return
    ids = {"sandbox_id": s["a"], "process_id": pid}
    logs = Result({}, 0)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        logs = await server.call("process_logs", ids)
        if "line3\n" in (logs.get("stdout") or ""):
            break
        await anyio.sleep(0.3)
    check("process_logs shows the lines it printed", (logs.get("stdout") or "").startswith("line1\nline2\nline3\n"),
          repr(logs))
    expect("  while it runs", True, logs.get("running"))
    r = await server.call("process_status", ids)
    expect("process_status: running", True, r.get("running"))
    r = await server.call("process_kill", ids)
    expect("process_kill kills it", True, r.get("killed"))
    status = Result({}, 0)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = await server.call("process_status", ids)
        if status.get("running") is False:
            break
        await anyio.sleep(0.3)
    expect("process_status after the kill: not running", False, status.get("running"))
    count = len((await server.call("process_logs", ids)).get("stdout") or "")
    await anyio.sleep(1)
    expect("  and it prints no more", count, len((await server.call("process_logs", ids)).get("stdout") or ""))

    r = await server.call("exec_background", {"sandbox_id": s["a"], "command": "echo bye; echo oops >&2; exit 3",
                                              "workdir": "/tmp", "env": {"WHO": "bg"}})
    ids = {"sandbox_id": s["a"], "process_id": r.get("process_id")}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        status = await server.call("process_status", ids)
        if status.get("running") is False:
            break
        await anyio.sleep(0.3)
    expect("a background command that ends: not running, its exit status", [False, 3],
           [status.get("running"), status.get("exit_code")])
    logs = await server.call("process_logs", ids)
    expect("  its stdout and stderr", ["bye\n", "oops\n", False], [logs.get("stdout"), logs.get("stderr"),
                                                                   logs.get("running")])
    r = await server.call("exec_background", {"sandbox_id": s["a"], "command": 'echo "$WHO $PWD"',
                                              "workdir": "/tmp", "env": {"WHO": "bg"}})
    ids = {"sandbox_id": s["a"], "process_id": r.get("process_id")}
    out = ""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not out:
        out = (await server.call("process_logs", ids)).get("stdout") or ""
        await anyio.sleep(0.3)
    expect("exec_background honours workdir and env", "bg /tmp\n", out)
    r = await server.call("process_status", {"sandbox_id": s["a"], "process_id": "no-such-process"})
    check("process_status of an unknown process_id is a tool error", r.is_error, repr(r))


PROBE = r'''
import socket, struct, sys

def tcp(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect((host, port))
        return "connected " + s.recv(64).decode(errors="replace").strip()
    except Exception as e:
        return "failed %s: %s" % (type(e).__name__, e)
    finally:
        s.close()

QUERY = struct.pack(">HHHHHH", 0x1234, 0x100, 1, 0, 0, 0) + b"\x07example\x03com\x00\x00\x01\x00\x01"

def udp(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    try:
        s.sendto(QUERY, (host, port))
        return "answered %d bytes" % len(s.recv(512))
    except Exception as e:
        return "failed %s: %s" % (type(e).__name__, e)
    finally:
        s.close()

def resolve(name):
    try:
        return "resolved " + " ".join(sorted({a[4][0] for a in socket.getaddrinfo(name, 443)}))
    except Exception as e:
        return "failed %s: %s" % (type(e).__name__, e)

kind = sys.argv[1]
if kind == "tcp":
    print(tcp(sys.argv[2], int(sys.argv[3])))
elif kind == "udp":
    print(udp(sys.argv[2], int(sys.argv[3])))
elif kind == "dns":
    print(resolve(sys.argv[2]))
elif kind == "local-tcp":
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    s = socket.create_connection(srv.getsockname(), timeout=3)
    conn, _ = srv.accept()
    conn.sendall(b"inside-service\n")
    print("connected " + s.recv(64).decode().strip())
elif kind == "local-udp":
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(b"ping", srv.getsockname())
    data, peer = srv.recvfrom(64)
    srv.sendto(b"pong", peer)
    print("answered " + s.recv(64).decode())
'''


async def network_none(server, s):
    sandbox = s["a"]
    await server.call("write_file", {"sandbox_id": sandbox, "path": "/workspace/probe.py", "content": PROBE})

    async def probe(*args):
        return await server.out(sandbox, "python3 /workspace/probe.py " + " ".join(map(str, args)))

    loopback = HostListener("127.0.0.1")
    others = [HostListener(address) for address in host_addresses()[:2]]
    try:
        for listener in [loopback, *others]:
            got = await probe("tcp", listener.address, listener.port)
            check(f"TCP to the host's service on {listener.address}:{listener.port} fails", got.startswith("failed"),
                  got)
        check("  the host's services accepted no connection from the sandbox",
              sum(listener.accepted for listener in [loopback, *others]) == 0,
              f"accepted {[listener.accepted for listener in [loopback, *others]]}")
        with socket.create_connection(("127.0.0.1", loopback.port), timeout=3) as conn:
            greeting = conn.recv(64).decode().strip()
        expect("companion: the host's loopback service answers on the host", "host-service", greeting)
    finally:
        for listener in [loopback, *others]:
            listener.close()
    got = await probe("tcp", "1.1.1.1", 443)
    check("TCP to 1.1.1.1:443 fails", got.startswith("failed"), got)
    got = await probe("tcp", "1.1.1.1", 80)
    check("TCP to 1.1.1.1:80 fails (nothing is captured either)", got.startswith("failed"), got)
    got = await probe("udp", "8.8.8.8", 53)
    check("UDP to 8.8.8.8:53 gets no answer", got.startswith("failed"), got)
    got = await probe("dns", "example.com")
    check("DNS resolution of example.com fails", got.startswith("failed"), got)
    expect("companion: a TCP listener inside on 127.0.0.1 accepts a local connection", "connected inside-service",
           await probe("local-tcp"))
    expect("companion: UDP on loopback inside works", "answered pong", await probe("local-udp"))
    check("companion: localhost resolves inside", (await probe("dns", "localhost")).startswith("resolved"))
    expect("only the loopback interface", "lo", await server.out(sandbox, "tail -n +3 /proc/net/dev | cut -d: -f1 | xargs"))
    expect("no proxy variables without network", "", await server.out(sandbox, 'echo "${HTTPS_PROXY:-}"'))


POLICY_PROBE = r'''
import json, socket, sys, urllib.error, urllib.request
try:
    response = urllib.request.urlopen(sys.argv[1], timeout=15)
    print(json.dumps({"status": response.status, "body": response.read(300).decode(errors="replace")}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "body": e.read(300).decode(errors="replace")}))
except Exception as e:
    print(json.dumps({"status": None, "body": "%s: %s" % (type(e).__name__, e)}))
'''


async def network_policy(server, s):
    r = await server.initialize_sandbox(network="policy", timeout=300)
    policy = r.get("sandbox_id")
    if not check("sandbox_initialize network policy", isinstance(policy, str) and r.get("network") == "policy",
                 repr(r)):
        return
    s["policy"] = policy
    proxy = await server.out(policy, 'echo "${HTTPS_PROXY:-}"')
    check("HTTPS_PROXY is set inside", re.match(r"^https?://", proxy) is not None, repr(proxy))
    await server.call("write_file", {"sandbox_id": policy, "path": "fetch.py", "content": POLICY_PROBE})
    raw = await server.out(policy, "python3 fetch.py http://example.com/")
    try:
        got = json.loads(raw)
    except ValueError:
        got = {"status": None, "body": raw}
    expect("a request through the proxy to a host the policy does not allow: 403", 403, got.get("status"))
    check("  with the body 'Blocked by airlock network policy: example.com:80'",
          got.get("body", "").startswith("Blocked by airlock network policy: example.com:80"), repr(got))
    raw = await server.out(policy, "python3 fetch.py https://example.com/")
    check("CONNECT to example.com:443 is refused with 403", "403" in raw, raw)
    got = await server.out(policy, "python3 -c \"import socket; socket.getaddrinfo('example.com', 80)\" "
                                   "2>/dev/null && echo resolved || echo failed")
    expect("the sandbox's resolver does not resolve a refused name", "failed", got)
    listing = await server.call("sandbox_list")
    entry = [e for e in listing.get("sandboxes") or [] if e.get("sandbox_id") == policy]
    expect("sandbox_list shows its network", ["policy"], [e.get("network") for e in entry])


# Forks N children that sleep 3 s, stopping at the first refusal; prints how many started.
FORKS = r'''
import os, sys, time
started = 0
for _ in range(int(sys.argv[1])):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:  # let go of the pipes, so the command ends when the parent does
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        time.sleep(3)
        os._exit(0)
    started += 1
print(started)
'''


async def limits(server, s):
    # pids
    r = await server.initialize_sandbox(pids=64, timeout=300)
    pids = r.get("sandbox_id")
    if check("sandbox_initialize pids: 64", isinstance(pids, str), repr(r)):
        reported = (r.get("limits") or {}).get("pids")
        print(f"   limits.pids: {short(reported)}", flush=True)
        check("  its limits report the requested pids", "64" in json.dumps(reported), repr(reported))
        s["pids"] = pids
        await server.call("write_file", {"sandbox_id": pids, "path": "forks.py", "content": FORKS})
        expect("companion: 10 processes start under pids 64", "10", await server.out(pids, "python3 forks.py 10"))
        got = await server.out(pids, "python3 forks.py 100")
        check("100 processes do not all start under pids 64", got.isdigit() and int(got) < 100, got)
        started = time.monotonic()
        try:
            r = await server.sh(pids, ":(){ :|:& };:", timeout_s=15)
            check("a fork bomb under pids 64 ends within its timeout", time.monotonic() - started < 15 + 30,
                  f"{time.monotonic() - started:.1f} s")
            print(f"   fork bomb: exit_code={r.get('exit_code')} timed_out={r.get('timed_out')} "
                  f"in {r.elapsed:.1f} s", flush=True)
        except TimeoutError as error:
            check("a fork bomb under pids 64 ends within its timeout", False, str(error))
        check("the server still answers after the fork bomb", await server.alive())
        expect("another sandbox still runs echo ok", "ok", await server.out(s["a"], "echo ok"))
        # The bomb's orphans die out on their own as their forks keep failing (bash gives up
        # after about 30 s of retries); gVisor's slower syscalls stretch that on a loaded host.
        got = ""
        recovering = time.monotonic()
        deadline = recovering + (120 if GVISOR else 30)
        while time.monotonic() < deadline and got != "ok":
            got = await server.out(pids, "echo ok")
            await anyio.sleep(1)
        expect("the fork bomb's sandbox runs echo ok again", "ok", got)
        print(f"   echo ok again after {time.monotonic() - recovering:.1f} s", flush=True)

    # memory
    r = await server.initialize_sandbox(memory="256m", timeout=300)
    memory = r.get("sandbox_id")
    if check("sandbox_initialize memory: 256m", isinstance(memory, str), repr(r)):
        reported = (r.get("limits") or {}).get("memory")
        print(f"   limits.memory: {short(reported)}", flush=True)
        check("  its limits report the requested memory", "256" in json.dumps(reported), repr(reported))
        s["memory"] = memory
        expect("companion: 64 MiB allocate under memory 256m", "ok",
               await server.out(memory, "python3 -c \"b = bytearray(64 << 20); print('ok')\""))
        r = await server.sh(memory, 'python3 -c "b = bytearray(2 << 30); print(len(b))"', timeout_s=60)
        # Under gVisor the sandbox's kernel ends with it: the call is a tool error.
        ended = r.get("exit_code") not in (0, None) and r.get("timed_out") is False
        check("a 2 GiB balloon under memory 256m fails", (ended or (GVISOR and r.is_error))
              and "2147483648" not in (r.get("stdout") or ""), repr(r))
        print(f"   balloon: exit_code={r.get('exit_code')} stderr={short(r.get('stderr') or '', 120)!r}", flush=True)
        check("the server carries on after the balloon", await server.alive())
        if GVISOR:
            # The host's OOM killer sees gVisor's kernel, which holds the balloon: the sandbox ends.
            got = await server.out(memory, "echo ok")
            for _ in range(20):
                if "not running" in got:
                    break
                await anyio.sleep(0.5)
                got = await server.out(memory, "echo ok")
            check("  and under gVisor the sandbox has ended, said in one line", "not running" in got, got)
        else:
            expect("  and the sandbox too", "ok", await server.out(memory, "echo ok"))

    # timeout: the command and everything it started are killed
    marker = 4000000 + random.randrange(1000000)
    started = time.monotonic()
    r = await server.sh(s["a"], f"sleep {marker} & sleep 30", timeout_s=2)
    elapsed = time.monotonic() - started
    expect("sleep 30 with timeout_s 2: timed_out", True, r.get("timed_out"))
    print(f"   timed out: exit_code={r.get('exit_code')} duration_ms={r.get('duration_ms')}", flush=True)
    check("  returned in about 2 s", 1.5 <= elapsed <= 10, f"{elapsed:.1f} s, duration_ms={r.get('duration_ms')}")
    left = await settle(lambda: not processes_with(f"sleep {marker}"), 10)
    check("  and what it started is killed too", left, f"{processes_with(f'sleep {marker}')}")

    # output cap
    r = await server.sh(s["a"], "yes | head -c 5000000")
    stdout = (r.get("stdout") or "").encode()
    check("5 MB of output is cut: stdout_truncated", r.get("stdout_truncated") is True,
          f"stdout_truncated={r.get('stdout_truncated')!r} stdout_bytes={r.get('stdout_bytes')!r}")
    check("  to about the 1 MiB cap", 0 < len(stdout) <= MIB + 4096, f"{len(stdout)} bytes")
    check("  stdout_bytes counts at least what came back", isinstance(r.get("stdout_bytes"), int)
          and r.get("stdout_bytes") >= len(stdout), f"stdout_bytes={r.get('stdout_bytes')}")
    expect("  and the command's own status stays", 0, r.get("exit_code"))
    r = await server.sh(s["a"], "head -c 3000000 /dev/zero | tr '\\0' e >&2")
    expect("stderr past the cap: stderr_truncated", [True, False], [r.get("stderr_truncated"),
                                                                     r.get("stdout_truncated")])
    r = await server.sh(s["a"], "echo small")
    expect("companion: small output is not truncated", ["small\n", False], [r.get("stdout"),
                                                                            r.get("stdout_truncated")])

    # disk
    r = await server.initialize_sandbox(disk="32m", timeout=300)
    disk = r.get("sandbox_id")
    if check("sandbox_initialize disk: 32m", isinstance(disk, str), repr(r)):
        s["disk"] = disk
        expect("companion: 8 MiB fit in /workspace under disk 32m", "ok",
               await server.out(disk, "head -c 8M /dev/zero > /workspace/small && echo ok"))
        for place in ("/workspace", "/tmp"):
            r = await server.sh(disk, f"head -c 64M /dev/zero > {place}/big")
            check(f"64 MiB do not fit in {place} under disk 32m", r.get("exit_code") not in (0, None)
                  and "space" in (r.get("stderr") or "").lower(), repr(r))


async def list_stop_errors(server, s):
    r = await server.call("sandbox_list")
    ids = sandbox_ids(r)
    mine = [s[k] for k in ("a", "b", "policy", "pids", "memory", "disk") if k in s]
    check("sandbox_list shows the sandboxes", all(i in ids for i in mine), f"want {mine} in {ids}")
    entry = next((e for e in r.get("sandboxes") or [] if e.get("sandbox_id") == s["a"]), {})
    missing = [k for k in ("template", "network", "idle_s", "processes") if k not in entry]
    check("  each with template, network, idle_s and processes", not missing, f"missing {missing}: {entry}")
    expect("  a default sandbox's network", "none", entry.get("network"))

    r = await server.call("sandbox_stop", {"sandbox_id": s["b"]})
    expect("sandbox_stop stops it", True, r.get("stopped"))
    check("  sandbox_list no longer shows it", s["b"] not in sandbox_ids(await server.call("sandbox_list")))
    check("  airlock ls -q no longer shows it", await settle(lambda: s["b"] not in listed(), 10), sorted(listed()))
    check("  its state directory is gone", await settle(lambda: not os.path.exists(state_dir(s["b"])), 10),
          state_dir(s["b"]))
    r = await server.sh(s["b"], "echo still-here")
    check("a command in a stopped sandbox is a tool error", r.is_error and "still-here" not in r.text, repr(r))

    r = await server.sh("no-such-sandbox-e2e", "echo hi")
    check("an unknown sandbox_id is a tool error (isError)", r.is_error, repr(r.raw))
    check("  whose message names the problem", re.search(r"no-such-sandbox-e2e|unknown|not found|no (such )?sandbox",
                                                         r.text, re.I) is not None, repr(r.text))
    for tool in ("write_file", "read_file", "list_files", "process_status", "sandbox_stop"):
        arguments = {"sandbox_id": "no-such-sandbox-e2e", "path": "x", "content": "x", "process_id": "1"}
        r = await server.call(tool, arguments)
        check(f"  {tool} with an unknown sandbox_id too", r.is_error, repr(r.raw))
    try:
        r = await server.call("sandbox_exec", {"sandbox_id": s["a"]})
        refused = r.is_error
    except Exception as error:  # a JSON-RPC error (invalid params) is a refusal too
        refused = "Timeout" not in type(error).__name__
    check("a call without a required argument is refused", refused)
    check("the server still answers after the errors", await server.alive())


async def checks_over(session, state):
    """The checks over one initialized session, section by section."""
    server = Server(session)
    await section(server, "tools/list", tools_listed)
    if not await section(server, "two sandboxes, files and commands", two_sandboxes, state) or "a" not in state:
        check("a sandbox to run the other checks in", False, "giving up on the MCP session")
        return
    steps = [("run_code", run_code), ("100 concurrent sandbox_exec", concurrent_exec),
             ("background processes", background),
             ("network none: nothing leads out", network_none),
             ("network policy: through the proxy", network_policy),
             ("limits: pids, memory, timeout, output, disk", limits)]
    if "b" in state:
        steps.append(("sandbox_list, sandbox_stop, errors", list_stop_errors))
    for title, body in steps:
        if not await section(server, title, body, state):
            check("the server still answers", False, f"no answer to ping after '{title}'; stopping")
            return


async def mcp_session():
    """Everything through the real client; returns whether the server ever answered."""
    errlog = open(os.path.join(WORK, "server-stderr.log"), "w")
    parameters = StdioServerParameters(command=AIRLOCK, args=SERVER_ARGS, env=SERVER_ENV)
    answered = False
    try:
        async with stdio_client(parameters, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                try:
                    with anyio.fail_after(120):
                        info = (await session.initialize()).model_dump(by_alias=True, mode="json")
                    answered = True
                except Exception as error:
                    check("the server starts and answers initialize", False, f"{type(error).__name__}: {error}")
                if answered:
                    check("the server starts and answers initialize", True)
                    print(f"   server {info.get('serverInfo')}, protocol {info.get('protocolVersion')}", flush=True)
                    await checks_over(session, {})
    except Exception as error:
        check("the MCP session closes cleanly", False, f"{type(error).__name__}: {short(str(error))}")
    finally:
        errlog.close()
    if not answered:
        return False
    print("== after the client disconnects", flush=True)
    mine = sorted(created)
    check("companion: the session created sandboxes", bool(mine), "none")
    left = await settle(lambda: not (set(mine) & listed()), 30)
    check("airlock ls -q shows none of the session's sandboxes", left, sorted(set(mine) & listed()))
    dirs = await settle(lambda: not [i for i in mine if os.path.exists(state_dir(i))], 10)
    check("  and their state directories are gone", dirs, [i for i in mine if os.path.exists(state_dir(i))])
    return True


# ---- a server of our own, spoken to in raw JSON-RPC -------------------------------------


class RawServer:
    """`airlock mcp serve code-sandbox` as a plain child: newline-delimited JSON-RPC 2.0 on stdio."""

    def __init__(self, log_name, args=SERVER_ARGS):
        self.log = open(os.path.join(WORK, log_name), "w")
        self.process = subprocess.Popen([AIRLOCK, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.log, env=SERVER_ENV, start_new_session=True)
        self.lines = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, message):
        self.process.stdin.write((json.dumps(message) + "\n").encode())
        self.process.stdin.flush()

    def request(self, method, params, timeout):
        self.next_id += 1
        request_id = self.next_id
        self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"no answer to {method} in {timeout} s")
            if line is None:
                raise EOFError(f"the server closed its stdout (exit status {self.process.poll()})")
            message = json.loads(line)
            if message.get("id") == request_id and ("result" in message or "error" in message):
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            if "method" in message and "id" in message:  # a request from the server: ping or unsupported
                reply = {"result": {}} if message["method"] == "ping" else {
                    "error": {"code": -32601, "message": "not supported by this test client"}}
                self.send({"jsonrpc": "2.0", "id": message["id"], **reply})

    def start(self):
        self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                    "clientInfo": {"name": "airlock-e2e-raw", "version": "1"}}, 120)
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def call(self, tool, arguments, timeout=CALL_S):
        result = self.request("tools/call", {"name": tool, "arguments": arguments}, timeout)
        return Result(result, 0)

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.log.close()


def raw_sandbox(server, label):
    """A sandbox from a raw server, with a marker process running inside; (id, marker) or None."""
    server.start()
    r = server.call("sandbox_initialize", {})
    sandbox_id = r.get("sandbox_id")
    if not check(f"{label}: sandbox_initialize over raw JSON-RPC", isinstance(sandbox_id, str) and sandbox_id,
                 repr(r)):
        return None
    created.add(sandbox_id)
    marker = 5000000 + random.randrange(1000000)
    r = server.call("exec_background", {"sandbox_id": sandbox_id, "command": f"sleep {marker}"})
    seen = wait_until(lambda: processes_with(f"sandboxes/{sandbox_id}/runc" if GVISOR else f"sleep {marker}"), 10)
    check(f"{label}: companion: the sandbox's process is visible on the host", bool(seen), repr(r))
    check(f"{label}: companion: the sandbox's state directory exists", os.path.isdir(state_dir(sandbox_id)),
          state_dir(sandbox_id))
    return sandbox_id, marker


def gone_after(label, before, sandbox_id, marker, within):
    """Checks that a server's sandboxes and their processes are gone."""
    procs = wait_until(lambda: not processes_with(f"sleep {marker}") and not processes_with(sandbox_id), within)
    check(f"{label}: within {within} s no process of the sandbox remains", procs,
          short(processes_with(f"sleep {marker}") + processes_with(sandbox_id)))
    airlock("ls")

    def swept():
        airlock("ls")
        return not os.path.exists(state_dir(sandbox_id)) and sandbox_id not in listed()

    check(f"{label}: after airlock ls its state directory is gone and ls does not list it",
          wait_until(swept, 10, 1), f"{state_dir(sandbox_id)} exists: {os.path.exists(state_dir(sandbox_id))}")
    leftovers = wait_until(lambda: not (listed() - before), 10, 1) or sorted(listed() - before)
    check(f"{label}: nothing else the server made is left (its pool too)", leftovers is True, repr(leftovers))


def raw_server_checks():
    print("== the client closes stdin: the server removes its sandboxes and exits", flush=True)
    before = listed()
    server = RawServer("server-eof-stderr.log")
    try:
        made = raw_sandbox(server, "stdin closed")
        if made:
            server.process.stdin.close()
            exited = wait_until(lambda: server.process.poll() is not None, 20)
            check("stdin closed: the server exits within 20 s", exited, "still running")
            gone_after("stdin closed", before, *made, within=10)
    except Exception as error:
        check("stdin closed: ran to the end", False, f"{type(error).__name__}: {short(str(error))}")
    finally:
        server.stop()

    print("== kill -9 of the server", flush=True)
    before = listed()
    server = RawServer("server-kill-stderr.log")
    try:
        made = raw_sandbox(server, "kill -9")
        if made:
            os.kill(server.process.pid, signal.SIGKILL)
            server.process.wait()
            gone_after("kill -9", before, *made, within=10)
    except Exception as error:
        check("kill -9: ran to the end", False, f"{type(error).__name__}: {short(str(error))}")
    finally:
        server.stop()


def idle_and_sigterm_checks():
    print("== --idle-timeout removes an idle sandbox; SIGTERM removes the rest", flush=True)
    before = listed()
    server = RawServer("server-idle-stderr.log", ["mcp", "serve", "code-sandbox", "--pool", "0", "--idle-timeout", "2"])
    try:
        server.start()
        idle = server.call("sandbox_initialize", {}, timeout=FIRST_START_S).get("sandbox_id")
        busy = server.call("sandbox_initialize", {}).get("sandbox_id")
        created.update(x for x in (idle, busy) if x)
        # One is used every half second for 5 s; the other is left alone for as long.
        for _ in range(10):
            server.call("sandbox_exec", {"sandbox_id": busy, "command": "true"})
            time.sleep(0.5)
        r = server.call("sandbox_exec", {"sandbox_id": idle, "command": "true"})
        check("idle: a sandbox unused past --idle-timeout is gone for the client",
              r.is_error and "no sandbox" in r.text, repr(r.raw))
        check("idle:   and its state directory is gone",
              wait_until(lambda: not os.path.exists(state_dir(idle)), 10), state_dir(idle))
        r = server.call("sandbox_exec", {"sandbox_id": busy, "command": "echo here"})
        expect("idle: companion: the sandbox in use stays", "here", (r.get("stdout") or "").strip())
        server.process.send_signal(signal.SIGTERM)
        check("SIGTERM: the server exits within 20 s", wait_until(lambda: server.process.poll() is not None, 20),
              "still running")
        check("SIGTERM: its sandboxes are removed",
              not os.path.exists(state_dir(busy)) and busy not in listed(), state_dir(busy))
        leftovers = wait_until(lambda: not (listed() - before), 10, 1) or sorted(listed() - before)
        check("SIGTERM: nothing else the server made is left", leftovers is True, repr(leftovers))
    except Exception as error:
        check("idle and SIGTERM: ran to the end", False, f"{type(error).__name__}: {short(str(error))}")
    finally:
        server.stop()


def show_log(name):
    path = os.path.join(WORK, name)
    try:
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return
    if lines:
        print(f"-- last lines of the server's stderr ({name}):")
        for line in lines[-25:]:
            print(f"   {line}")


def main():
    print(f"mcp client {_mcp_version()}, server: {AIRLOCK} {' '.join(SERVER_ARGS)}, AIRLOCK_HOME={AIRLOCK_HOME}",
          flush=True)
    answered = anyio.run(mcp_session)
    if answered:
        raw_server_checks()
        idle_and_sigterm_checks()
    else:
        check("raw JSON-RPC and kill -9 checks", False, "skipped: the server never answered")
    failed = totals["failed"]
    if failed:
        for name in ("server-stderr.log", "server-eof-stderr.log", "server-kill-stderr.log", "server-idle-stderr.log"):
            show_log(name)
    print(f"client: {totals['passed']} passed, {failed} failed", flush=True)
    return 1 if failed else 0


def _mcp_version():
    try:
        from importlib.metadata import version

        return version("mcp")
    except Exception:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
