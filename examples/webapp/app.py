"""A small web app with a jobrunner worker in its lifespan. Pure ASGI: no framework needed.

    POST /jobs      {"type": "diag.sleep", "payload": {"seconds": 2}, "user_id": "u1"}
                    → 201 {"id": 1}
    GET  /jobs/1    → 200 the job as JSON (status, progress, result, error, …)

Lifespan startup opens `Runner(...)`, which creates the job table if needed and starts a worker
in the background; shutdown leaves the `async with` block, so the worker stops gracefully
(running jobs get `shutdown_timeout` to finish, the rest are handed back to the queue).

Run it with uvicorn (`pip install uvicorn`), from the repository root:

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        uvicorn app:app --app-dir examples/webapp
    curl -X POST localhost:8000/jobs -d '{"type": "diag.sleep", "payload": {"seconds": 2}}'
    curl localhost:8000/jobs/1

or `python examples/webapp/app.py`. Without DATABASE_URL the jobs go to ./jobrunner.db.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from jobrunner import JobNotFound, PayloadError, Runner

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_BODY = 1 << 20


class JobsApp:
    """The ASGI application. `runner_options` go to `Runner` (settings, `env`, …)."""

    def __init__(
        self,
        database_url: str | None = None,
        *,
        plugins: Iterable[str] = ("diag",),
        **runner_options: Any,
    ) -> None:
        self.database_url = database_url
        self.plugins = list(plugins)
        self.runner_options = runner_options
        self.runner: Runner | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] == "http":
            status, body = await self.handle(scope, receive)
            await send_json(send, status, body)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        started = False
        try:
            runner = Runner(self.database_url, plugins=self.plugins, **self.runner_options)
            async with runner:
                self.runner, started = runner, True
                await send({"type": "lifespan.startup.complete"})
                await receive()  # lifespan.shutdown
                self.runner = None  # refuse new requests while the worker drains
        except Exception as exc:
            failed = "lifespan.shutdown.failed" if started else "lifespan.startup.failed"
            await send({"type": failed, "message": f"{type(exc).__name__}: {exc}"})
            return
        await send({"type": "lifespan.shutdown.complete"})

    async def handle(self, scope: Scope, receive: Receive) -> tuple[int, Any]:
        runner = self.runner
        if runner is None:
            return 503, {"error": "the job runner is not running"}
        method, parts = scope["method"], scope["path"].strip("/").split("/")
        if parts == ["jobs"] and method == "POST":
            return await self.enqueue(runner, await read_body(receive))
        if len(parts) == 2 and parts[0] == "jobs" and parts[1].isdigit() and method == "GET":
            try:
                job = await runner.get_job(int(parts[1]))
            except JobNotFound:
                return 404, {"error": f"no job {parts[1]}"}
            return 200, job.as_dict()
        return 404, {"error": "try POST /jobs or GET /jobs/ID"}

    async def enqueue(self, runner: Runner, body: bytes | None) -> tuple[int, Any]:
        if body is None:
            return 413, {"error": f"the body is over {MAX_BODY} bytes"}
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return 400, {"error": "the body is not JSON"}
        if not isinstance(request, dict):
            return 400, {"error": 'send an object: {"type": …, "payload": …, "user_id": …}'}
        job_type, user_id = request.get("type"), request.get("user_id")
        if not isinstance(job_type, str) or job_type not in runner.handlers:
            known = ", ".join(sorted(runner.handlers))
            return 400, {"error": f"type must be one of: {known}"}
        if user_id is not None and not isinstance(user_id, str):
            return 400, {"error": "user_id must be a string"}
        try:
            job_id = await runner.enqueue(job_type, request.get("payload"), user_id=user_id)
        except PayloadError as exc:
            return 400, {"error": str(exc)}
        return 201, {"id": job_id}


async def read_body(receive: Receive) -> bytes | None:
    """The request body, or None when it is larger than MAX_BODY."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > MAX_BODY:
            return None
        if not message.get("more_body", False):
            return body


async def send_json(send: Send, status: int, data: Any) -> None:
    body = json.dumps(data, ensure_ascii=False).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app(database_url: str | None = None, **options: Any) -> JobsApp:
    """The app; `database_url` None means DATABASE_URL, or ./jobrunner.db when that is unset."""
    return JobsApp(database_url, **options)


app = create_app()  # nothing connects until the lifespan starts

if __name__ == "__main__":
    import uvicorn  # not a dependency of jobrunner: pip install uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
