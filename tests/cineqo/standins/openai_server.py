"""A local stand-in for the OpenAI chat completions API, scriptable per chunk.

    with OpenAIStandIn() as server:
        server.script("[Chapter 3]", status(429), answer({"characters": [...]}))
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=2)

Replies are chosen per request: the first scripted marker found in the last user message takes
the next reply from its queue (the last one repeats); otherwise `server.responder(body)`
answers (default: no characters). Every request is recorded with its headers and time of
arrival. Usage numbers are estimated from the request and answer sizes with the plugin's own
token estimate; `server.usage` lists what each answer reported.

The SDK (openai 3.57) ignores a retry-after of 0 and backs off 0.5 s instead, so error replies
send `retry-after-ms: 1` by default: retries happen at once and tests do not sleep.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs

from jobrunner_cineqo._cast.chunks import estimate_tokens


@attrs.frozen(kw_only=True)
class Reply:
    """One scripted answer: a completion (content/refusal/finish reason) or an HTTP error."""

    status: int = 200
    content: str | None = None
    refusal: str | None = None
    finish_reason: str = "stop"
    headers: dict[str, str] = attrs.field(factory=dict)
    error_body: Any = None


def answer(data: Any) -> Reply:
    """A completion whose content is `data` as JSON."""
    return Reply(content=json.dumps(data, ensure_ascii=False))


def raw(content: str, finish_reason: str = "stop") -> Reply:
    """A completion with this exact content (e.g. malformed JSON) and finish reason."""
    return Reply(content=content, finish_reason=finish_reason)


def refusal(text: str = "I can't help with that.") -> Reply:
    return Reply(refusal=text)


def content_filter() -> Reply:
    return Reply(content="", finish_reason="content_filter")


def status(code: int, retry_after_ms: int = 1, message: str | None = None) -> Reply:
    """An HTTP error reply in OpenAI's error shape."""
    body = {"error": {"message": message or f"stand-in error {code}", "type": "server_error"}}
    return Reply(status=code, headers={"retry-after-ms": str(retry_after_ms)}, error_body=body)


def no_characters(_body: dict[str, Any]) -> Reply:
    return answer({"characters": []})


@attrs.frozen(kw_only=True)
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float = attrs.field(factory=time.monotonic)  # when it arrived

    @property
    def user_text(self) -> str:
        users = [m["content"] for m in self.body.get("messages", []) if m.get("role") == "user"]
        return users[-1] if users else ""


class OpenAIStandIn:
    """`POST /v1/chat/completions` on 127.0.0.1 at a random port, in a background thread."""

    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency
        self.responder: Callable[[dict[str, Any]], Reply] = no_characters
        self.requests: list[Recorded] = []
        self.usage: list[dict[str, Any]] = []  # the `usage` of every completion answered
        self.max_in_flight = 0  # most requests being answered at once
        self._in_flight = 0
        self._scripts: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        # A short poll interval: `shutdown()` waits up to one interval.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, marker: str, *replies: Reply) -> None:
        """Answer requests whose user message contains `marker` with these replies in turn."""
        with self._lock:
            self._scripts[marker] = list(replies)

    def completions(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def start(self) -> OpenAIStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIStandIn:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _handle(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> Reply:
        record = Recorded(path=path, headers=headers, body=body)
        with self._lock:
            self.requests.append(record)
            reply = self._scripted(record.user_text)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            if self.latency:
                time.sleep(self.latency)  # runs in the handler's own thread
            return reply if reply is not None else self.responder(body)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _scripted(self, user_text: str) -> Reply | None:
        for marker, queue in self._scripts.items():
            if marker in user_text and queue:
                return queue.pop(0) if len(queue) > 1 else queue[0]
        return None

    def completion_body(self, request: dict[str, Any], reply: Reply) -> dict[str, Any]:
        prompt = "".join(str(m.get("content", "")) for m in request.get("messages", []))
        prompt += json.dumps(request.get("response_format", {}), ensure_ascii=False)
        prompt_tokens = estimate_tokens(prompt)
        completion_tokens = estimate_tokens(reply.content or reply.refusal or "")
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.refusal is not None:
            message["refusal"] = reply.refusal
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        with self._lock:
            self.usage.append(usage)
        return {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "stand-in"),
            "choices": [{"index": 0, "finish_reason": reply.finish_reason, "message": message}],
            "usage": usage,
        }


def _handler_for(server: OpenAIStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            # `GET /v1/models`: what `jobrunner doctor` calls to check the key works.
            if not self.path.rstrip("/").endswith("/models"):
                self._send(404, {"error": {"message": f"no route {self.path}"}}, {})
                return
            if not self.headers.get("authorization", "").startswith("Bearer "):
                self._send(401, {"error": {"message": "missing key"}}, {})
                return
            model = {"id": "gpt-4o-mini", "object": "model", "created": 1, "owned_by": "standin"}
            self._send(200, {"object": "list", "data": [model]}, {})

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw_body = self.rfile.read(length)
            headers = {key.lower(): value for key, value in self.headers.items()}
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, {"error": {"message": f"no route {self.path}"}}, {})
                return
            try:
                body = json.loads(raw_body)
            except ValueError:
                self._send(400, {"error": {"message": "request body is not JSON"}}, {})
                return
            reply = server._handle(self.path, headers, body)
            if reply.status != 200:
                self._send(reply.status, reply.error_body, reply.headers)
            else:
                self._send(200, server.completion_body(body, reply), reply.headers)

        def _send(self, code: int, payload: Any, headers: dict[str, str]) -> None:
            data = json.dumps(payload, ensure_ascii=False).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler
