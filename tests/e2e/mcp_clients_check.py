#!/usr/bin/env python3
"""The checks of mcp-clients.sh: `airlock mcp client connect|disconnect|ls` against each
client's real settings file, and the real Claude Code using what connect wrote.

  mcp_clients_check.py WORK

Environment: AIRLOCK (the binary), CLAUDE (Claude Code's binary from the claude-agent-sdk
wheel), GW_PORT (a free loopback port for an HTTP gateway).

For each client and scope: a settings file as its users have them (other servers, other
settings, comments where the client allows them) gets the gateway's entry, and still parses with
a parser of the client's format (json, json5 for the JSONC files, tomllib) with every other
entry as it was; the entry has the shape the client's documentation gives; a --url entry holds
the token's variable and never the token; disconnect gives back the file byte for byte.
"""
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import tomllib

import json5

from e2e_checks import check, expect, short, totals, wait_until

AIRLOCK = os.environ["AIRLOCK"]
CLAUDE = os.environ["CLAUDE"]
GW_PORT = int(os.environ["GW_PORT"])
WORK = sys.argv[1]
HOME = os.path.join(WORK, "home")
PROJECT = os.path.join(WORK, "project")
TOKEN = "gw-token-" + secrets.token_hex(12)
URL = f"http://127.0.0.1:{GW_PORT}/mcp"


def env(**extra):
    base = {"HOME": HOME, "PATH": os.environ["PATH"], "LANG": "C.UTF-8",
            "AIRLOCK_HOME": os.environ.get("AIRLOCK_HOME", os.path.join(HOME, ".airlock"))}
    base.update(extra)
    return base


def airlock(*args, **extra):
    return subprocess.run([AIRLOCK, "mcp", "client", *args], capture_output=True, text=True, env=env(**extra),
                          cwd=PROJECT, timeout=60)


# ---- each client's real settings file, its parser, and the entry its docs give ----------------

STRICT, JSONC, TOML = "json", "jsonc", "toml"

