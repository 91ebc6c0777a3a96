#!/usr/bin/env python3
"""End-to-end checks of `airlock mcp gateway run`, through the real MCP Python client.

Run by tests/e2e/gateway.sh in a venv holding the `mcp` package. Every transport is driven by
the real client (stdio, SSE at /sse, streamable HTTP at /mcp), against the real PyPI servers
time and git in their sandboxes and against tests/e2e/gateway_test_server.py, which a catalog
written here (YAML, `registry:`) runs in sandboxes of different reach: no network, allowHosts,
secrets of their own, a prefix, settings with a schema, a tool named like a gateway tool, one
that exits at once. The HTTP guards (token, Origin, Host) are probed with raw requests; each
refusal is checked next to a companion that shows the same probe working where it may. Also:
name clashes, prompts and resources, concurrent calls, the dynamic tools and profiles, a server
killed during a call, and every way a gateway ends (stdin closed, SIGTERM, SIGKILL), after
which no sandbox and no process of it may be left.

Prints one line per check, "ok - NAME" or "FAIL - NAME: detail"; exits 1 if any failed.
Environment: AIRLOCK (the binary), AIRLOCK_HOME (its state), GW_WORK (a scratch directory,
removed by the caller), GW_REPO (a git repository with one commit, GW_COMMIT its subject, and
the untracked file GW_UNTRACKED), GW_RUN (a word unique to this run), GW_UPSTREAM_PORT (an HTTP
echo server on host loopback), GW_DNS_PORT (a DNS server there that answers 127.0.0.1 and
logs each name to GW_DNS_LOG), GW_LISTEN_PORT (free: a TCP service the sandboxes must not
reach), GW_SSE_PORT, GW_STREAM_PORT, GW_KILL_PORT (free, for gateways), GW_REMOTE_PORT (free,
for a remote server on host loopback), GW_REMOTE_TOKEN (the value of the stored secret
gwt-remote.token, which that server demands as its bearer token), GW_HTTPS_PORT (the echo
server over TLS, its CA in AIRLOCK_UPSTREAM_CA_FILE) and GW_INJECT_KEY (the secret
gwt-inject.key, which gwt-inject's proxy injects).
"""

import contextlib
import http.client
import json
import os
import re
import secrets
import signal
import socket
import struct
import subprocess
import sys
import time
from datetime import datetime, timezone

import anyio
from e2e_checks import HostListener, check, expect, host_addresses, settle, short, totals, wait_until
from mcp import ClientSession, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client

AIRLOCK = os.environ.get("AIRLOCK", "airlock")
# Under gVisor (AIRLOCK_RUNTIME=runsc) a server is no host process: its sandbox's kernel is.
GVISOR = os.environ.get("AIRLOCK_RUNTIME") == "runsc"
AIRLOCK_HOME = os.environ["AIRLOCK_HOME"]
WORK = os.environ["GW_WORK"]
REPO = os.environ["GW_REPO"]
COMMIT = os.environ["GW_COMMIT"]
UNTRACKED = os.environ["GW_UNTRACKED"]
RUN = os.environ["GW_RUN"]
UPSTREAM_PORT = int(os.environ["GW_UPSTREAM_PORT"])
DNS_PORT = int(os.environ["GW_DNS_PORT"])
DNS_LOG = os.environ["GW_DNS_LOG"]
LISTEN_PORT = int(os.environ["GW_LISTEN_PORT"])
SSE_PORT = int(os.environ["GW_SSE_PORT"])
STREAM_PORT = int(os.environ["GW_STREAM_PORT"])
KILL_PORT = int(os.environ["GW_KILL_PORT"])
REMOTE_PORT = int(os.environ["GW_REMOTE_PORT"])
REMOTE_TOKEN = os.environ["GW_REMOTE_TOKEN"]  # stored as the secret gwt-remote.token
HTTPS_PORT = int(os.environ["GW_HTTPS_PORT"])  # the echo server over TLS (test CA: AIRLOCK_UPSTREAM_CA_FILE)
INJECT_KEY = os.environ["GW_INJECT_KEY"]  # stored as the secret gwt-inject.key
HERE = os.path.dirname(os.path.abspath(__file__))
CATALOG = os.path.join(WORK, "catalog.yaml")
MADE = os.path.join(WORK, "made.txt")  # every sandbox a gateway of ours owned, for the caller's cleanup
START_S = 300  # a gateway's first start may wait for the mcp-servers image
CALL_S = 60
UID = os.getuid()
HTTP_PROFILE = f"gwe2e-http-{RUN}"
# The gateway's own tools (without --servers).
DYNAMIC = {"mcp-find", "mcp-add", "mcp-remove", "mcp-config-set", "mcp-exec", "mcp-create-profile",
           "mcp-activate-profile"}
GATEWAY_TOOLS = DYNAMIC | {"code-mode"}  # code-mode: newer than this test, not checked here

# The gateways get the whole environment (AIRLOCK_HOME above all) and a configuration
# directory of their own: no catalog, profile or policy of the user's changes what they do.
CONFIG = os.path.join(WORK, "config")
BASE_ENV = dict(os.environ, XDG_CONFIG_HOME=CONFIG)
BASE_ENV.pop("AIRLOCK_MCP_TOKEN", None)
# For the isolation checks: names resolve through the test DNS server (to 127.0.0.1), which
# gwt-allow's catalog entry lets its proxy dial (allowCIDRs). The user's policy layer allows
# more (other.test, 127.0.0.1 and the host's address): a server without allowHosts gets that,
# gwt-allow must not.
ISO_CONFIG = os.path.join(WORK, "config-iso")
ISO_ENV = dict(BASE_ENV, XDG_CONFIG_HOME=ISO_CONFIG, AIRLOCK_DNS_SERVER=f"127.0.0.1:{DNS_PORT}")
DYN_CONFIG = os.path.join(WORK, "config-dyn")
DYN_ENV = dict(BASE_ENV, XDG_CONFIG_HOME=DYN_CONFIG)



# ---- the catalog ----------------------------------------------------------------------------


def marker(server):
    """The word on the test server's command line that finds its process on the host."""
    return f"gwe2e-{RUN}-{server}"


def write_catalog():
    """The test servers, as a user's catalog in YAML (the registry: format)."""
    with open(os.path.join(HERE, "gateway_test_server.py")) as f:
        script = f.read()
    block = "".join(("          " + line if line.strip() else "") + "\n" for line in script.splitlines())

    def command(name, first=False):
        script_item = "        - &script |\n" + block if first else "        - *script\n"
        return ("    command:\n        - /opt/mcp-servers/bin/python\n        - -c\n" + script_item
                + f"        - {name}\n        - {marker(name)}\n")

    entries = {
        "srva": "    description: Test server with the secret srva.token\n"
                "    secrets: [{name: srva.token, env: TOKEN}]\n",
        "srvb": "    description: Test server with the secret srvb.token\n"
                "    secrets: [{name: srvb.token, env: TOKEN}]\n",
        "gwt-nonet": "    description: Test server without network\n    disableNetwork: true\n",
        "gwt-allow": "    description: Test server that may reach allowed.test only\n"
                     "    allowHosts: [allowed.test]\n    allowCIDRs: [127.0.0.1/32]\n",
        "gwt-inject": "    description: Test server whose secret its proxy injects\n"
                      "    allowHosts: [allowed.test]\n    allowCIDRs: [127.0.0.1/32]\n"
                      "    secrets: [{name: gwt-inject.key, env: API_KEY, inject: {header: x-api-key}}]\n",
        "gwt-pfx": "    description: Test server whose tools get a prefix\n    disableNetwork: true\n    prefix: p\n",
        "gwt-conf": "    description: Test server with settings\n    disableNetwork: true\n"
                    "    env: [{name: GREETING, value: 'greeting={{gwt-conf.greeting}}'}]\n"
                    "    config:\n"
                    "      - name: gwt-conf\n"
                    "        type: object\n"
                    "        properties: {greeting: {type: string}, count: {type: integer}}\n"
                    "        required: [greeting]\n"
                    "        additionalProperties: false\n"
                    "    tools: [{name: whoami, description: Who this server is}]\n",
        "gwt-clash": "    description: Test server with a tool named like a gateway tool\n    disableNetwork: true\n",
    }
    remote_url = f"http://127.0.0.1:{REMOTE_PORT}/mcp"
    remotes = (f"  gwt-remote:\n    description: The test server over streamable HTTP, with its own token\n"
               f"    type: remote\n    remote:\n      url: {remote_url}\n      transport_type: streamable-http\n"
               "      headers: {Authorization: 'Bearer {{secret:gwt-remote.token}}'}\n"
               f"  gwt-remote-nokey:\n    description: The same remote server, without the token\n"
               f"    type: remote\n    remote: {{url: '{remote_url}'}}\n")
    broken = ("  gwt-broken:\n    description: A server that exits at once\n    template: mcp-servers\n"
              "    disableNetwork: true\n    command: [/opt/mcp-servers/bin/python, -c,\n"
              "      'import sys; print(\"broken on purpose\", file=sys.stderr); sys.exit(3)']\n")
    text = "# Test servers of tests/e2e/gateway.sh\nregistry:\n"
    for index, (name, rest) in enumerate(entries.items()):
        text += f"  {name}:\n    title: {name}\n    template: mcp-servers\n" + command(name, index == 0) + rest
    text += remotes + broken
    with open(CATALOG, "w") as f:
        f.write(text)
    for directory in (CONFIG, ISO_CONFIG, DYN_CONFIG):
        os.makedirs(os.path.join(directory, "airlock"), exist_ok=True)
    user_cidrs = ["127.0.0.1/32", *(address + "/32" for address in host_addresses()[:1])]
    with open(os.path.join(ISO_CONFIG, "airlock", "policy.yaml"), "w") as f:
        f.write("# what the user allows their agents: it must not widen gwt-allow's allowHosts\n"
                f"allowHosts: [other.test]\nallowCIDRs: [{', '.join(user_cidrs)}]\n")
    # A saved profile for the HTTP gateways (--profile), as mcp-create-profile writes them.
    os.makedirs(os.path.join(CONFIG, "airlock", "mcp-profiles"), exist_ok=True)
    with open(os.path.join(CONFIG, "airlock", "mcp-profiles", HTTP_PROFILE + ".json"), "w") as f:
        json.dump({"servers": ["time", "git"], "config": {}}, f)


