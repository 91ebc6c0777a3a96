#!/usr/bin/env python3
"""An MCP server image, through the real `mcp` client: run by tests/e2e/images.sh in a venv.

    image_mcp_client.py gateway CATALOG SERVER MARKER
        `$AIRLOCK mcp gateway run --catalog CATALOG --servers SERVER` over stdio: lists the
        tools of the server (which runs from the catalog's `image:`) and calls whoami and env.
    image_mcp_client.py code-sandbox IMAGE [REFUSED...]
        `$AIRLOCK mcp serve code-sandbox --pool 0` over stdio: sandbox_initialize {image},
        then a command in it, then sandbox_stop; then sandbox_initialize with each REFUSED
        image (a host path, an image not pulled), whose errors it reports.

Prints one JSON object with what it saw (the shell script checks it); exits 1 on an error.
"""

import json
import os
import sys

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

AIRLOCK = os.environ.get("AIRLOCK", "airlock")
CALL_S = 300  # the first call may pull and prepare the image


def text_of(result):
    return "".join(getattr(part, "text", "") for part in result.content)


async def session_with(args, work):
    parameters = StdioServerParameters(command=AIRLOCK, args=args, env=dict(os.environ), cwd=work)
    return stdio_client(parameters, errlog=sys.stderr)


async def gateway(catalog, server, marker):
    seen = {}
    context = await session_with(["mcp", "gateway", "run", "--catalog", catalog, "--servers", server], "/tmp")
    async with context as (read, write), ClientSession(read, write) as session:
        with anyio.fail_after(CALL_S):
            await session.initialize()
            tools = await session.list_tools()
        seen["tools"] = sorted(tool.name for tool in tools.tools)
        with anyio.fail_after(CALL_S):
            seen["whoami"] = json.loads(text_of(await session.call_tool("whoami", {})))
            environment = json.loads(text_of(await session.call_tool("env", {})))
        seen["env"] = {key: environment.get(key) for key in ("MCP_MODE", "HOME", "USER", "FROM_CATALOG")}
    seen["marker"] = marker
    return seen


async def code_sandbox(image, *refused):
    seen = {}
    context = await session_with(["mcp", "serve", "code-sandbox", "--pool", "0"], "/tmp")
    async with context as (read, write), ClientSession(read, write) as session:
        with anyio.fail_after(CALL_S):
            await session.initialize()
            started = await session.call_tool("sandbox_initialize", {"image": image})
        if getattr(started, "is_error", None) or getattr(started, "isError", None):  # mcp 2.x, 1.x
            raise RuntimeError("sandbox_initialize: " + text_of(started))
        sandbox = json.loads(text_of(started))
        seen["initialize"] = {key: sandbox.get(key) for key in ("image", "template", "workdir")}
        with anyio.fail_after(CALL_S):
            ran = await session.call_tool("sandbox_exec", {
                "sandbox_id": sandbox["sandbox_id"],
                "command": 'id -un; echo "$MCP_MODE"; python3 -c "print(6 * 7)"; pwd; echo written > f && cat f',
            })
            result = json.loads(text_of(ran))
            seen["exec"] = {"stdout": result.get("stdout", "").split("\n"), "exit_code": result.get("exit_code")}
            await session.call_tool("sandbox_stop", {"sandbox_id": sandbox["sandbox_id"]})
        seen["refused"] = []
        for other in refused:
            with anyio.fail_after(CALL_S):
                result = await session.call_tool("sandbox_initialize", {"image": other})
            failed = getattr(result, "is_error", None) or getattr(result, "isError", None)
            seen["refused"].append(text_of(result) if failed else "accepted")
    return seen


def main():
    mode = sys.argv[1]
    if mode == "gateway":
        seen = anyio.run(gateway, *sys.argv[2:5])
    elif mode == "code-sandbox":
        seen = anyio.run(code_sandbox, *sys.argv[2:])
    else:
        sys.exit("usage: image_mcp_client.py gateway CATALOG SERVER MARKER | code-sandbox IMAGE")
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
