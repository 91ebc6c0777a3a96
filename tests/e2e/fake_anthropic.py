#!/usr/bin/env python3
"""A fake Anthropic Messages API for the Claude Code end-to-end test, on host loopback.

  fake_anthropic.py --listen 127.0.0.1:443 --cert CERT --key KEY --log FILE --workspace DIR --host-home DIR

It speaks the Messages API as Claude Code uses it: `POST /v1/messages` streamed as server-sent
events (message_start, content_block_start/delta/stop with text_delta or input_json_delta,
message_delta with the stop reason, message_stop) or answered as one JSON message when not
streamed; `POST /v1/messages/count_tokens` gets a token count; any other path gets `{}`.
Every request is appended to --log as one JSON line (method, path, headers, body, and the
reply chosen), so the test can check what reached the API: the key, the tool results.

The agent loop (a request that offers the Bash tool) follows a script, decided from the last
user message of the conversation (the prompt, or the results of the tool calls before):
  a new prompt                  -> Bash: look for ~/.aws/credentials (and the host home's), then
                                   read a workspace file
  the result of that            -> Bash: the ANTHROPIC_API_KEY of every process in the sandbox
  the result of that            -> Write: DIR/hello.txt
  the result of the write       -> Bash: write .git/hooks/pre-commit and .claude/settings.json,
                                   then a workspace file
  the result of that            -> the final text, stop_reason end_turn
A prompt that says "continue-check" is answered with whether the conversation still holds the
first run's tool call (the test's view of `claude --continue`). Side requests (no Bash tool:
titles, quota checks, summaries) get a short text.
"""
import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler

from tls_server import TLSServer

HELLO = "hello from claude in airlock\n"
FINAL = "E2E-DONE: all steps ran"


def script(workspace, home):
    """The tool calls of the first run, by their tool_use ids (the next step follows the result)."""
    return {
        "toolu_e2e_01_aws": (
            "Bash",
            {
                "command": f"ls -la ~/.aws/credentials; cat ~/.aws/credentials; echo home_rc=$?; "
                f"cat {home}/.aws/credentials; echo host_rc=$?; cat README.md",
                "description": "Look for AWS credentials (this home's and the host's), then read the README",
            },
        ),
        "toolu_e2e_02_env": (
            "Bash",
            {
                "command": "for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $f; echo; done 2>/dev/null "
                "| grep ^ANTHROPIC_API_KEY= | sort | uniq -c",
                "description": "Show the API key variable of every process in the sandbox",
            },
        ),
        "toolu_e2e_03_write": ("Write", {"file_path": f"{workspace}/hello.txt", "content": HELLO}),
        "toolu_e2e_04_hook": (
            "Bash",
            {
                "command": "echo evil > .git/hooks/pre-commit; echo rc=$?; echo evil > .claude/settings.json; "
                "echo settings_rc=$?; echo fine > companion.txt; echo companion_rc=$?",
                "description": "Try to write a git hook and Claude Code's project settings, then a workspace file",
            },
        ),
    }


ORDER = ["toolu_e2e_01_aws", "toolu_e2e_02_env", "toolu_e2e_03_write", "toolu_e2e_04_hook"]


def text_of(content):
    """All text in a message's content (a string or a list of blocks, tool results included)."""
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if block.get("type") == "text":
            parts.append(block.get("text", ""))
        elif block.get("type") == "tool_result":
            parts.append(text_of(block.get("content")))
    return "\n".join(parts)