# ---- the host side: sandboxes and processes -------------------------------------------------


def airlock(*args, env=None, timeout=120):
    return subprocess.run([AIRLOCK, *args], capture_output=True, text=True, timeout=timeout, env=env or BASE_ENV)


def listed():
    return set(airlock("ls", "-q").stdout.split())


def inspect(name):
    r = airlock("inspect", name)
    try:
        return json.loads(r.stdout) if r.returncode == 0 else None
    except ValueError:
        return None


def state_dir(name):
    return os.path.join(AIRLOCK_HOME, "sandboxes", name)


def owned_by(pid):
    """Names of the sandboxes whose owner is the process pid (a gateway's server sandboxes)."""
    names = set()
    for name in listed():
        if not name.startswith("mcp-"):
            continue
        record = inspect(name) or {}
        if ((record.get("disposable") or {}).get("owner") or {}).get("pid") == pid:
            names.add(name)
    if names:
        with open(MADE, "a") as f:
            f.write("".join(n + "\n" for n in sorted(names)))
    return names


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None


def my_pids():
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                if os.stat(f"/proc/{entry}").st_uid == UID:
                    yield int(entry)
            except OSError:
                pass


def parent_of(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def sandbox_processes(names):
    """Host processes of these sandboxes: their supervisors and init processes, whatever names
    them on its command line (runc exec of the server), and all their descendants; {pid: cmdline}."""
    seeds = set()
    for name in names:
        record = inspect(name) or {}
        seeds |= {pid for pid in (record.get("supervisorPID"), record.get("initPID")) if pid}
    lines, parents = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            line = cmdline(int(entry))
            if line is not None:
                lines[int(entry)] = line
                parents[int(entry)] = parent_of(int(entry))
    seeds |= {pid for pid, line in lines.items() if any(name in line for name in names)}
    found, grew = set(seeds) & set(lines), True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in found and pid not in found:
                found.add(pid)
                grew = True
    return {pid: lines[pid] for pid in found}


def still_running(processes):
    return {pid: line for pid, line in processes.items() if cmdline(pid) == line}


def server_processes(server):
    """The test server's interpreter(s) on the host, found by its marker: {pid: cmdline}. Under
    gVisor a server is no host process: its sandbox's kernel (runsc-sandbox) stands for it."""
    if GVISOR:
        return gvisor_kernels(f"mcp-{server}-")
    found = {}
    for pid in my_pids():
        line = cmdline(pid)
        if line and line.startswith("/opt/mcp-servers/bin/python") and marker(server) in line:
            found[pid] = line
    return found


def gvisor_kernels(prefix):
    """The runsc-sandbox processes of the sandboxes whose names start with prefix: {pid: cmdline}.
    They run as the sandbox's root, a subordinate id of this user's, not as this user."""
    found = {}
    for pid in [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]:
        line = cmdline(pid) or ""
        if line.startswith("runsc-sandbox ") and f"/sandboxes/{prefix}" in line:
            found[pid] = line
    return found


def children_of(parent, text):
    return [pid for pid in my_pids() if parent_of(pid) == parent and text in (cmdline(pid) or "")]


def gone_after(label, names, processes, within=20):
    """Checks that the sandboxes and their processes are gone (an `airlock ls` sweeps first)."""
    left = wait_until(lambda: not still_running(processes), within)
    check(f"{label}: within {within} s no process of the server sandboxes remains", left,
          short(still_running(processes)))

    def swept():
        airlock("ls")
        return not (names & listed()) and not [n for n in names if os.path.exists(state_dir(n))]

    check(f"{label}: airlock ls lists none of its sandboxes and their state directories are gone",
          wait_until(swept, 15, 1),
          f"listed: {sorted(names & listed())}, dirs: {[n for n in names if os.path.exists(state_dir(n))]}")


# ---- the MCP client side --------------------------------------------------------------------


class Result:
    def __init__(self, raw, elapsed):
        self.raw = raw
        self.elapsed = elapsed
        self.is_error = bool(raw.get("isError"))
        self.text = "\n".join(c.get("text", "") for c in raw.get("content") or [] if c.get("type") == "text")

    def json(self):
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    def __repr__(self):
        return short(self.raw, 600)

    def echo(self):
        """What the test upstream echoed, from an http_get result: {} when it answered nothing."""
        with contextlib.suppress(Exception):
            return json.loads((self.json() or {}).get("body") or "{}")
        return {}


async def call(session, tool, arguments=None, timeout=CALL_S):
    started = time.monotonic()
    try:
        with anyio.fail_after(timeout):
            result = await session.call_tool(tool, arguments or {})
    except TimeoutError:
        raise TimeoutError(f"no answer to {tool} in {timeout} s") from None
    return Result(result.model_dump(by_alias=True, mode="json"), time.monotonic() - started)


async def tool_names(session):
    with anyio.fail_after(CALL_S):
        return {tool.name for tool in (await session.list_tools()).tools}


async def alive(session):
    try:
        with anyio.fail_after(20):
            await session.send_ping()
        return True
    except Exception:
        return False


class Notes:
    """Notifications the client hears."""

    def __init__(self):
        self.methods = []

    async def __call__(self, message):
        method = getattr(message, "method", None) or getattr(getattr(message, "root", None), "method", None)
        if method:
            self.methods.append(method)

    def count(self, method):
        return self.methods.count(method)


@contextlib.asynccontextmanager
async def session_over(transport, *, args=None, env=None, url=None, token=None, notes=None, errlog=None):
    """An initialized ClientSession over stdio (a gateway it starts), SSE or streamable HTTP."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    handler = notes or Notes()
    if transport == "stdio":
        parameters = StdioServerParameters(command=AIRLOCK, args=["mcp", "gateway", "run", *args], env=env or BASE_ENV,
                                           cwd=WORK)
        context = stdio_client(parameters, errlog=errlog or sys.stderr)
    elif transport == "sse":
        context = sse_client(url, headers=headers)
    else:
        try:  # mcp >= 1.24 and 2.x
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            context = streamable_http_client(url, http_client=create_mcp_http_client(headers=headers))
        except ImportError:
            from mcp.client.streamable_http import streamablehttp_client

            context = streamablehttp_client(url, headers=headers)
    async with context as streams:
        async with ClientSession(streams[0], streams[1], message_handler=handler) as session:
            with anyio.fail_after(START_S):
                info = await session.initialize()
            session.info = info.model_dump(by_alias=True, mode="json")
            yield session


async def section(title, body, *args):
    """Runs one group of checks; an exception fails it without stopping the others."""
    print(f"== {title}", flush=True)
    started = time.monotonic()
    try:
        await body(*args)
    except Exception as error:
        check(f"{title}: ran to the end", False, f"{type(error).__name__}: {short(str(error))}")
    print(f"   ({time.monotonic() - started:.1f} s)", flush=True)


# ---- time and git over every transport ------------------------------------------------------


async def time_and_git(session, label):
    """The real PyPI servers time and git behind the gateway, through one client session."""
    names = await tool_names(session)
    want = {"get_current_time", "convert_time", "git_status", "git_log"}
    check(f"{label}: tools/list has the time and git tools", want <= names, f"missing {sorted(want - names)}")
    r = await call(session, "get_current_time", {"timezone": "UTC"})
    data = r.json() or {}
    when = None
    with contextlib.suppress(Exception):
        when = datetime.fromisoformat(data.get("datetime"))
    check(f"{label}: get_current_time(UTC) answers the current UTC time",
          not r.is_error and data.get("timezone") == "UTC" and when is not None
          and abs((when - datetime.now(timezone.utc)).total_seconds()) < 300, repr(r))
    r = await call(session, "convert_time", {"source_timezone": "UTC", "time": "12:00",
                                            "target_timezone": "Asia/Tokyo"})
    target = ((r.json() or {}).get("target") or {}).get("datetime", "")
    check(f"{label}: convert_time 12:00 UTC to Tokyo is 21:00", not r.is_error and "T21:00:00" in target, repr(r))
    r = await call(session, "git_log", {"repo_path": "/workspace"})
    check(f"{label}: git_log shows the test repository's commit", not r.is_error and COMMIT in r.text, repr(r))
    r = await call(session, "git_status", {"repo_path": "/workspace"})
    check(f"{label}: git_status shows the workspace's untracked file", not r.is_error and UNTRACKED in r.text,
          repr(r))


async def concurrency(session, label, slow_tool, same_server_tool, other_server_tool):
    """A call in progress does not hold up the next: other calls answer at once, in any order."""
    started = time.monotonic()
    done = {}

    async def timed(name, tool, arguments):
        r = await call(session, tool, arguments)
        done[name] = (time.monotonic() - started, r)

    async with anyio.create_task_group() as group:
        group.start_soon(timed, "slow", slow_tool, {"seconds": 4})
        await anyio.sleep(0.5)
        await timed("other", *other_server_tool)
        await timed("same", same_server_tool, {})
    slow_at, slow = done["slow"]
    check(f"{label}: companion: the slow call takes its 4 s", not slow.is_error and slow_at >= 4, repr(slow))
    for name, what in (("other", "another server's tool"), ("same", "the same server's next tool")):
        at, r = done[name]
        check(f"{label}: during a slow call, {what} answers at once (not after it)",
              not r.is_error and at < 3, f"answered after {at:.1f} s: {r!r}")


def gateway_pid_of_stdio_client():
    pids = children_of(os.getpid(), "gateway run")
    return pids[0] if pids else None


async def stdio_time_git():
    errlog = open(os.path.join(WORK, "gw-stdio.log"), "w")
    args = ["--servers", "time,git", "--workspace", REPO]
    try:
        async with session_over("stdio", args=args, errlog=errlog) as session:
            info = session.info
            expect("stdio: the gateway answers initialize as airlock-gateway", "airlock-gateway",
                   (info.get("serverInfo") or {}).get("name"))
            check("stdio: it offers tools with listChanged",
                  ((info.get("capabilities") or {}).get("tools") or {}).get("listChanged") is True, short(info))
            await time_and_git(session, "stdio")
            names = await tool_names(session)
            check("stdio: --servers pins the set: no mcp-* (or code-mode) tool is offered",
                  not [n for n in names if n.startswith("mcp-") or n in GATEWAY_TOOLS], sorted(names))
            r = await call(session, "mcp-add", {"name": "fetch"})
            check("stdio: with --servers, calling mcp-add is a tool error", r.is_error, repr(r))
            r = await call(session, "git_create_branch", {"repo_path": "/workspace", "branch_name": f"evil-{RUN}"})
            branches = subprocess.run(["git", "-C", REPO, "branch", "--list"], capture_output=True, text=True).stdout
            check("stdio: git cannot write to the read-only workspace (git_create_branch fails)",
                  r.is_error and f"evil-{RUN}" not in branches, f"{r!r}; branches: {branches!r}")
            r = await call(session, "git_branch", {"repo_path": "/workspace", "branch_type": "local"})
            check("stdio: companion: git_branch reads the same repository", not r.is_error and "main" in r.text,
                  repr(r))
            gateway = gateway_pid_of_stdio_client()
            names = owned_by(gateway) if gateway else set()
            check("stdio: the gateway runs time and git in sandboxes of their own (mcp-time-*, mcp-git-*)",
                  len(names) == 2 and {n.rsplit("-", 1)[0] for n in names} == {"mcp-time", "mcp-git"},
                  f"gateway {gateway}: {sorted(names)}")
            records = {n: inspect(n) or {} for n in names}
            git_box = [r for n, r in records.items() if n.startswith("mcp-git-")]
            time_box = [r for n, r in records.items() if n.startswith("mcp-time-")]
            check("stdio: git's sandbox mounts the workspace read-only and has no network",
                  bool(git_box) and git_box[0].get("network") == "none"
                  and [(m.get("source"), m.get("readOnly")) for m in git_box[0].get("mounts") or []]
                  == [(REPO, True)], short(git_box))
            check("stdio: time's sandbox mounts nothing and has no network",
                  bool(time_box) and time_box[0].get("network") == "none" and not time_box[0].get("mounts"),
                  short(time_box))
            processes = sandbox_processes(names)
            if GVISOR:
                # The servers run on their sandboxes' kernels, which are what the host sees.
                shown = len(names) == 2 and all(
                    any(line.startswith("runsc-sandbox ") and f"/sandboxes/{name}/" in line
                        for line in processes.values()) for name in names)
            else:
                shown = (any("mcp-server-time" in line for line in processes.values())
                         and any("mcp-server-git" in line for line in processes.values()))
            check("stdio: companion: the servers' processes are visible on the host", shown, short(processes))
    finally:
        errlog.close()
    if names:
        gone_after("stdio: after the client closes the session", names, processes)


# ---- HTTP -----------------------------------------------------------------------------------

INIT = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                   "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                              "clientInfo": {"name": "airlock-e2e-raw", "version": "1"}}})


def raw_http(port, method, path, headers=None, body=None, host=None, address="127.0.0.1", timeout=15):
    """(status, headers, body) of one request; Host defaults to 127.0.0.1:PORT."""
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host if host is not None else f"127.0.0.1:{port}")
        all_headers = dict(headers or {})
        if body is not None:
            all_headers.setdefault("Content-Type", "application/json")
            all_headers.setdefault("Accept", "application/json, text/event-stream")
            all_headers["Content-Length"] = str(len(body.encode()))
        for name, value in all_headers.items():
            conn.putheader(name, value)
        conn.endheaders(body.encode() if body is not None else None)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode(
            errors="replace")
    finally:
        conn.close()


def rpc(port, token, session_id, message_id, method, params=None):
    """One JSON-RPC request over the streamable transport; the decoded response."""
    headers = {"Authorization": f"Bearer {token}", "Mcp-Session-Id": session_id}
    status, _, body = raw_http(port, "POST", "/mcp", headers,
                               json.dumps({"jsonrpc": "2.0", "id": message_id, "method": method,
                                           "params": params or {}}), timeout=CALL_S)
    if status != 200:
        raise RuntimeError(f"{method}: HTTP {status}: {body}")
    return json.loads(body)


def raw_open_session(port, token):
    status, headers, body = raw_http(port, "POST", "/mcp", {"Authorization": f"Bearer {token}"}, INIT)
    session_id = headers.get("mcp-session-id")
    if status != 200 or not session_id:
        raise RuntimeError(f"initialize: HTTP {status} {headers} {body}")
    raw_http(port, "POST", "/mcp", {"Authorization": f"Bearer {token}", "Mcp-Session-Id": session_id},
             json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
    return session_id


class Gateway:
    """`airlock mcp gateway run` over HTTP, as a plain child process."""

    def __init__(self, log_name, args, env):
        self.log_path = os.path.join(WORK, log_name)
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen([AIRLOCK, "mcp", "gateway", "run", *args], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=self.log, env=env, cwd=WORK,
                                        start_new_session=True)
        self.pid = self.process.pid

    def text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def listening(self, timeout=START_S):
        """The 'listening on' line once it is there (None if the gateway ended or it took too long)."""
        def line():
            if self.process.poll() is not None:
                return "ended"
            return next((l for l in self.text().splitlines() if "listening on" in l), None)
        got = wait_until(line, timeout, 0.1)
        return None if got in (None, "ended") else got

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.log.close()


async def http_guards(port, token, endpoint, transport):
    """/health, the token, Origin and Host, probed with raw requests."""
    label = f"{transport}"
    auth = {"Authorization": f"Bearer {token}"}
    status, _, body = raw_http(port, "GET", "/health")
    check(f"{label}: GET /health without a token: 200 and status ok",
          status == 200 and (json.loads(body or "{}") or {}).get("status") == "ok", f"{status} {body!r}")
    status, _, body = raw_http(port, "GET", "/health", host="evil.example")
    expect(f"{label}: /health answers whatever the Host (a probe)", 200, status)
    if transport == "streaming":
        def probe(headers, host=None):
            return raw_http(port, "POST", endpoint, headers, INIT, host=host)[0]
    else:
        def probe(headers, host=None):  # only the refusals: an accepted GET /sse would stream
            return raw_http(port, "GET", endpoint, headers, host=host, timeout=5)[0]
    expect(f"{label}: {endpoint} without a token: 401", 401, probe({}))
    # `/` as in Docker's gateway: a 307 to the transport's endpoint, behind the same token.
    expect(f"{label}: POST / without a token: 401 (the redirect is no way around the token)", 401,
           raw_http(port, "POST", "/", body=INIT)[0])
    status, headers, _ = raw_http(port, "POST" if transport == "streaming" else "GET", "/", auth,
                                  INIT if transport == "streaming" else None)
    check(f"{label}: {'POST' if transport == 'streaming' else 'GET'} / with the token: 307 to {endpoint}",
          status == 307 and headers.get("location") == endpoint, f"{status} {headers}")
    if transport == "sse":
        expect("sse: POST /message without a token: 401", 401,
               raw_http(port, "POST", "/message?sessionId=x", body="{}")[0])
        expect("sse: POST /message with the token, of an unknown session: 404", 404,
               raw_http(port, "POST", "/message?sessionId=x", auth, body="{}")[0])
    expect(f"{label}: {endpoint} with a wrong token: 401", 401, probe({"Authorization": f"Bearer {token}x"}))
    expect(f"{label}: {endpoint} with the token as a query parameter only: 401", 401,
           raw_http(port, "POST" if transport == "streaming" else "GET", f"{endpoint}?token={token}",
                    body=INIT if transport == "streaming" else None, timeout=5)[0])
    expect(f"{label}: {endpoint} with the token and a foreign Origin: 403", 403,
           probe(dict(auth, Origin="http://evil.example")))
    expect(f"{label}: {endpoint} with the token and Origin http://localhost.evil.example: 403", 403,
           probe(dict(auth, Origin="http://localhost.evil.example")))
    expect(f"{label}: {endpoint} with the token and a foreign Host: 403", 403, probe(auth, host=f"evil.example:{port}"))
    expect(f"{label}: {endpoint} with the token and Host localhost.evil.example: 403", 403,
           probe(auth, host=f"localhost.evil.example:{port}"))
    if transport == "streaming":
        status, headers, body = raw_http(port, "POST", endpoint, dict(auth, Origin=f"http://localhost:{port}"), INIT,
                                         host=f"localhost:{port}")
        session_id = headers.get("mcp-session-id")
        check(f"{label}: companion: the token with a loopback Origin and Host localhost: 200 and a session",
              status == 200 and bool(session_id) and '"airlock-gateway"' in body, f"{status} {headers} {body!r}")
        if session_id:
            status = raw_http(port, "DELETE", endpoint, dict(auth, **{"Mcp-Session-Id": session_id}))[0]
            expect(f"{label}: DELETE ends that session", 200, status)
            status = raw_http(port, "POST", endpoint, dict(auth, **{"Mcp-Session-Id": session_id}),
                              json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))[0]
            expect(f"{label}: a request in the ended session: 404", 404, status)
        status = raw_http(port, "POST", endpoint, auth, json.dumps({"jsonrpc": "2.0", "id": 2,
                                                                    "method": "tools/list"}))[0]
        expect(f"{label}: a request without Mcp-Session-Id (not initialize): 400", 400, status)
    for address in host_addresses()[:2]:
        try:
            raw_http(port, "GET", "/health", address=address, timeout=3)
            reached = "answered"
        except OSError as error:
            reached = f"{type(error).__name__}"
        check(f"{label}: the gateway listens on loopback only: {address}:{port} does not answer",
              reached != "answered", reached)


def health_sessions(port):
    try:
        return json.loads(raw_http(port, "GET", "/health", timeout=5)[2]).get("sessions")
    except (OSError, ValueError) as error:
        return f"{type(error).__name__}: {error}"


async def sse_disconnect(port, token):
    """A client that closes its event stream ends its session at once (not at the next
    keep-alive, 15 s later)."""
    check("sse: /health counts no session once the client has left",
          await settle(lambda: health_sessions(port) == 0, 5), health_sessions(port))
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        conn.sendall(f"GET /sse HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\r\n"
                     .encode())
        head = conn.recv(1024).decode(errors="replace")
        expect("sse: companion: a raw event stream is one session in /health", 1, health_sessions(port))
    finally:
        conn.close()
    started = time.monotonic()
    ended = await settle(lambda: health_sessions(port) == 0, 2, interval=0.05)
    check("sse: closing the event stream ends the session within 2 s (keep-alives are 15 s apart)", ended,
          f"{health_sessions(port)} sessions after {time.monotonic() - started:.1f} s; {short(head)}")


async def through_root(port, token, transport):
    """The real client pointed at `http://127.0.0.1:PORT/`, as a client set up for Docker's
    gateway is: it follows the redirect and works."""
    async with session_over(transport, url=f"http://127.0.0.1:{port}/", token=token) as session:
        expect(f"{transport}: the real client initializes through / (the redirect)", "airlock-gateway",
               (session.info.get("serverInfo") or {}).get("name"))
        r = await call(session, "get_current_time", {"timezone": "UTC"})
        check(f"{transport}: a tool call through / works", not r.is_error and "UTC" in r.text, repr(r))


def docker_sse_post(port, token):
    """Docker's SSE path: the client's messages as `POST /sse?sessionid=ID`; the answer comes
    on the event stream. Returns (status of the POST, what the stream said)."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        conn.sendall(f"GET /sse HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\r\n"
                     .encode())
        seen = b""
        while b"sessionId=" not in seen or b"\n\n" not in seen.split(b"sessionId=", 1)[1]:
            chunk = conn.recv(4096)
            if not chunk:
                raise RuntimeError(f"the stream ended: {seen!r}")
            seen += chunk
        session_id = seen.split(b"sessionId=", 1)[1].split(b"\n", 1)[0].decode().strip()
        status = raw_http(port, "POST", f"/sse?sessionid={session_id}", {"Authorization": f"Bearer {token}"},
                          INIT)[0]
        seen = b""
        deadline = time.monotonic() + 15
        while b"airlock-gateway" not in seen and time.monotonic() < deadline:
            chunk = conn.recv(4096)
            if not chunk:
                break
            seen += chunk
        return status, seen.decode(errors="replace")
    finally:
        conn.close()


