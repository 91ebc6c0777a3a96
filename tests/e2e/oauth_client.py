#!/usr/bin/env python3
"""The checks of mcp-oauth.sh that need a running gateway: the real `mcp` client (PyPI) over
stdio to `airlock mcp gateway run --servers oauth-remote,time`, with the test's authorization
and MCP server on loopback (oauth_server.py).

Environment: AIRLOCK, OAUTH_WORK (the suite's directory: catalog.yaml, stats.json, gateway.log),
OAUTH_TTL (the access tokens' life in seconds).

It calls the OAuth server's tool, waits past the access token's life and calls again (the
gateway renews the token: the authorization server counts a refresh, and no call fails), looks
for every token the authorization server issued inside the time server's sandbox and in every
process's command line and environment, then revokes with `airlock mcp oauth revoke` while the
session is open, and expects the next call to give exactly the tool error that names the fix.
"""
import asyncio
import json
import os
import subprocess
import sys
import time

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from e2e_checks import check, expect, short

AIRLOCK = os.environ["AIRLOCK"]
WORK = os.environ["OAUTH_WORK"]
TTL = int(os.environ["OAUTH_TTL"])
CATALOG = os.path.join(WORK, "catalog.yaml")
REVOKED = ("server oauth-remote needs OAuth authorization (its OAuth token was revoked): "
           "run `airlock mcp oauth authorize oauth-remote`, then call the tool again")


def stats():
    with open(os.path.join(WORK, "stats.json")) as f:
        return json.load(f)


def failed(result):
    """A tool result's error flag (mcp 2.x names it is_error, 1.x isError)."""
    return getattr(result, "is_error", None) if hasattr(result, "is_error") else result.isError


def text(result):
    return "\n".join(getattr(block, "text", "") for block in result.content)


API_URL = f"https://api.oauth.test:{os.environ['OAUTH_API_PORT']}/api/whoami"


async def api_call(session):
    """The sandboxed server's GET of the API, its Authorization header holding $API_TOKEN."""
    result = await session.call_tool("http_get", {"url": API_URL, "header": "Authorization", "env": "API_TOKEN"})
    try:
        return json.loads(text(result))
    except ValueError:
        return {"error": text(result)}


def processes_holding(tokens):
    """PIDs of this user's processes whose command line or environment holds an issued token."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        for name in ("cmdline", "environ"):
            try:
                with open(f"/proc/{pid}/{name}", "rb") as f:
                    data = f.read()
            except OSError:
                continue
            if any(token.encode() in data for token in tokens):
                found.append(f"{pid}/{name}")
    return found


def in_sandbox(sandbox, tokens):
    """How many files (and process environments and command lines) in the sandbox hold a token;
    the tokens travel reversed on stdin, so the search's own command line holds none."""
    script = """
import os, sys
keys = [t[::-1].encode() for t in sys.stdin.read().split()]; me = str(os.getpid()); found = 0
for top in ("/", ):
    for root, dirs, files in os.walk(top):
        if root == "/":
            dirs[:] = [d for d in dirs if d not in ("sys", "dev")]
        if root == "/proc":
            dirs[:] = [d for d in dirs if d.isdigit() and d != me]; files = []
        elif root.startswith("/proc/"):
            dirs[:] = []; files = [f for f in files if f in ("environ", "cmdline")]
        for name in files:
            try:
                with open(os.path.join(root, name), "rb") as f:
                    data = f.read(4 << 20)
            except OSError:
                continue
            found += any(k in data for k in keys)
print(found)
"""
    r = subprocess.run([AIRLOCK, "exec", "-i", sandbox, "--", "python3", "-c", script],
                       input=" ".join(t[::-1] for t in tokens), capture_output=True, text=True, timeout=300)
    return r.stdout.strip() or f"exit {r.returncode}: {short(r.stderr)}"