FIXTURES = {
    ("claude-code", "global"): (".claude.json", STRICT, json.dumps({
        "numStartups": 12, "theme": "dark",
        "projects": {"/home/dev/app": {"allowedTools": [], "mcpServers": {}}},
        "mcpServers": {"github": {"type": "http", "url": "https://api.githubcopilot.com/mcp/",
                                  "headers": {"Authorization": "Bearer ${GITHUB_PAT}"}}},
    }, indent=2) + "\n"),
    ("claude-code", "project"): (".mcp.json", STRICT, json.dumps({
        "mcpServers": {"fs": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "."]}},
    }, indent=2) + "\n"),
    ("claude-desktop", "global"): (".config/Claude/claude_desktop_config.json", STRICT, json.dumps({
        "globalShortcut": "Ctrl+Space",
        "mcpServers": {"memory": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"]}},
    }, indent=2) + "\n"),
    ("cursor", "global"): (".cursor/mcp.json", STRICT, json.dumps({
        "mcpServers": {"linear": {"url": "https://mcp.linear.app/sse"}},
    }, indent=2) + "\n"),
    ("cursor", "project"): (".cursor/mcp.json", STRICT, json.dumps({
        "mcpServers": {"db": {"command": "uvx", "args": ["mcp-server-sqlite", "--db-path", "app.db"],
                              "env": {"LOG": "1"}}},
    }, indent=2) + "\n"),
    ("vscode", "global"): (".config/Code/User/mcp.json", JSONC, """{
\t// Copilot's MCP servers
\t"inputs": [
\t\t{"type": "promptString", "id": "gh-token", "description": "GitHub token", "password": true}
\t],
\t"servers": {
\t\t"github": {"type": "http", "url": "https://api.githubcopilot.com/mcp/",
\t\t\t"headers": {"Authorization": "Bearer ${input:gh-token}"}},
\t}
}
"""),
    ("vscode", "project"): (".vscode/mcp.json", JSONC, """{
  "servers": {
    // the repo's own tool server
    "playwright": {"type": "stdio", "command": "npx", "args": ["@playwright/mcp@latest"]}
  }
}
"""),
    ("gemini", "global"): (".gemini/settings.json", JSONC, """{
  // Gemini CLI settings
  "general": {"vimMode": true},
  "ui": {"theme": "GitHub"},
  "mcpServers": {
    "fs": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/srv"], "trust": false},
  },
  "mcp": {"allowed": ["fs", "airlock"]} /* policy, not servers */
}
"""),
    ("gemini", "project"): (".gemini/settings.json", JSONC, """{
  "mcpServers": {}
}
"""),
    ("kiro", "global"): (".kiro/settings/mcp.json", STRICT, json.dumps({
        "mcpServers": {"aws-docs": {"command": "uvx", "args": ["awslabs.aws-documentation-mcp-server@latest"],
                                    "env": {"FASTMCP_LOG_LEVEL": "ERROR"}, "disabled": False, "autoApprove": []}},
    }, indent=2) + "\n"),
    ("kiro", "project"): (".kiro/settings/mcp.json", STRICT, json.dumps({
        "mcpServers": {"fetch": {"command": "uvx", "args": ["mcp-server-fetch"], "disabled": True}},
    }, indent=2) + "\n"),
    ("codex", "global"): (".codex/config.toml", TOML, """model = "o3"
approval_policy = "on-request"

# documentation server
[mcp_servers.docs]
command = "npx"
args = ["-y", "docs-mcp"]

[mcp_servers.docs.env]
DOCS_KEY = "from-env"

[profiles.fast]
model = "o4-mini"
instructions = '''
[mcp_servers.airlock]
a multi-line string, not a table
'''
"""),
    ("codex", "project"): (".codex/config.toml", TOML, """[mcp_servers.local]
command = "python3"
args = ["-m", "local_server"]
"""),
    ("opencode", "global"): (".config/opencode/opencode.json", JSONC, """{
  "$schema": "https://opencode.ai/config.json",
  // the user's theme
  "theme": "opencode",
  "mcp": {
    "sentry": {"type": "remote", "url": "https://mcp.sentry.dev/mcp", "oauth": {}}
  }
}
"""),
    ("opencode", "project"): ("opencode.jsonc", JSONC, """{
  "$schema": "https://opencode.ai/config.json",
  "mcp": {
    "everything": {"type": "local", "command": ["npx", "-y", "@modelcontextprotocol/server-everything"],
                   "enabled": true}, // trailing comma below
  },
}
"""),
    ("zed", "global"): (".config/zed/settings.json", JSONC, """// Zed settings
{
  "theme": "One Dark",
  "vim_mode": true,
  "context_servers": {
    "postgres": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-postgres"], "env": {}}
  },
}
"""),
    ("zed", "project"): (".zed/settings.json", JSONC, """{
  "tab_size": 4 // the project's own
}
"""),
}

SERVERS_KEY = {"vscode": "servers", "opencode": "mcp", "zed": "context_servers", "codex": "mcp_servers"}
STDIO_ARGS = ["mcp", "gateway", "run", "--servers", "time"]


def parse(kind, text):
    if kind == STRICT:
        return json.loads(text)
    if kind == JSONC:
        return json5.loads(text)
    return tomllib.loads(text)


def stdio_entry_ok(client, entry):
    """The stdio entry as the client's documentation gives it."""
    command_ok = lambda c: isinstance(c, str) and os.path.basename(c) == "airlock"
    if client == "opencode":
        return (entry.get("type") == "local" and isinstance(entry.get("command"), list)
                and command_ok(entry["command"][0]) and entry["command"][1:] == STDIO_ARGS
                and "args" not in entry and entry.get("enabled") is True)
    ok = command_ok(entry.get("command")) and entry.get("args") == STDIO_ARGS
    if client in ("claude-code", "vscode"):
        ok = ok and entry.get("type") == "stdio"
    if client == "kiro":
        ok = ok and entry.get("disabled") is False
    return ok