async def over_http(transport):
    port = SSE_PORT if transport == "sse" else STREAM_PORT
    endpoint = "/sse" if transport == "sse" else "/mcp"
    token = secrets.token_hex(16)
    args = ["--transport", transport, "--port", str(port), "--profile", HTTP_PROFILE, "--catalog", CATALOG,
            "--workspace", REPO]
    if transport == "sse":
        args.append("--long-lived")
    gateway = Gateway(f"gw-{transport}.log", args, dict(BASE_ENV, AIRLOCK_MCP_TOKEN=token))
    try:
        line = await anyio.to_thread.run_sync(gateway.listening)
        if not check(f"{transport}: the gateway listens", line is not None, short(gateway.text()[-1500:])):
            return
        check(f"{transport}: it says where, and that the token comes from AIRLOCK_MCP_TOKEN (not printed)",
              f"http://127.0.0.1:{port}{endpoint}" in line and "AIRLOCK_MCP_TOKEN" in line and token not in line,
              line)
        await http_guards(port, token, endpoint, transport)
        url = f"http://127.0.0.1:{port}{endpoint}"
        notes = Notes()
        async with session_over(transport, url=url, token=token, notes=notes) as session:
            expect(f"{transport}: the real client initializes over {endpoint} with the token", "airlock-gateway",
                   (session.info.get("serverInfo") or {}).get("name"))
            await time_and_git(session, f"{transport} (--profile with time and git)")
            r = await call(session, "mcp-add", {"name": "gwt-nonet"}, timeout=START_S)
            check(f"{transport}: mcp-add of a server from the --catalog", not r.is_error, repr(r))
            heard = await settle(lambda: notes.count("notifications/tools/list_changed") > 0, 10)
            check(f"{transport}: the client hears notifications/tools/list_changed over HTTP", heard, notes.methods)
            r = await call(session, "hello_gwt_nonet")
            expect(f"{transport}: the added server's tool works", "hello from gwt-nonet", r.text)
            await concurrency(session, transport, "slow", "whoami", ("get_current_time", {"timezone": "UTC"}))
        await through_root(port, token, transport)
        if transport == "sse":
            status, stream = await anyio.to_thread.run_sync(docker_sse_post, port, token)
            check("sse: POST /sse?sessionid=ID (Docker's path): 202, and the answer on the event stream",
                  status == 202 and '"airlock-gateway"' in stream, f"{status} {short(stream)}")
        names = owned_by(gateway.pid)
        processes = sandbox_processes(names)
        if transport == "sse":
            check("sse: --long-lived: the servers keep running after the client left", len(names) == 3, sorted(names))
            await sse_disconnect(port, token)
        else:
            check("streaming: the servers stop when the last client leaves (DELETE)",
                  await settle(lambda: not owned_by(gateway.pid), 20), sorted(owned_by(gateway.pid)))
            # A new client: the servers start again for its call; it stays connected.
            session_id = await anyio.to_thread.run_sync(raw_open_session, port, token)
            reply = await anyio.to_thread.run_sync(
                rpc, port, token, session_id, 2, "tools/call", {"name": "get_current_time",
                                                              "arguments": {"timezone": "UTC"}})
            result = reply.get("result") or {}
            check("streaming: a later client's call starts the server again (raw JSON-RPC)",
                  not result.get("isError") and "UTC" in json.dumps(result), short(reply))
            names = owned_by(gateway.pid)
            processes = sandbox_processes(names)
            check("streaming: companion: a server sandbox runs while that client is connected", bool(names),
                  sorted(names))
        gateway.process.send_signal(signal.SIGTERM)
        ended = await settle(lambda: gateway.process.poll() is not None, 30)
        check(f"{transport}: SIGTERM: the gateway exits within 30 s, status 0",
              ended and gateway.process.returncode == 0,
              f"status {gateway.process.poll()}")
        check(f"{transport}: SIGTERM: it says it removes the server sandboxes",
              "signal" in gateway.text() and "removing the server sandboxes" in gateway.text(),
              short(gateway.text()[-600:]))
        if names:
            gone_after(f"{transport}: after SIGTERM", names, processes)
    finally:
        gateway.stop()