async def main():
    log = open(os.path.join(WORK, "gateway.log"), "w")
    parameters = StdioServerParameters(
        command=AIRLOCK,
        args=["mcp", "gateway", "run", "--servers", "oauth-remote,time,gwt-oauth-local", "--catalog", CATALOG],
        env=dict(os.environ), cwd=WORK)
    async with stdio_client(parameters, errlog=log) as streams:
        async with ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            first = await session.call_tool("oauth_whoami", {})
            check("a tool of the OAuth server answers through the gateway with the token",
                  not failed(first) and "scopes mcp" in text(first) and "resource http://127.0.0.1" in text(first),
                  short(text(first)))
            env = json.loads(text(await session.call_tool("env", {})) or "{}")
            expect("the sandboxed server's API_TOKEN holds the proxy's placeholder, not the token",
                   "airlock-proxy-managed", env.get("API_TOKEN"))
            api = await api_call(session)
            expect("its call to the API carries the token its proxy put in (200)", 200, api.get("status"))
            before = stats()["refreshes"]
            await asyncio.sleep(TTL + 2)
            second = await session.call_tool("oauth_whoami", {})
            api = await api_call(session)
            expect("after the token's life the sandboxed server's API call works too (started again with the "
                   "renewed token)", 200, api.get("status"))
            check(f"after the access token's {TTL} s life the call still works", not failed(second),
                  short(text(second)))
            check("... because the gateway renewed the token with the refresh token (the server counts it)",
                  stats()["refreshes"] > before, f"{before} -> {stats()['refreshes']}")

            tokens = stats()["issued"]
            check("the authorization server issued tokens to look for", len(tokens) >= 4, len(tokens))
            check("no process's command line or environment holds a token", not processes_holding(tokens),
                  processes_holding(tokens))
            probe = "at-probe-" + os.urandom(8).hex()
            sleeper = subprocess.Popen(["sleep", "30"], env={"PROBE": probe})
            check("companion: the same search finds a token in a process's environment",
                  bool(processes_holding([probe])), "not found")
            sleeper.kill()
            listed = subprocess.run([AIRLOCK, "ls", "-q"], capture_output=True, text=True).stdout.split()
            sandboxes = [name for name in listed if name.startswith("mcp-time")]
            if check("the time server runs in a sandbox beside the remote server", bool(sandboxes), listed):
                expect("no file or process in the time server's sandbox holds a token", "0",
                       in_sandbox(sandboxes[0], tokens))
            local = [name for name in listed if name.startswith("mcp-gwt-oauth-local")]
            if check("the sandboxed OAuth server runs", bool(local), listed):
                expect("no file or process in the sandboxed OAuth server's own sandbox holds a token", "0",
                       in_sandbox(local[0], tokens))
                subprocess.run([AIRLOCK, "exec", "-i", sandboxes[0], "--", "sh", "-c", "cat > /tmp/probe"],
                               input=probe, text=True, capture_output=True, timeout=60)
                expect("companion: the same search finds a token planted in that sandbox's /tmp", "1",
                       in_sandbox(sandboxes[0], [probe]))

            r = subprocess.run([AIRLOCK, "mcp", "oauth", "revoke", "oauth-remote"], capture_output=True, text=True)
            check("oauth revoke, with the session open: exit 0, the server told",
                  r.returncode == 0 and "revoked" in r.stdout, short(r.stdout + r.stderr))
            check("the authorization server saw the revocation", bool(stats()["revocations"]), stats()["revocations"])
            third = await session.call_tool("oauth_whoami", {})
            check("the next call gives the tool error that names the fix, exactly",
                  failed(third) and text(third) == REVOKED, short(text(third)))
            r = subprocess.run([AIRLOCK, "mcp", "oauth", "revoke", "gwt-oauth-local"], capture_output=True, text=True)
            check("oauth revoke of the sandboxed server: exit 0", r.returncode == 0, short(r.stdout + r.stderr))
            fourth = await session.call_tool("http_get", {"url": API_URL, "header": "Authorization", "env": "API_TOKEN"})
            check("the sandboxed server's next call gives the tool error that names the fix",
                  failed(fourth) and text(fourth) == REVOKED.replace("oauth-remote", "gwt-oauth-local"),
                  short(text(fourth)))
            other = await session.call_tool("get_current_time", {"timezone": "UTC"})
            check("companion: the other server's tool still works", not failed(other), short(text(other)))
    log.close()
    with open(log.name) as f:
        gateway_log = f.read()
    check("the gateway's log holds no token", not any(t in gateway_log for t in tokens), short(gateway_log[-800:]))


if __name__ == "__main__":
    asyncio.run(main())