def url_entry_ok(client, entry, document):
    auth = (entry.get("headers") or {}).get("Authorization")
    if client == "claude-code":
        return entry.get("type") == "http" and entry.get("url") == URL and auth == "Bearer ${AIRLOCK_MCP_TOKEN}"
    if client == "cursor":
        return entry.get("url") == URL and auth == "Bearer ${env:AIRLOCK_MCP_TOKEN}"
    if client == "vscode":
        inputs = [i for i in document.get("inputs", []) if i.get("id") == "airlock-mcp-token"]
        return (entry.get("type") == "http" and entry.get("url") == URL and auth == "Bearer ${input:airlock-mcp-token}"
                and len(inputs) == 1 and inputs[0].get("password") is True and inputs[0].get("type") == "promptString")
    if client == "gemini":
        return entry.get("url") == URL and entry.get("type") == "http" and auth == "Bearer ${AIRLOCK_MCP_TOKEN}"
    if client == "kiro":
        return entry.get("url") == URL and auth == "Bearer ${AIRLOCK_MCP_TOKEN}"
    if client == "codex":
        return entry.get("url") == URL and entry.get("bearer_token_env_var") == "AIRLOCK_MCP_TOKEN" and "command" not in entry
    if client == "opencode":
        return (entry.get("type") == "remote" and entry.get("url") == URL and auth == "Bearer {env:AIRLOCK_MCP_TOKEN}"
                and entry.get("oauth") is False)
    return False


def without_ours(client, document, before):
    """The document less what connect adds: the entry (and its map if it made it), VS Code's input."""
    copy = json.loads(json.dumps(document))
    key = SERVERS_KEY.get(client, "mcpServers")
    copy.get(key, {}).pop("airlock", None)
    if key not in before and copy.get(key) == {}:
        del copy[key]
    if client == "vscode" and "inputs" in copy:
        copy["inputs"] = [i for i in copy["inputs"] if i.get("id") != "airlock-mcp-token"]
    return copy


def one_client(client, scope):
    relative, kind, original = FIXTURES[(client, scope)]
    path = os.path.join(HOME if scope == "global" else PROJECT, relative)
    where = ["--global"] if scope == "global" else ["--project", PROJECT]
    label = f"{client} ({scope}, {relative})"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(original)
    before = parse(kind, original)
    key = SERVERS_KEY.get(client, "mcpServers")

    r = airlock("connect", client, *where, "--servers", "time", "--json")
    if not check(f"{label}: connect exits 0", r.returncode == 0, short(r.stderr)):
        return
    text = open(path).read()
    try:
        after = parse(kind, text)
    except Exception as error:  # noqa: BLE001 - any parser's error fails the check
        check(f"{label}: the file still parses as {kind}", False, f"{error}: {short(text)}")
        return
    check(f"{label}: the file still parses as {kind}", True)
    entry = (after.get(key) or {}).get("airlock") or {}
    check(f"{label}: the stdio entry has the client's shape ({key}.airlock)", stdio_entry_ok(client, entry),
          short(entry))
    if kind == TOML:
        check(f"{label}: every other table and key is as it was", without_ours(client, after, before) == before,
              short(after))
    else:
        expect(f"{label}: every other entry and setting is as it was", before, without_ours(client, after, before))
    if kind == JSONC:
        comments = re.findall(r"//[^\n]*|/\*.*?\*/", original)
        check(f"{label}: the comments are all still there", all(c in text for c in comments), short(text))

    listed = airlock("ls", "--project", PROJECT, "--json")
    rows = json.loads(listed.stdout or "[]")
    row = next((x for x in rows if x["client"] == client and x["scope"] == scope), {})
    check(f"{label}: ls shows it connected, with its command", row.get("connected") is True
          and "gateway run --servers time" in (row.get("entry") or ""), short(row))

    if client not in ("claude-desktop", "zed"):
        r = airlock("connect", client, *where, "--url", URL, AIRLOCK_MCP_TOKEN=TOKEN)
        text = open(path).read()
        after = parse(kind, text)
        entry = (after.get(key) or {}).get("airlock") or {}
        check(f"{label}: connect --url replaces the entry with the URL and the token's variable",
              r.returncode == 0 and url_entry_ok(client, entry, after), short(r.stderr) + " " + short(entry))
        check(f"{label}: the token itself is in no line of the file", TOKEN not in text)
    else:
        r = airlock("connect", client, *where, "--url", URL)
        check(f"{label}: connect --url is refused in one line (exit 5), the file unchanged",
              r.returncode == 5 and len(r.stderr.strip().splitlines()) == 1 and open(path).read() == text,
              f"{r.returncode} {short(r.stderr)}")

    r = airlock("disconnect", client, *where)
    check(f"{label}: disconnect gives back the file byte for byte", r.returncode == 0 and open(path).read() == original,
          f"{r.returncode} {short(r.stderr)} {short(open(path).read())}")
    os.remove(path)