# ---- isolation, secrets, name clashes, a crash ----------------------------------------------

ISO_SERVERS = ["srva", "srvb", "gwt-nonet", "gwt-allow", "gwt-pfx"]


async def isolation():
    listener = HostListener(port=LISTEN_PORT)
    errlog = open(os.path.join(WORK, "gw-iso.log"), "w")
    args = ["--servers", ",".join(ISO_SERVERS), "--catalog", CATALOG]
    names, processes = set(), {}
    try:
        async with session_over("stdio", args=args, env=ISO_ENV, errlog=errlog) as session:
            gateway = gateway_pid_of_stdio_client()
            names = owned_by(gateway) if gateway else set()
            check("isolation: each server has a sandbox of its own",
                  sorted(n.rsplit("-", 1)[0] for n in names) == sorted("mcp-" + s for s in ISO_SERVERS), sorted(names))
            processes = sandbox_processes(names)
            await clashes(session)
            await concurrency(session, "stdio", "gwt-nonet__slow", "gwt-nonet__whoami", ("srva__whoami", {}))
            await prompts_and_resources(session)
            await secrets_checks(session)
            await host_files(session)
            await no_network(session, listener)
            await allow_hosts(session, listener)
            await crash(session, gateway)
            names |= owned_by(gateway) if gateway else set()
            processes.update(sandbox_processes(names))
    finally:
        listener.close()
        errlog.close()
    if names:
        gone_after("isolation: after the client closes the session", names, processes)
    log = open(os.path.join(WORK, "gw-iso.log"), errors="replace").read()
    check("isolation: the gateway reported the name clashes on stderr",
          "name clash: tool 'whoami' is offered by" in log and "srva__whoami" in log
          and "name clash: prompt 'greet' is offered by" in log, short(log[-800:]))


