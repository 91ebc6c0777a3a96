#!/usr/bin/env python3
"""A fake OpenAI chat completions API for end-to-end tests of real agents, on host loopback.

  fake_openai.py --listen ADDR:PORT --cert CERT --key KEY --log FILE --turn CMD [--turn CMD ...]

POST /v1/chat/completions answers with one `bash` tool call (the tool mini-swe-agent
declares), with the command of the next --turn: a request that already holds N assistant
messages gets turn N+1 (its tool call id is call_<N+1>), so the script follows the conversation
rather than a count of requests. Past the last turn it repeats the last one. A request with "stream": true gets the same answer as
server-sent events. GET /v1/models lists one model; anything else gets an empty JSON object.
Every request is appended to --log as one JSON line: method, path, headers (lower-cased
names) and the body (parsed JSON, or text). Prints "ready" once listening.
"""
import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler

from tls_server import TLSServer

MODEL = "gpt-4o-mini"


def completion(turn, command):
    """The assistant message of one turn: a line of reasoning and one bash tool call."""
    return {
        "role": "assistant",
        "content": f"Step {turn + 1}: running a command.",
        "tool_calls": [
            {
                "id": f"call_{turn + 1}",
                "type": "function",
                "function": {"name": "bash", "arguments": json.dumps({"command": command})},
            }
        ],
    }


USAGE = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}


class FakeOpenAI(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def _record(self, body):
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode(errors="replace")
        entry = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": parsed,
        }
        with self.server.log_lock, open(self.server.log_path, "a") as log:
            log.write(json.dumps(entry) + "\n")
        return parsed

    def _json(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = self._record(body)
        path = self.path.split("?")[0]
        if self.command == "GET" and path.endswith("/models"):
            return self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "fake"}]})
        if self.command != "POST" or not path.endswith("/chat/completions") or not isinstance(request, dict):
            return self._json(200, {})
        turns = self.server.turns
        turn = sum(1 for m in request.get("messages", []) if m.get("role") == "assistant")
        message = completion(turn, turns[min(turn, len(turns) - 1)])
        base = {"id": f"chatcmpl-fake-{turn + 1}", "created": int(time.time()), "model": MODEL}
        if not request.get("stream"):
            choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
            return self._json(200, {**base, "object": "chat.completion", "choices": [choice], "usage": USAGE})
        # Streaming: the role and text, then the tool call, then the finish reason (and usage
        # when asked for), then [DONE]; sent chunked.
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        call = message["tool_calls"][0]
        deltas = [
            ({"role": "assistant", "content": message["content"]}, None),
            ({"tool_calls": [{"index": 0, **call}]}, None),
            ({}, "tool_calls"),
        ]
        for delta, finish in deltas:
            event = {**base, "object": "chat.completion.chunk",
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            self._chunk(b"data: " + json.dumps(event).encode() + b"\n\n")
        if (request.get("stream_options") or {}).get("include_usage"):
            event = {**base, "object": "chat.completion.chunk", "choices": [], "usage": USAGE}
            self._chunk(b"data: " + json.dumps(event).encode() + b"\n\n")
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True, help="ADDR:PORT")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--turn", action="append", required=True, help="the command of the next turn")
    args = parser.parse_args()
    host, port = args.listen.rsplit(":", 1)
    server = TLSServer((host, int(port)), FakeOpenAI, args.cert, args.key)
    server.log_path, server.log_lock = args.log, threading.Lock()
    server.turns = args.turn
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