def fresh_files():
    """connect into no file, then disconnect: the file and the directories it made are gone."""
    for client in ["claude-code", "cursor", "vscode", "gemini", "kiro", "codex", "opencode", "zed"]:
        r = airlock("connect", client, "--project", PROJECT)
        made = sorted(os.listdir(PROJECT))
        r2 = airlock("disconnect", client, "--project", PROJECT)
        check(f"{client}: connect into a project without settings makes them ({made}); disconnect leaves nothing",
              r.returncode == 0 and made and r2.returncode == 0 and os.listdir(PROJECT) == [],
              f"{short(r.stderr)} {short(r2.stderr)} left {os.listdir(PROJECT)}")


def refusals():
    gemini = os.path.join(HOME, ".gemini", "settings.json")
    os.makedirs(os.path.dirname(gemini), exist_ok=True)
    broken = '{\n  "mcpServers": {\n    "fs": {"command": "npx",}\n  \n'
    with open(gemini, "w") as f:
        f.write(broken)
    r = airlock("connect", "gemini")
    check("a settings file that does not parse: one line naming it, the line and column; exit 78; left as it was",
          r.returncode == 78 and len(r.stderr.strip().splitlines()) == 1 and gemini in r.stderr and "line " in r.stderr
          and open(gemini).read() == broken, f"{r.returncode} {short(r.stderr)}")
    os.remove(gemini)
    for args, status, label in [
        (["connect", "notepad"], 64, "an unknown client"),
        (["connect", "cursor", "--servers", "no-such-server"], 3, "a server not in the catalog"),
        (["connect", "cursor", "--url", "ftp://127.0.0.1/"], 64, "a URL that is not http(s)"),
        (["connect", "cursor", "--global", "--project", PROJECT], 64, "--global with --project"),
        (["connect", "claude-desktop", "--project", PROJECT], 5, "claude-desktop has no project file"),
        (["connect", "cursor", "--project", os.path.join(WORK, "nowhere")], 3, "a project that does not exist"),
        (["connect", "cursor", "--name", "a/b"], 64, "a name with a slash"),
    ]:
        r = airlock(*args)
        check(f"refused in one line with exit {status}: {label}",
              r.returncode == status and len(r.stderr.strip().splitlines()) == 1 and not r.stdout,
              f"{r.returncode} {short(r.stderr)}")
    check("the refusals left no file behind", not os.path.exists(os.path.join(HOME, ".cursor"))
          and os.listdir(PROJECT) == [], f"{os.listdir(HOME)} {os.listdir(PROJECT)}")


# ---- the real Claude Code --------------------------------------------------------------------

CLAUDE_ENV = {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1",
              "ANTHROPIC_API_KEY": "sk-ant-unused", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}