async def clashes(session):
    names = await tool_names(session)
    print(f"   tools: {' '.join(sorted(names))}", flush=True)
    for server in ("srva", "srvb", "gwt-nonet", "gwt-allow"):
        check(f"clash: {server}'s whoami is offered as {server}__whoami", f"{server}__whoami" in names, sorted(names))
    check("clash: no tool is offered as plain whoami or env", not {"whoami", "env"} & names, sorted(names))
    got = {}
    for server in ("srva", "srvb"):
        r = await call(session, f"{server}__whoami")
        got[server] = (r.json() or {}).get("name")
    expect("clash: srva__whoami and srvb__whoami reach their own servers", {"srva": "srva", "srvb": "srvb"}, got)
    check("clash: companion: a tool only one server has keeps its name (hello_srva)",
          "hello_srva" in names and "srva__hello_srva" not in names, sorted(names))
    r = await call(session, "hello_srvb")
    expect("clash: hello_srvb answers from srvb", "hello from srvb", r.text)
    check("prefix: gwt-pfx (prefix: p) offers p__whoami and p__hello_gwt_pfx, nothing under its own name",
          {"p__whoami", "p__hello_gwt_pfx"} <= names and not [n for n in names if n.startswith("gwt-pfx")],
          sorted(names))
    r = await call(session, "p__whoami")
    expect("prefix: p__whoami reaches gwt-pfx", "gwt-pfx", (r.json() or {}).get("name"))


async def prompts_and_resources(session):
    with anyio.fail_after(CALL_S):
        prompts = [p.name for p in (await session.list_prompts()).prompts]
        resources = [str(r.uri) for r in (await session.list_resources()).resources]
    expect("prompts: each server's prompt greet is listed once, under a name of its own", len(ISO_SERVERS),
           len(set(prompts)))
    expect("prompts: named like tools: SERVER__greet on every side of the clash, p__greet for gwt-pfx (prefix)",
           sorted(["p__greet", *(f"{s}__greet" for s in ISO_SERVERS if s != "gwt-pfx")]), sorted(prompts))
    reached = []
    for name in prompts:
        with anyio.fail_after(CALL_S):
            result = (await session.get_prompt(name)).model_dump(mode="json")
        text = " ".join(str((m.get("content") or {}).get("text")) for m in result.get("messages") or [])
        reached.append(text.replace("greeting from ", ""))
    expect("prompts: prompts/get of each reaches its own server", sorted(ISO_SERVERS), sorted(reached))
    expect("resources: every server's resource is listed", sorted(f"test://{s}/info" for s in ISO_SERVERS),
           sorted(resources))
    texts = []
    for uri in sorted(resources):
        with anyio.fail_after(CALL_S):
            result = (await session.read_resource(uri)).model_dump(mode="json")
        texts += [c.get("text") for c in result.get("contents") or []]
    expect("resources: resources/read reaches the server that offers it",
           sorted(f"resource of {s}" for s in ISO_SERVERS), sorted(texts))


async def host_files(session):
    r = await call(session, "srva__listdir", {"path": "/opt/mcp-servers/bin"})
    check("host files: companion: listdir works inside (the image's /opt/mcp-servers/bin)",
          "python" in (r.json() or []), repr(r))
    for path in (WORK, REPO, os.path.expanduser("~"), AIRLOCK_HOME):
        r = await call(session, "srva__listdir", {"path": path})
        check(f"host files: a server without `workspace:` does not see {path}", r.text.startswith("failed"), repr(r))
    r = await call(session, "srva__listdir", {"path": "/workspace"})
    listing = r.json() if isinstance(r.json(), list) else []
    check("host files: its /workspace holds none of the gateway's workspace (the default: its cwd)",
          not {"catalog.yaml", "repo", "made.txt"} & set(listing) and not r.text.startswith("failed"), repr(r))


def environment_of(result):
    data = result.json()
    return data if isinstance(data, dict) else {}


async def secrets_checks(session):
    env_a = environment_of(await call(session, "srva__env"))
    env_b = environment_of(await call(session, "srvb__env"))
    env_n = environment_of(await call(session, "gwt-nonet__env"))
    check("secrets: companion: the env tool returns the servers' environments",
          bool(env_a) and bool(env_b) and "PATH" in env_a, short(env_a))
    expect("secrets: srva sees its secret srva.token (v1) in TOKEN", "v1", env_a.get("TOKEN"))
    check("secrets: srva does not see srvb's secret (v2) anywhere in its environment",
          "v2" not in env_a.values(), short(env_a))
    expect("secrets: srvb sees its secret srvb.token (v2) in TOKEN", "v2", env_b.get("TOKEN"))
    check("secrets: srvb does not see srva's secret (v1) anywhere in its environment",
          "v1" not in env_b.values(), short(env_b))
    check("secrets: a server without secrets sees neither", "TOKEN" not in env_n
          and not {"v1", "v2"} & set(env_n.values()), short(env_n))
    carriers = {pid: line for pid in my_pids() for line in [cmdline(pid) or ""]
                if "TOKEN=v1" in line or "TOKEN=v2" in line}
    check("secrets: no host process carries a secret on its command line (TOKEN=v1 / TOKEN=v2)", not carriers,
          short(carriers))
    check("secrets: no server gets the gateway's own environment (AIRLOCK_HOME, XDG_CONFIG_HOME)",
          not [k for e in (env_a, env_b, env_n) for k in e if k in ("AIRLOCK_HOME", "XDG_CONFIG_HOME",
                                                                   "AIRLOCK_DNS_SERVER")], short(env_a))


def dns_names():
    try:
        with open(DNS_LOG) as f:
            return f.read().split()
    except OSError:
        return []


def host_udp(port, name):
    """A DNS query from the host itself: the companion of the UDP probes."""
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    query = struct.pack(">HHHHHH", 7, 0x100, 1, 0, 0, 0) + labels + b"\x00\x00\x01\x00\x01"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    try:
        s.sendto(query, ("127.0.0.1", port))
        return "answered %d bytes" % len(s.recv(512))
    except OSError as e:
        return f"failed {e}"
    finally:
        s.close()


async def no_network(session, listener):
    server = "gwt-nonet"
    targets = ["127.0.0.1", *host_addresses()[:2]]
    for address in targets:
        r = await call(session, f"{server}__tcp", {"host": address, "port": listener.port})
        check(f"disableNetwork: TCP to the host's service on {address}:{listener.port} fails",
              r.text.startswith("failed"), repr(r))
    expect("disableNetwork: the host's service accepted no connection", 0, listener.accepted)
    with socket.create_connection(("127.0.0.1", listener.port), timeout=3) as conn:
        greeting = conn.recv(64).decode().strip()
    expect("disableNetwork: companion: the host's service answers on the host", "host-service", greeting)
    before = dns_names().count("allowed.test")
    r = await call(session, f"{server}__udp", {"host": "127.0.0.1", "port": DNS_PORT})
    check(f"disableNetwork: UDP to the host's DNS server (127.0.0.1:{DNS_PORT}) gets no answer",
          r.text.startswith("failed"), repr(r))
    r = await call(session, f"{server}__resolve", {"name": "allowed.test"})
    check("disableNetwork: DNS resolution of allowed.test fails", r.text.startswith("failed"), repr(r))
    expect("disableNetwork: the host's DNS server heard nothing from it", before, dns_names().count("allowed.test"))
    r = await call(session, f"{server}__http_get", {"url": f"http://allowed.test:{UPSTREAM_PORT}/from-nonet"})
    check("disableNetwork: HTTP to allowed.test fails (no proxy, no route)",
          (r.json() or {}).get("status") is None, repr(r))
    env = environment_of(await call(session, f"{server}__env"))
    check("disableNetwork: no proxy variables", not [k for k in env if k.lower().endswith("_proxy")], short(env))
    got = host_udp(DNS_PORT, "companion.test")
    check("disableNetwork: companion: the host's DNS server answers the host", got.startswith("answered"), got)


