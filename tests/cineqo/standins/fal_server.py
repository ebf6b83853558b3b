"""A local stand-in for fal.ai's queue API (stdlib only), on 127.0.0.1 with a random port.

It speaks fal's queue protocol, as the plugin's client (and fal's own) use it:

    POST /{owner}/{alias}[/path]               -> request_id, response/status/cancel URLs
    GET  /{owner}/{alias}/requests/{id}/status -> IN_QUEUE -> IN_PROGRESS -> COMPLETED over polls
    GET  /{owner}/{alias}/requests/{id}        -> a FLUX-like result
    PUT  /{owner}/{alias}/requests/{id}/cancel
    GET  /images/{id}/{index}.png              -> real PNG bytes

Tests script it through ``server.script`` (failures to answer first, NSFW flags, data: URIs)
and read ``server.requests`` to see what was sent, headers included.
"""

from __future__ import annotations

import base64
import json
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs


def tiny_png(width: int = 2, height: int = 2) -> bytes:
    """A valid RGBA PNG of solid red pixels."""
    rows = b"".join(b"\x00" + b"\xff\x00\x00\xff" * width for _ in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PNG_BYTES = tiny_png()


@attrs.frozen(kw_only=True)
class Reply:
    """A scripted answer that replaces the normal one. A ``str`` body is a gateway's HTML error
    page: it comes without fal's ``x-fal-request-id`` header."""

    status: int
    body: Any = None
    headers: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Recorded:
    """One request the stand-in received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float = attrs.field(factory=time.monotonic)  # when it arrived

    def json(self) -> Any:
        return json.loads(self.body)


@attrs.define
class FalScript:
    """How the stand-in behaves. Reply lists are consumed one per matching request."""

    queued_polls: int = 1  # IN_QUEUE answers (positions counting down to 0)
    progress_polls: int = 1  # IN_PROGRESS answers, one more log line each
    submit_replies: list[Reply] = attrs.field(factory=list)
    status_replies: list[Reply] = attrs.field(factory=list)
    result_replies: list[Reply] = attrs.field(factory=list)
    image_replies: list[Reply] = attrs.field(factory=list)
    fail_with: Reply | None = None  # the request completes with an error; the result is this
    nsfw: list[bool] | None = None  # has_nsfw_concepts, one per image
    data_uri_images: bool = False


@attrs.define
class _Request:
    request_id: str
    app: str
    arguments: dict[str, Any]
    polls: int = 0
    cancelled: bool = False


class FalStandIn:
    """Run with ``with FalStandIn() as fal:``; ``fal.url`` is the queue base URL."""

    def __init__(self) -> None:
        self.script = FalScript()
        self.requests: list[Recorded] = []
        self.queue: dict[str, _Request] = {}
        self.images_generated = 0  # images in the results it answered (what fal would bill)
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.stand_in = self  # type: ignore[attr-defined]
        # A short poll interval lets shutdown() return quickly instead of after 0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FalStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def requests_where(self, method: str, *, suffix: str = "") -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]

    @property
    def submissions(self) -> list[Recorded]:
        """POSTs that reached the queue, including scripted failures."""
        return self.requests_where("POST")

    # Request handling, called from the handler thread with the lock held.

    def submit(self, app: str, arguments: dict[str, Any]) -> tuple[int, Any]:
        request_id = f"req-{len(self.queue) + 1:04d}"
        self.queue[request_id] = _Request(request_id=request_id, app=app, arguments=arguments)
        owner, alias = app.split("/")[:2]
        base = f"{self.url}/{owner}/{alias}/requests/{request_id}"
        return 200, {
            "request_id": request_id,
            "response_url": base,
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
            "queue_position": self.script.queued_polls,
        }

    def status(self, request: _Request, with_logs: bool) -> tuple[int, Any]:
        queued, progress = self.script.queued_polls, self.script.progress_polls
        poll = request.polls
        request.polls += 1
        if poll < queued:
            return 200, {"status": "IN_QUEUE", "queue_position": queued - poll - 1}
        done = min(poll - queued + 1, progress)
        logs = [_log(f"step {n + 1}/{progress}") for n in range(done)] if with_logs else None
        if poll < queued + progress:
            return 200, {"status": "IN_PROGRESS", "logs": logs}
        body = {"status": "COMPLETED", "logs": logs, "metrics": {"inference_time": 0.25}}
        if self.script.fail_with is not None:
            body |= {"error": "Request failed", "error_type": "runner_error"}
        return 200, body

    def result(self, request: _Request) -> tuple[int, Any]:
        if request.polls < self.script.queued_polls + self.script.progress_polls:
            return 400, {"detail": "Request is still in progress"}
        if self.script.fail_with is not None:
            return self.script.fail_with.status, self.script.fail_with.body
        count = int(request.arguments.get("num_images", 1))
        self.images_generated += count
        nsfw = self.script.nsfw or [False] * count
        return 200, {
            "images": [self._image(request, index) for index in range(count)],
            "seed": request.arguments.get("seed", 1234),
            "has_nsfw_concepts": nsfw,
            "timings": {"inference": 0.25},
            "prompt": request.arguments.get("prompt", ""),
        }

    def _image(self, request: _Request, index: int) -> dict[str, Any]:
        if self.script.data_uri_images:
            url = "data:image/png;base64," + base64.b64encode(PNG_BYTES).decode("ascii")
        else:
            url = f"{self.url}/images/{request.request_id}/{index}.png"
        return {"url": url, "width": 2, "height": 2, "content_type": "image/png"}


def _log(message: str) -> dict[str, str]:
    return {"message": message, "level": "INFO", "source": "user", "timestamp": "2026-11-28"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; don't wait 40 ms

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet

    def do_POST(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def _handle(self) -> None:
        fal: FalStandIn = self.server.stand_in  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        record = Recorded(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        with fal.lock:
            fal.requests.append(record)
            status, payload, headers = _route(fal, record)
        self._send(status, payload, headers)

    def _send(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        if isinstance(payload, bytes):
            data, content_type = payload, "image/png"
        elif isinstance(payload, str):
            data, content_type = payload.encode(), "text/html"
        else:
            data, content_type = json.dumps(payload).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if not isinstance(payload, str):
            self.send_header("x-fal-request-id", "stand-in")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _route(fal: FalStandIn, record: Recorded) -> tuple[int, Any, dict[str, str]]:
    segments = record.path.strip("/").split("/")
    script = fal.script
    if record.method == "GET" and segments[0] == "images":
        return _scripted(script.image_replies) or (200, PNG_BYTES, {})
    if record.method == "POST" and "requests" not in segments:
        return _scripted(script.submit_replies) or (
            *fal.submit("/".join(segments), record.json()),
            {},
        )
    if len(segments) < 4 or segments[2] != "requests":
        return 404, {"detail": f"no route for {record.method} {record.path}"}, {}
    request = fal.queue.get(segments[3])
    if request is None:
        return 404, {"detail": f"Request {segments[3]} not found"}, {}
    action = segments[4] if len(segments) > 4 else ""
    if record.method == "GET" and action == "status":
        with_logs = record.query.get("logs", ["false"])[0] in ("1", "true", "True")
        return _scripted(script.status_replies) or (*fal.status(request, with_logs), {})
    if record.method == "GET" and action == "":
        return _scripted(script.result_replies) or (*fal.result(request), {})
    if record.method == "PUT" and action == "cancel":
        request.cancelled = True
        return 202, {"status": "CANCELLATION_REQUESTED"}, {}
    return 405, {"detail": "method not allowed"}, {}


def _scripted(replies: list[Reply]) -> tuple[int, Any, dict[str, str]] | None:
    if not replies:
        return None
    reply = replies.pop(0)
    return reply.status, reply.body, reply.headers


@contextmanager
def fal_stand_in() -> Iterator[FalStandIn]:
    """Start the stand-in for the duration of the block."""
    with FalStandIn() as server:
        yield server
