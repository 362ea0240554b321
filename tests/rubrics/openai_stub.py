"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1, for judge tests and benchmarks.

A real HTTP server on a real socket (stdlib `ThreadingHTTPServer`, HTTP/1.1 keep-alive), so the real
`openai` client, its connection pool and its timeouts are exercised. A `script(request, attempt)`
decides each reply; `attempt` counts how often the same request body has arrived (1 = first).
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import re
import threading
import time
from typing import Callable


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int = 200
    content: str | None = None  # the assistant message; ignored when `raw_body` is set
    raw_body: str | None = None  # sent verbatim, e.g. garbage that is not JSON
    delay_s: float = 0.0  # sleep before answering (past the client's timeout = a hang)
    headers: tuple[tuple[str, str], ...] = ()  # extra response headers, e.g. (("Retry-After", "1"),)
    prompt_tokens: int = 11
    completion_tokens: int = 7


Script = Callable[[dict, int], Reply]


def user_text(request: dict) -> str:
    return next(m["content"] for m in request["messages"] if m["role"] == "user")


def rubric_items(request: dict) -> list[str]:
    """The numbered rubric items of a per-response prompt, or the single item of a per-criterion one."""
    text = user_text(request)
    if "[Rubric items]\n" in text:
        return re.findall(r"^\d+\. (.*)$", text.split("[Rubric items]\n", 1)[1], re.MULTILINE)
    return [text.split("[Rubric item]\n", 1)[1]]


def truthful_answer(request: dict) -> str:
    """The right answer when an item's text says MET or UNMET, in the request's mode."""
    items = rubric_items(request)
    if "[Rubric items]\n" in user_text(request):
        return json.dumps({"results": [int(not item.startswith("UNMET")) for item in items]})
    return json.dumps({"explanation": "scripted", "criteria_met": not items[0].startswith("UNMET")})


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default backlog of 5 resets connections under a burst of 64


class OpenAIStub:
    def __init__(self, script: Script):
        self.script = script
        self.requests: list[dict] = []  # bodies received, in arrival order
        self.arrivals: list[float] = []  # time.monotonic() when each body had arrived, in the same order
        self.auth_headers: list[str] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> OpenAIStub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, body: bytes, auth: str) -> tuple[int, bytes, Reply]:
        arrived = time.monotonic()
        request = json.loads(body)
        with self._lock:
            self.requests.append(request)
            self.arrivals.append(arrived)
            self.auth_headers.append(auth)
            key = json.dumps(request["messages"], sort_keys=True)
            self._seen[key] = attempt = self._seen.get(key, 0) + 1
        reply = self.script(request, attempt)
        if reply.raw_body is not None:
            return reply.status, reply.raw_body.encode(), reply
        if reply.status != 200:
            error = {"error": {"message": reply.content or "scripted error", "type": "scripted", "code": reply.status}}
            return reply.status, json.dumps(error).encode(), reply
        completion = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request["model"],
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": reply.content}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            },
        }
        return 200, json.dumps(completion).encode(), reply

    def _handler_class(self):
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms Nagle stall

            def do_POST(self):
                with stub._lock:
                    stub._in_flight += 1
                    stub.max_in_flight = max(stub.max_in_flight, stub._in_flight)
                try:
                    body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                    status, payload, reply = stub._answer(body, self.headers.get("Authorization", ""))
                    time.sleep(reply.delay_s)
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in reply.headers:
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up (timeout) and closed the connection
                    self.close_connection = True
                finally:
                    with stub._lock:
                        stub._in_flight -= 1

            def log_message(self, *args):
                pass

        return Handler