async def allow_hosts(session, listener):
    server = "gwt-allow"
    r = await call(session, f"{server}__http_get", {"url": f"http://allowed.test:{UPSTREAM_PORT}/from-allow"})
    data = r.json() or {}
    echo = r.echo()
    check("allowHosts: allowed.test is reached through the proxy (the upstream echoes the request)",
          data.get("status") == 200 and echo.get("path") == "/from-allow"
          and echo.get("host") == f"allowed.test:{UPSTREAM_PORT}", repr(r))
    r = await call(session, f"{server}__http_get", {"url": f"http://other.test:{UPSTREAM_PORT}/from-allow"})
    data = r.json() or {}
    check("allowHosts: other.test, which the user's policy.yaml allows, is refused: 403 from the proxy",
          data.get("status") == 403 and "Blocked by airlock network policy: other.test" in (data.get("body") or ""),
          repr(r))
    r = await call(session, f"{server}__http_get", {"url": f"https://other.test:{UPSTREAM_PORT + 3}/"})
    check("allowHosts: CONNECT to other.test is refused (403)", "403" in r.text, repr(r))
    r = await call(session, f"{server}__http_get", {"url": f"http://127.0.0.1:{UPSTREAM_PORT}/literal"})
    data = r.json() or {}
    check("allowHosts: an IP literal is no way around it (127.0.0.1 is the sandbox's own loopback)",
          data.get("status") != 200, repr(r))
    host_address = (host_addresses() or ["(none)"])[0]
    accepted = listener.accepted
    r = await call(session, f"{server}__http_get", {"url": f"http://{host_address}:{listener.port}/literal"})
    data = r.json() or {}
    check(f"allowHosts: the host's address {host_address}, which the user's policy.yaml allows (allowCIDRs), "
          "is refused: 403 from the proxy",
          data.get("status") == 403 and "Blocked by airlock network policy" in (data.get("body") or ""), repr(r))
    expect("allowHosts: and the host's service accepted nothing", accepted, listener.accepted)
    r = await call(session, f"{server}__resolve", {"name": "allowed.test"})
    check("allowHosts: allowed.test resolves inside (to a synthetic address)", r.text.startswith("resolved"), repr(r))
    r = await call(session, f"{server}__resolve", {"name": "other.test"})
    check("allowHosts: other.test does not resolve inside", r.text.startswith("failed"), repr(r))
    names = dns_names()
    check("allowHosts: the host's DNS server was asked for allowed.test and never for other.test",
          "allowed.test" in names and "other.test" not in names, short(names))
    accepted = listener.accepted
    for address in ["127.0.0.1", *host_addresses()[:2]]:
        r = await call(session, f"{server}__tcp", {"host": address, "port": listener.port})
        check(f"allowHosts: direct TCP to the host's service on {address}:{listener.port} fails",
              r.text.startswith("failed"), repr(r))
    expect("allowHosts: the host's service accepted no connection", accepted, listener.accepted)
    r = await call(session, "srva__http_get", {"url": f"http://allowed.test:{UPSTREAM_PORT}/from-srva"})
    check("allowHosts: another server's policy is its own: srva (no allowHosts) is refused allowed.test",
          (r.json() or {}).get("status") == 403, repr(r))
    # Companions: a server without allowHosts gets the user's policy, so the probes above work.
    r = await call(session, "srva__http_get", {"url": f"http://other.test:{UPSTREAM_PORT}/from-srva"})
    check("allowHosts: companion: srva (the user's policy) reaches other.test", (r.json() or {}).get("status") == 200,
          repr(r))
    accepted = listener.accepted
    await call(session, "srva__http_get", {"url": f"http://{host_address}:{listener.port}/from-srva"})
    expect(f"allowHosts: companion: srva's request for {host_address} reaches the host's service",
           accepted + 1, listener.accepted)


async def crash(session, gateway):
    server = "gwt-nonet"
    before = (await call(session, f"{server}__whoami")).json() or {}
    sandboxes_before = owned_by(gateway)
    old_box = {n for n in sandboxes_before if n.startswith(f"mcp-{server}-")}
    found = server_processes(server)
    if not check("crash: companion: the server's process is found on the host by its marker", len(found) == 1,
                 short(found)):
        return
    pid = next(iter(found))
    outcome = {}

    async def slow_call():
        outcome["result"] = await call(session, f"{server}__slow", {"seconds": 60}, timeout=90)

    async with anyio.create_task_group() as group:
        group.start_soon(slow_call)
        await anyio.sleep(1.5)  # the call is under way
        os.kill(pid, signal.SIGKILL)
    r = outcome.get("result")
    check("crash: the call in progress ends in a tool error (isError) soon after the kill",
          r is not None and r.is_error and r.elapsed < 30, repr(r) + (f" after {r.elapsed:.1f} s" if r else ""))
    check("crash: the error says the server ended", r is not None and "ended" in r.text, repr(r))
    check("crash: the gateway stays up (ping, tools/list)", await alive(session) and
          f"{server}__whoami" in await tool_names(session))
    after = await call(session, f"{server}__whoami")
    check("crash: the next call succeeds, answered by a restarted server",
          not after.is_error and (after.json() or {}).get("instance") not in (None, before.get("instance")),
          f"before {before}, after {after!r}")
    now = owned_by(gateway)
    check("crash: the crashed server's sandbox is gone and a new one runs",
          not (old_box & now) and len([n for n in now if n.startswith(f"mcp-{server}-")]) == 1,
          f"old {sorted(old_box)}, now {sorted(now)}")


# ---- dynamic tools --------------------------------------------------------------------------

def only_gateway_tools(names):
    return DYNAMIC <= names and names <= GATEWAY_TOOLS