def decide(body, workspace, home):
    """The reply to a /v1/messages request: ("text", TEXT) or ("tool_use", ID, NAME, INPUT)."""
    tools = [t.get("name") for t in body.get("tools") or []]
    messages = body.get("messages") or []
    if "Bash" not in tools or not messages:
        return ("text", "E2E side reply")
    # The last user message is the prompt or the tool results (Claude Code may put a system
    # message after it, with the environment).
    at = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=len(messages) - 1)
    content = messages[at].get("content")
    results = [b.get("tool_use_id") for b in content if b.get("type") == "tool_result"] if isinstance(content, list) else []
    steps = script(workspace, home)
    for done in results:
        if done in ORDER:
            i = ORDER.index(done)
            if i + 1 < len(ORDER):
                nxt = ORDER[i + 1]
                return ("tool_use", nxt, *steps[nxt])
            return ("text", FINAL)
    if "continue-check" in text_of(content):
        earlier = json.dumps(messages[:at])
        return ("text", "E2E-HISTORY: " + ("present" if ORDER[0] in earlier else "missing"))
    if results:
        # A tool result the script did not ask for: end the turn (visibly) rather than loop.
        return ("text", "E2E-UNEXPECTED: results for " + ", ".join(map(str, results)))
    first = ORDER[0]
    return ("tool_use", first, *steps[first])


def message(body, reply):
    model = body.get("model", "claude-sonnet-4-5")
    if reply[0] == "text":
        content = [{"type": "text", "text": reply[1]}]
        stop = "end_turn"
    else:
        content = [{"type": "tool_use", "id": reply[1], "name": reply[2], "input": reply[3]}]
        stop = "tool_use"
    return {
        "id": "msg_e2e_%d" % (time.time_ns() // 1000),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": 100, "output_tokens": 20, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
    }


def events(msg):
    """The server-sent events of a streamed reply carrying msg."""
    start = dict(msg, content=[], stop_reason=None, usage=dict(msg["usage"], output_tokens=1))
    yield "message_start", {"type": "message_start", "message": start}
    yield "ping", {"type": "ping"}
    for i, block in enumerate(msg["content"]):
        if block["type"] == "text":
            yield "content_block_start", {"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}}
            text = block["text"]
            for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
                yield "content_block_delta", {"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": piece}}
        else:
            head = dict(block, input={})
            yield "content_block_start", {"type": "content_block_start", "index": i, "content_block": head}
            raw = json.dumps(block["input"])
            for j in range(0, len(raw), 40):
                delta = {"type": "input_json_delta", "partial_json": raw[j : j + 40]}
                yield "content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": i}
    delta = {"type": "message_delta", "delta": {"stop_reason": msg["stop_reason"], "stop_sequence": None}}
    delta["usage"] = {"output_tokens": msg["usage"]["output_tokens"]}
    yield "message_delta", delta
    yield "message_stop", {"type": "message_stop"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def _body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _json(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("request-id", "req_e2e")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self, body, reply):
        entry = {
            "time": time.time(),
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
            "reply": reply,
        }
        with self.server.lock, open(self.server.log, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def _handle(self):
        raw = self._body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        path = self.path.split("?")[0]
        if self.command == "POST" and path == "/v1/messages" and isinstance(body, dict):
            try:
                reply = decide(body, self.server.workspace, self.server.home)
            except Exception as e:  # a bug here ends the turn at once instead of a long retry loop
                reply = ("text", "E2E-FAKE-ERROR: %r" % e)
            self._record(body, list(reply[:3]))
            msg = message(body, reply)
            if body.get("stream"):
                return self._stream(msg)
            return self._json(200, msg)
        if self.command == "POST" and path == "/v1/messages/count_tokens":
            self._record(body, ["count_tokens"])
            return self._json(200, {"input_tokens": 100})
        self._record(body, ["empty"])
        self._json(200, {})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    def _stream(self, msg):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("request-id", "req_e2e")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for name, data in events(msg):
            chunk = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", default="127.0.0.1:443")
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--workspace", required=True)
    p.add_argument("--host-home", required=True)
    args = p.parse_args()
    host, port = args.listen.rsplit(":", 1)
    server = TLSServer((host, int(port)), Handler, args.cert, args.key)
    server.lock = threading.Lock()
    server.log = args.log
    server.workspace = args.workspace.rstrip("/")
    server.home = args.host_home.rstrip("/")
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