def claude(*args, token=None, timeout=90):
    extra = dict(CLAUDE_ENV)
    if token is not None:
        extra["AIRLOCK_MCP_TOKEN"] = token
    return subprocess.run([CLAUDE, *args], capture_output=True, text=True, env=env(**extra), cwd=PROJECT,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def init_tools(token=None):
    """The tools Claude Code offers the model, from its stream-json init message, which it
    prints before it calls the API (here a closed port, which it would retry for minutes: it is
    stopped once the message is read)."""
    extra = dict(CLAUDE_ENV, **({"AIRLOCK_MCP_TOKEN": token} if token is not None else {}))
    process = subprocess.Popen([CLAUDE, "-p", "hello", "--output-format", "stream-json", "--verbose", "--max-turns",
                                "1"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, env=env(**extra), cwd=PROJECT, start_new_session=True)
    watchdog = threading.Timer(90, process.kill)
    watchdog.start()
    seen = []
    try:
        for line in process.stdout:
            seen.append(line)
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get("type") == "system" and message.get("subtype") == "init":
                return message.get("tools") or [], message.get("mcp_servers") or []
        return [], f"no init message: {short(''.join(seen))}"
    finally:
        watchdog.cancel()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def real_claude():
    settings = os.path.join(HOME, ".claude.json")
    with open(settings, "w") as f:
        json.dump({"numStartups": 1, "mcpServers": {}}, f)
    r = airlock("connect", "claude-code")
    check("claude-code: connect (stdio, the gateway's dynamic tools)", r.returncode == 0, short(r.stderr))
    r = claude("mcp", "list")
    check("the real Claude Code: `claude mcp list` shows the gateway connected",
          re.search(r"^airlock: .*airlock mcp gateway run.*Connected", r.stdout, re.M) is not None,
          short(r.stdout + r.stderr))
    tools, servers = init_tools()
    check("the real Claude Code offers the gateway's tools (mcp__airlock__mcp-find, mcp-add, ...)",
          "mcp__airlock__mcp-find" in tools and "mcp__airlock__mcp-add" in tools, short(servers))

    # An HTTP gateway, reached through `/` (Docker's path) with the token from the environment.
    log = open(os.path.join(WORK, "gateway.log"), "w")
    gateway = subprocess.Popen([AIRLOCK, "mcp", "gateway", "run", "--transport", "streaming", "--port", str(GW_PORT)],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                               env=env(AIRLOCK_MCP_TOKEN=TOKEN), cwd=PROJECT, start_new_session=True)
    try:
        listening = wait_until(lambda: "listening on" in open(log.name).read() or gateway.poll() is not None, 60)
        check("an HTTP gateway listens", listening and gateway.poll() is None, short(open(log.name).read()))
        r = airlock("connect", "claude-code", "--url", f"http://127.0.0.1:{GW_PORT}/")
        check("claude-code: connect --url http://127.0.0.1:PORT/", r.returncode == 0, short(r.stderr))
        r = claude("mcp", "list", token=TOKEN)
        check("the real Claude Code reaches the HTTP gateway through / with the token from AIRLOCK_MCP_TOKEN",
              re.search(r"^airlock: http://127\.0\.0\.1:\d+/ .*Connected", r.stdout, re.M) is not None,
              short(r.stdout + r.stderr))
        tools, servers = init_tools(token=TOKEN)
        check("... and offers the gateway's tools over HTTP", "mcp__airlock__mcp-find" in tools, short(servers))
        r = claude("mcp", "list", token="wrong-" + TOKEN)
        check("companion: with a wrong token in its environment it does not connect",
              re.search(r"^airlock: .*Connected", r.stdout, re.M) is None and "airlock" in r.stdout,
              short(r.stdout + r.stderr))
    finally:
        gateway.send_signal(signal.SIGTERM)
        try:
            gateway.wait(30)
        except subprocess.TimeoutExpired:
            gateway.kill()
    found = []
    for root, _, files in os.walk(HOME):
        for name in files:
            try:
                with open(os.path.join(root, name), "rb") as f:
                    if TOKEN.encode() in f.read():
                        found.append(os.path.join(root, name))
            except OSError:
                pass
    check("the token is in no file under the home (Claude Code's own state included)", not found, found)
    r = airlock("disconnect", "claude-code")
    document = json.load(open(settings))
    check("claude-code: disconnect takes the entry out of the file Claude Code rewrote, the rest kept",
          r.returncode == 0 and "airlock" not in document.get("mcpServers", {}) and document.get("numStartups"),
          short(document))


def main():
    os.makedirs(HOME, exist_ok=True)
    os.makedirs(PROJECT, exist_ok=True)
    print("== each client's settings file, both scopes")
    for client, scope in FIXTURES:
        one_client(client, scope)
    for directory in (HOME, PROJECT):
        shutil.rmtree(directory)
        os.makedirs(directory)
    print("== connect into no file, and bad input")
    fresh_files()
    refusals()
    print("== the real Claude Code")
    real_claude()
    return 1 if totals["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