async def dynamic():
    notes = Notes()
    errlog = open(os.path.join(WORK, "gw-dyn.log"), "w")
    profile = f"gwe2e-{RUN}"
    names, processes = set(), {}
    try:
        async with session_over("stdio", args=["--catalog", CATALOG], env=DYN_ENV, notes=notes,
                                errlog=errlog) as session:
            gateway = gateway_pid_of_stdio_client()
            listing = await tool_names(session)
            check("dynamic: without --servers tools/list holds exactly the gateway's tools (mcp-*)",
                  only_gateway_tools(listing), sorted(listing))
            check("dynamic: and no server runs yet", not owned_by(gateway), "")
            r = await call(session, "mcp-find", {"query": "time"})
            found = [s.get("name") for s in (r.json() or {}).get("servers") or []]
            check("mcp-find: 'time' finds the time server first", found[:1] == ["time"], repr(r))
            r = await call(session, "mcp-find", {"query": "zone conversion"})
            found = [s.get("name") for s in (r.json() or {}).get("servers") or []]
            check("mcp-find: 'zone conversion' finds time by its description", "time" in found, repr(r))
            r = await call(session, "mcp-find", {"query": "settings"})
            found = [s.get("name") for s in (r.json() or {}).get("servers") or []]
            check("mcp-find: searches the user's catalog too ('settings' finds gwt-conf)", "gwt-conf" in found, repr(r))

            heard = notes.count("notifications/tools/list_changed")
            r = await call(session, "mcp-add", {"name": "time"}, timeout=START_S)
            check("mcp-add time: added, with its tools", not r.is_error and {"get_current_time", "convert_time"}
                  <= set((r.json() or {}).get("tools") or []), repr(r))
            got = await settle(lambda: notes.count("notifications/tools/list_changed") > heard, 10)
            check("mcp-add: the client receives notifications/tools/list_changed", got, f"heard {notes.methods}")
            listing = await tool_names(session)
            check("mcp-add: tools/list now has time's tools next to the gateway's",
                  {"get_current_time", "convert_time"} | DYNAMIC <= listing, sorted(listing))
            r = await call(session, "get_current_time", {"timezone": "UTC"})
            check("mcp-add: the new tool works", not r.is_error and '"UTC"' in r.text, repr(r))
            r = await call(session, "mcp-exec", {"name": "convert_time", "arguments": {
                "source_timezone": "UTC", "time": "06:30", "target_timezone": "Asia/Tokyo"}})
            check("mcp-exec calls a server's tool by name", not r.is_error and "T15:30:00" in r.text, repr(r))
            names |= owned_by(gateway)
            processes.update(sandbox_processes(names))

            heard = notes.count("notifications/tools/list_changed")
            r = await call(session, "mcp-remove", {"name": "time"})
            check("mcp-remove time: removed", not r.is_error, repr(r))
            got = await settle(lambda: notes.count("notifications/tools/list_changed") > heard, 10)
            check("mcp-remove: the client receives notifications/tools/list_changed", got, f"heard {notes.methods}")
            listing = await tool_names(session)
            check("mcp-remove: tools/list no longer has time's tools",
                  not {"get_current_time", "convert_time"} & listing, sorted(listing))
            r = await call(session, "get_current_time", {"timezone": "UTC"})
            check("mcp-remove: calling a removed tool is an error", r.is_error, repr(r))
            check("mcp-remove: time's sandbox is gone",
                  await settle(lambda: not [n for n in owned_by(gateway) if n.startswith("mcp-time-")], 15),
                  sorted(owned_by(gateway)))
            r = await call(session, "mcp-add", {"name": "no-such-server"})
            check("mcp-add of a server not in the catalogs is a tool error", r.is_error, repr(r))

            for bad, why in (({"greeting": 5}, "a number where a string belongs"),
                             ({"count": 1}, "without the required greeting"),
                             ({"greeting": "x", "colour": "red"}, "with an unknown setting")):
                r = await call(session, "mcp-config-set", {"server": "gwt-conf", "config": bad})
                check(f"mcp-config-set {why} is rejected", r.is_error and "schema" in r.text, repr(r))
            greeting = f"hello-{RUN}"
            r = await call(session, "mcp-config-set", {"server": "gwt-conf",
                                                       "config": {"greeting": greeting, "count": 2}})
            check("mcp-config-set with a valid config is accepted", not r.is_error, repr(r))
            r = await call(session, "mcp-add", {"name": "gwt-conf"}, timeout=START_S)
            check("mcp-add gwt-conf", not r.is_error and "whoami" in ((r.json() or {}).get("tools") or []), repr(r))
            env = environment_of(await call(session, "env"))
            expect("mcp-config-set: the server starts with the setting in its environment", f"greeting={greeting}",
                   env.get("GREETING"))

            running = (await call(session, "whoami")).json() or {}
            r = await call(session, "mcp-config-set", {"server": "gwt-conf", "config": {"greeting": greeting + "-2"}})
            env = environment_of(await call(session, "env"))
            after = (await call(session, "whoami")).json() or {}
            check("mcp-config-set of a running server: its next call gets a restarted server with the new setting",
                  not r.is_error and env.get("GREETING") == f"greeting={greeting}-2"
                  and after.get("instance") not in (None, running.get("instance")), f"{r!r} {env.get('GREETING')}")
            await call(session, "mcp-config-set", {"server": "gwt-conf", "config": {"greeting": greeting}})

            before_broken = owned_by(gateway)
            r = await call(session, "mcp-add", {"name": "gwt-broken"}, timeout=START_S)
            check("mcp-add of a server that exits at once: a tool error with its stderr",
                  r.is_error and "did not start" in r.text and "broken on purpose" in r.text, repr(r))
            check("  it leaves no sandbox, and the set is as before", owned_by(gateway) == before_broken
                  and "hello_gwt_conf" in await tool_names(session), sorted(owned_by(gateway)))

            r = await call(session, "mcp-add", {"name": "gwt-clash"}, timeout=START_S)
            listing = await tool_names(session)
            check("a server's tool named like a gateway tool is offered as SERVER__mcp-find",
                  "gwt-clash__mcp-find" in listing and "mcp-find" in listing, sorted(listing))
            r = await call(session, "gwt-clash__mcp-find", {"query": "x"})
            expect("  and reaches the server's tool", "the server's own mcp-find", r.text)
            r = await call(session, "mcp-find", {"query": "time"})
            check("  while mcp-find stays the gateway's", "servers" in (r.json() or {}), repr(r))
            check("two added servers offering whoami: gwt-conf__whoami and gwt-clash__whoami",
                  {"gwt-conf__whoami", "gwt-clash__whoami"} <= listing and "whoami" not in listing, sorted(listing))

            r = await call(session, "mcp-create-profile", {"name": profile})
            saved = {}
            with contextlib.suppress(Exception):
                saved = json.load(open(os.path.join(DYN_CONFIG, "airlock", "mcp-profiles", profile + ".json")))
            check("mcp-create-profile saves the enabled servers and their settings",
                  not r.is_error and saved.get("servers") == ["gwt-conf", "gwt-clash"]
                  and (saved.get("config") or {}).get("gwt-conf", {}).get("greeting") == greeting,
                  f"{r!r}; saved {saved}")
            for server in ("gwt-conf", "gwt-clash"):
                await call(session, "mcp-remove", {"name": server})
            names |= owned_by(gateway)
            listing = await tool_names(session)
            check("after mcp-remove of both, only the gateway's tools are left", only_gateway_tools(listing),
                  sorted(listing))
            heard = notes.count("notifications/tools/list_changed")
            r = await call(session, "mcp-activate-profile", {"name": profile}, timeout=START_S)
            check("mcp-activate-profile enables the profile's servers",
                  not r.is_error and (r.json() or {}).get("servers") == ["gwt-conf", "gwt-clash"], repr(r))
            listing = await tool_names(session)
            check("mcp-activate-profile: their tools are back",
                  {"gwt-conf__env", "gwt-clash__whoami", "hello_gwt_conf"} <= listing, sorted(listing))
            check("mcp-activate-profile: the client heard tools/list_changed",
                  await settle(lambda: notes.count("notifications/tools/list_changed") > heard, 10), notes.methods)
            env = environment_of(await call(session, "gwt-conf__env"))
            expect("mcp-activate-profile: with the profile's settings", f"greeting={greeting}", env.get("GREETING"))
            r = await call(session, "mcp-activate-profile", {"name": f"no-such-profile-{RUN}"})
            check("mcp-activate-profile of an unknown profile is a tool error", r.is_error, repr(r))
            names |= owned_by(gateway)
            processes.update(sandbox_processes(names))
    finally:
        errlog.close()
    if names:
        gone_after("dynamic: after the client closes the session", names, processes)
    # The profile from another process: `tools ls --profile`.
    r = airlock("mcp", "tools", "ls", "--profile", profile, "--catalog", CATALOG, env=DYN_ENV)
    check("--profile: `airlock mcp tools ls --profile` lists the saved profile's tools",
          r.returncode == 0 and "gwt-conf__env" in r.stdout and "gwt-clash__mcp-find" in r.stdout,
          f"status {r.returncode}: {short(r.stdout)} {short(r.stderr)}")
    default_config = os.path.join(WORK, "config-default")
    os.makedirs(os.path.join(default_config, "airlock", "mcp-profiles"), exist_ok=True)
    with open(os.path.join(DYN_CONFIG, "airlock", "mcp-profiles", profile + ".json")) as f:
        saved = json.load(f)
    saved["servers"] = ["gwt-conf"]
    with open(os.path.join(default_config, "airlock", "mcp-profiles", "default.json"), "w") as f:
        json.dump(saved, f)
    r = airlock("mcp", "tools", "call", "env", "--catalog", CATALOG, env=dict(DYN_ENV, XDG_CONFIG_HOME=default_config))
    env = {}
    with contextlib.suppress(ValueError):
        env = json.loads(r.stdout)
    check("the profile named default is the starting set without --servers or --profile (tools call env reaches "
          "gwt-conf)", r.returncode == 0 and str(env.get("AIRLOCK_SANDBOX", "")).startswith("mcp-gwt-conf-"),
          f"status {r.returncode}: {short(r.stdout)} {short(r.stderr)}")
    expect("  with the profile's settings (GREETING)", f"greeting={greeting}", env.get("GREETING"))
    r = airlock("mcp", "tools", "call", "gwt-conf__env", "--profile", profile, "--catalog", CATALOG, env=DYN_ENV)
    env = {}
    with contextlib.suppress(ValueError):
        env = json.loads(r.stdout)
    expect("--profile starts the servers with the profile's settings too (GREETING)", f"greeting={greeting}",
           env.get("GREETING"))


# ---- stopping: stdin closed, SIGKILL --------------------------------------------------------


class RawStdio:
    """A gateway on stdio spoken to in newline-delimited JSON-RPC."""

    def __init__(self, args, env, log_name):
        self.log = open(os.path.join(WORK, log_name), "w")
        self.process = subprocess.Popen([AIRLOCK, "mcp", "gateway", "run", *args], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.log, env=env, cwd=WORK,
                                        start_new_session=True)
        self.next_id = 0

    def request(self, method, params, timeout=START_S):
        self.next_id += 1
        self.process.stdin.write((json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method,
                                              "params": params}) + "\n").encode())
        self.process.stdin.flush()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise EOFError(f"the gateway closed its stdout (status {self.process.poll()})")
            message = json.loads(line)
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
        raise TimeoutError(method)

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.log.close()


def stdin_closed():
    print("== the client closes stdin", flush=True)
    gateway = RawStdio(["--servers", "time,gwt-nonet", "--catalog", CATALOG], BASE_ENV, "gw-eof.log")
    try:
        gateway.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                       "clientInfo": {"name": "airlock-e2e-raw", "version": "1"}})
        gateway.process.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        result = gateway.request("tools/call", {"name": "whoami", "arguments": {}}, CALL_S)
        check("stdin: a raw JSON-RPC client calls a test server's tool", "gwt-nonet" in json.dumps(result),
              short(result))
        names = owned_by(gateway.process.pid)
        processes = sandbox_processes(names)
        check("stdin: companion: two server sandboxes and their processes run", len(names) == 2
              and bool(server_processes("gwt-nonet")), f"{sorted(names)} {short(processes)}")
        gateway.process.stdin.close()
        ended = wait_until(lambda: gateway.process.poll() is not None, 30)
        check("stdin: the gateway exits by itself within 30 s, status 0", ended and gateway.process.returncode == 0,
              f"status {gateway.process.poll()}")
        gone_after("stdin: after stdin closed", names, processes)
        check("stdin: pgrep finds no test server process of it", not server_processes("gwt-nonet"),
              short(server_processes("gwt-nonet")))
    except Exception as error:
        check("stdin: ran to the end", False, f"{type(error).__name__}: {short(str(error))}")
    finally:
        gateway.stop()


