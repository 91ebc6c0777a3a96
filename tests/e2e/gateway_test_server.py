"""A small MCP server for the gateway's end-to-end tests (tests/e2e/gateway.sh).

Runs inside a gateway server sandbox with the image's Python (the `mcp-servers` template's
/opt/mcp-servers/bin/python, which has the `mcp` package):

  python gateway_test_server.py NAME MARKER      (or python -c "$(cat this file)" NAME MARKER)

or on the host, as a remote server over streamable HTTP (see serve_http):

  REMOTE_TOKEN=... python gateway_test_server.py NAME MARKER --http PORT

NAME is the server's catalog name, MARKER a word unique to the test run, there only so that
the test can find the process on the host (pgrep -f MARKER). Every instance offers the same
tools and the prompt greet (so that two servers clash), a resource test://NAME/info, and
hello_NAME, a tool only this one has; a server whose NAME ends in -clash also has a tool named
mcp-find, like the gateway's own. A random id made at start tells a restarted server from the
one before.
"""

import asyncio
import json
import os
import socket
import struct
import sys
import urllib.error
import urllib.request
import uuid

try:  # mcp 2.x
    from mcp.server.mcpserver import MCPServer as Server
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import FastMCP as Server

NAME = sys.argv[1] if len(sys.argv) > 1 else "test"
INSTANCE = uuid.uuid4().hex[:12]
server = Server(NAME)


@server.tool(description="This server's catalog name, the id of this run of it, its uid, gid and directory, as JSON.")
def whoami() -> str:
    return json.dumps(
        {"name": NAME, "instance": INSTANCE, "uid": os.getuid(), "gid": os.getgid(), "cwd": os.getcwd()}
    )


@server.tool(description="The server's environment, as JSON.")
def env() -> str:
    return json.dumps(dict(os.environ))


def hello() -> str:
    return "hello from " + NAME


server.tool(name="hello_" + NAME.replace("-", "_"), description="A tool no other server has.")(hello)


def own_mcp_find(query: str = "") -> str:
    return "the server's own mcp-find"


if NAME.endswith("-clash"):  # a tool named like one of the gateway's own
    server.tool(name="mcp-find", description="Not the gateway's mcp-find.")(own_mcp_find)


@server.tool(description="The names in a directory of the server's sandbox, as JSON.")
def listdir(path: str) -> str:
    try:
        return json.dumps(sorted(os.listdir(path)))
    except Exception as e:
        return "failed %s: %s" % (type(e).__name__, e)


@server.resource("test://%s/info" % NAME)
def info() -> str:
    return "resource of " + NAME


@server.prompt(name="greet", description="A prompt every test server has.")
def greet() -> str:
    return "greeting from " + NAME


@server.tool(description="Sleeps, then answers (for killing the server during a call); other calls go on.")
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "slept %s" % seconds


@server.tool(description="Connects over TCP and reads a line.")
def tcp(host: str, port: int) -> str:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect((host, port))
        return "connected " + s.recv(64).decode(errors="replace").strip()
    except Exception as e:
        return "failed %s: %s" % (type(e).__name__, e)
    finally:
        s.close()


@server.tool(description="Sends a DNS query over UDP and waits for an answer.")
def udp(host: str, port: int) -> str:
    query = struct.pack(">HHHHHH", 0x1234, 0x100, 1, 0, 0, 0) + b"\x07allowed\x04test\x00\x00\x01\x00\x01"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    try:
        s.sendto(query, (host, port))
        return "answered %d bytes" % len(s.recv(512))
    except Exception as e:
        return "failed %s: %s" % (type(e).__name__, e)
    finally:
        s.close()


@server.tool(description="Resolves a name with the sandbox's resolver.")
def resolve(name: str) -> str:
    try:
        return "resolved " + " ".join(sorted({a[4][0] for a in socket.getaddrinfo(name, 80)}))
    except Exception as e:
        return "failed %s: %s" % (type(e).__name__, e)


@server.tool(description="GET a URL (through HTTP_PROXY when one is set); status and body as JSON.")
def http_get(url: str, header: str = "", env: str = "") -> str:
    """With header and env: sends that header with the value of that environment variable."""
    try:
        request = urllib.request.Request(url, headers={header: os.environ.get(env, "")} if header else {})
        response = urllib.request.urlopen(request, timeout=10)
        return json.dumps({"status": response.status, "body": response.read(600).decode(errors="replace")})
    except urllib.error.HTTPError as e:
        return json.dumps({"status": e.code, "body": e.read(600).decode(errors="replace")})
    except Exception as e:
        return json.dumps({"status": None, "body": "%s: %s" % (type(e).__name__, e)})


def serve_http(port):
    """Streamable HTTP at http://127.0.0.1:PORT/mcp, as a remote server the gateway dials.
    Every request must carry "Authorization: Bearer $REMOTE_TOKEN"; any other gets 401, and
    GET /refused tells how many did."""
    import uvicorn

    app = server.streamable_http_app()
    expected = ("Bearer " + os.environ["REMOTE_TOKEN"]).encode()
    refused = [0]

    async def reply(send, status, body):
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def guarded(scope, receive, send):
        if scope["type"] == "http":
            if scope["path"] == "/refused":
                return await reply(send, 200, str(refused[0]).encode())
            if dict(scope["headers"]).get(b"authorization") != expected:
                refused[0] += 1
                return await reply(send, 401, b"a bearer token is needed")
        await app(scope, receive, send)

    print("ready", flush=True)
    uvicorn.run(guarded, host="127.0.0.1", port=port, log_level="warning")


@server.tool(description="Where TEXT occurs: processes' environments and command lines, and files.")
def find_text(text: str) -> str:
    needle, found = text.encode(), []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        for part in ("environ", "cmdline"):
            try:
                with open(f"/proc/{pid}/{part}", "rb") as f:
                    if needle in f.read():
                        found.append(f"/proc/{pid}/{part}")
            except OSError:
                pass
    for top in ("/etc", "/home", "/root", "/tmp", "/var", "/workspace", "/run"):
        for directory, _, files in os.walk(top):
            for name in files:
                path = os.path.join(directory, name)
                try:
                    if os.path.isfile(path) and os.path.getsize(path) < 1 << 20:
                        with open(path, "rb") as f:
                            if needle in f.read():
                                found.append(path)
                except OSError:
                    pass
    return json.dumps(found)


if __name__ == "__main__":
    if len(sys.argv) > 4 and sys.argv[3] == "--http":
        serve_http(int(sys.argv[4]))
    else:
        server.run()