def sigkill():
    print("== SIGKILL of the gateway (HTTP, a token it makes itself)", flush=True)
    gateway = Gateway("gw-kill.log", ["--transport", "streaming", "--port", str(KILL_PORT), "--servers",
                                      "time,gwt-pfx", "--catalog", CATALOG], BASE_ENV)
    try:
        line = gateway.listening()
        if not check("sigkill: the gateway listens", line is not None, short(gateway.text()[-1500:])):
            return
        found = re.search(r"Authorization: Bearer ([0-9a-f]{32,})", line)
        if not check("sigkill: without AIRLOCK_MCP_TOKEN it prints a token it made", found is not None, line):
            return
        token = found.group(1)
        expect("sigkill: a wrong token is refused: 401", 401,
               raw_http(KILL_PORT, "POST", "/mcp", {"Authorization": "Bearer " + "0" * len(token)}, INIT)[0])
        session_id = raw_open_session(KILL_PORT, token)
        reply = rpc(KILL_PORT, token, session_id, 2, "tools/call", {"name": "p__whoami", "arguments": {}})
        check("sigkill: companion: the printed token works (initialize, tools/call)",
              "gwt-pfx" in json.dumps(reply), short(reply))
        names = owned_by(gateway.pid)
        # Under gVisor the server's sandbox kernel may still be renaming itself (runsc-sandbox)
        # on a loaded host: a few seconds for the probe to see it.
        seen = wait_until(lambda: server_processes("gwt-pfx"), 10)
        processes = sandbox_processes(names)
        check("sigkill: companion: two server sandboxes and their processes run",
              len(names) == 2 and bool(seen), f"{sorted(names)} {short(processes)}")
        os.kill(gateway.pid, signal.SIGKILL)
        gateway.process.wait()
        gone_after("sigkill: after SIGKILL of the gateway", names, processes, within=30)
        check("sigkill: pgrep finds no test server process of it", not server_processes("gwt-pfx"),
              short(server_processes("gwt-pfx")))
    except Exception as error:
        check("sigkill: ran to the end", False, f"{type(error).__name__}: {short(str(error))}")
    finally:
        gateway.stop()


# ---- a secret its proxy injects --------------------------------------------------------------


async def injected_secret():
    errlog = open(os.path.join(WORK, "gw-inject.log"), "w")
    args = ["--servers", "gwt-inject", "--catalog", CATALOG]
    url = f"https://allowed.test:{HTTPS_PORT}/echo"
    try:
        async with session_over("stdio", args=args, env=ISO_ENV, errlog=errlog) as session:
            env = environment_of(await call(session, "env"))
            expect("inject: the server's API_KEY holds the placeholder", "airlock-proxy-managed", env.get("API_KEY"))
            r = await call(session, "http_get", {"url": url, "header": "x-api-key", "env": "API_KEY"})
            check("inject: an HTTPS request with the placeholder in x-api-key reaches allowed.test with the real "
                  "key (its proxy put it in)", (r.echo().get("headers") or {}).get("x-api-key") == INJECT_KEY,
                  repr(r))
            r = await call(session, "http_get", {"url": url, "header": "x-other", "env": "API_KEY"})
            expect("inject: only in that header: x-other arrives with the placeholder", "airlock-proxy-managed",
                   (r.echo().get("headers") or {}).get("x-other"))
            r = await call(session, "find_text", {"text": INJECT_KEY})
            expect("inject: the real key is nowhere in the sandbox (environments, command lines, files)", [],
                   r.json())
            r = await call(session, "find_text", {"text": "airlock-proxy-managed"})
            check("inject: companion: the same search finds the placeholder", bool(r.json()), repr(r))
            gateway = gateway_pid_of_stdio_client()
            boxes = sorted(owned_by(gateway)) if gateway else []
            log = airlock("network", "log", boxes[0], "--json", env=ISO_ENV).stdout if boxes else ""
            check("inject: the server's network log names the injected secret, not its value",
                  '"gwt-inject.key"' in log and INJECT_KEY not in log, short(log[-400:]))
    finally:
        errlog.close()


# ---- a remote server -------------------------------------------------------------------------


def refused_by_remote():
    try:
        return int(raw_http(REMOTE_PORT, "GET", "/refused", timeout=5)[2])
    except (OSError, ValueError) as error:
        return f"{type(error).__name__}: {error}"


async def remote():
    """gwt-remote (type: remote): the test server over streamable HTTP on host loopback, which
    demands the bearer token the gateway fills in from the secret gwt-remote.token."""
    server_log = open(os.path.join(WORK, "gw-remote-server.log"), "w")
    server = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "gateway_test_server.py"), "gwt-remote", marker("gwt-remote"), "--http",
         str(REMOTE_PORT)], env=dict(BASE_ENV, REMOTE_TOKEN=REMOTE_TOKEN), stdout=subprocess.PIPE,
        stderr=server_log, text=True)
    errlog = open(os.path.join(WORK, "gw-remote.log"), "w")
    try:
        expect("remote: the test server is up (host loopback, streamable HTTP)", "ready",
               server.stdout.readline().strip())
        wait_until(lambda: isinstance(refused_by_remote(), int), 20)
        expect("remote: companion: it refuses a request without the token", 401,
               raw_http(REMOTE_PORT, "POST", "/mcp", body="{}")[0])
        refused = refused_by_remote()
        args = ["--servers", "gwt-remote,gwt-nonet", "--catalog", CATALOG]
        async with session_over("stdio", args=args, errlog=errlog) as session:
            names = await tool_names(session)
            check("remote: its tools are listed with the sandboxed server's, clashes renamed "
                  "(gwt-remote__whoami, gwt-nonet__whoami, hello_gwt_remote)",
                  {"gwt-remote__whoami", "gwt-nonet__whoami", "hello_gwt_remote"} <= names, sorted(names))
            r = await call(session, "gwt-remote__whoami")
            expect("remote: gwt-remote__whoami is answered by the remote server", "gwt-remote",
                   (r.json() or {}).get("name"))
            r = await call(session, "hello_gwt_remote")
            expect("remote: hello_gwt_remote too", "hello from gwt-remote", r.text)
            r = await call(session, "gwt-nonet__whoami")
            expect("remote: companion: gwt-nonet__whoami is answered by the sandboxed server", "gwt-nonet",
                   (r.json() or {}).get("name"))
            gateway = gateway_pid_of_stdio_client()
            boxes = owned_by(gateway) if gateway else set()
            expect("remote: it has no sandbox (only gwt-nonet has one)", ["mcp-gwt-nonet"],
                   sorted(n.rsplit("-", 1)[0] for n in boxes))
        expect("remote: every request the gateway sent carried the token from the secret (none refused)", refused,
               refused_by_remote())
        out = airlock("mcp", "tools", "ls", "--servers", "gwt-remote-nokey", "--catalog", CATALOG)
        check("remote: without the header the server refuses the gateway: tools ls exits non-zero, "
              "saying HTTP 401", out.returncode != 0 and "401" in out.stderr, short(out.stderr))
        check("remote: companion: that request reached the server and was refused there",
              isinstance(refused, int) and refused_by_remote() > refused, refused_by_remote())
    finally:
        server.terminate()
        server.wait(timeout=10)
        server_log.close()
        errlog.close()
    log = open(os.path.join(WORK, "gw-remote.log"), errors="replace").read()
    check("remote: the token is nowhere in the gateway's log", REMOTE_TOKEN not in log, short(log[-400:]))


# ---- main -----------------------------------------------------------------------------------


async def mcp_checks():
    await section("stdio with the real client: time and git", stdio_time_git)
    await section("SSE with the real client (--long-lived), then SIGTERM", over_http, "sse")
    await section("streamable HTTP with the real client, then SIGTERM", over_http, "streaming")
    await section("isolation, secrets, name clashes and a crash (a user catalog)", isolation)
    await section("dynamic tools", dynamic)
    await section("a remote server (streamable HTTP, a header from its secret)", remote)
    await section("a secret its proxy injects (inject:)", injected_secret)


def show_logs():
    for name in sorted(os.listdir(WORK)):
        if not name.startswith("gw-") or not name.endswith(".log"):
            continue
        with open(os.path.join(WORK, name), errors="replace") as f:
            lines = f.read().splitlines()
        if lines:
            print(f"-- last lines of {name}:")
            for line in lines[-15:]:
                print(f"   {line}")


def version(package):
    try:
        from importlib.metadata import version as v
        return v(package)
    except Exception:
        return "unknown"


def main():
    print(f"mcp client {version('mcp')}, gateway {AIRLOCK}, AIRLOCK_HOME={AIRLOCK_HOME}", flush=True)
    write_catalog()
    started = time.monotonic()
    anyio.run(mcp_checks)
    stdin_closed()
    sigkill()
    failed = totals["failed"]
    if failed:
        show_logs()
    print(f"client: {totals['passed']} passed, {failed} failed ({time.monotonic() - started:.0f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
