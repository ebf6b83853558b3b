"""fal.ai image generation through fal's queue REST protocol, over the plugin's own httpx client.

    POST {queue}/{app_id}                       -> request_id, status_url, response_url, cancel_url
    GET  {status_url}?logs=1                    -> IN_QUEUE | IN_PROGRESS | COMPLETED (+ logs)
    GET  {response_url}                         -> the result
    PUT  {cancel_url}
    every call: Authorization: Key {FAL_KEY}

Why not `fal_client`: its public API cannot send the queue anywhere but an https host fixed at
import (a proxy or a local stand-in needs its private module constants and client internals);
the protocol is four documented calls. The queue is `FAL_QUEUE_URL`. The URLs a submission
returns are followed when they are on the queue's own origin; otherwise, and when resuming a
request by its id, they are built as fal documents them
(`{queue}/{owner}/{alias}/requests/{id}[/status|/cancel]`) — so the key never goes to another host.

Short failures are retried in place, as fal's own client does: 408/409 and a gateway's
502/503/504 (without fal's `x-fal-request-id`) up to `ATTEMPTS` times with a short backoff (a
longer `Retry-After` is left to the job's retry); transport errors on polls, and on a submission
only when it cannot have been sent. A 429 never is: it is `FalRateLimited` at once, so that the
job can pause its type on every worker rather than one worker asking again. Everything else is
a `FalError` (see `fal_errors`). The API
key never appears in an error, a log line or a `repr`. httpx is imported only when a client is
opened or an error classified.
"""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, urlsplit

import anyio
import attrs

from .._spans import span
from .fal_errors import (
    FalConfigError,
    FalError,
    FalNsfwError,
    FalPermanentError,
    FalRateLimited,
    FalRequestNotFound,
    FalRetryableError,
    classify_error,
    http_error,
    redact,
    response_detail,
    secret_parts,
    what,
)

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_QUEUE_URL",
    "FalConfigError",
    "FalError",
    "FalImages",
    "FalNsfwError",
    "FalPermanentError",
    "FalRateLimited",
    "FalRequest",
    "FalRequestNotFound",
    "FalRetryableError",
    "QueueStatus",
    "classify_error",
]

DEFAULT_QUEUE_URL = "https://queue.fal.run"
ATTEMPTS = 4  # one call and up to three quick retries
RETRY_BASE = 0.1  # seconds, doubling, with jitter
RETRY_CAP = 5.0  # a longer wait is the job's retry, not ours
_IN_PLACE_STATUS = frozenset({408, 409})  # never 429: see above
_GATEWAY_STATUS = frozenset({502, 503, 504})
_APP_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)+")
_NAMESPACES = frozenset({"workflows", "comfy"})  # app ids with one more leading segment
_STATES = {"IN_QUEUE": "queued", "IN_PROGRESS": "in_progress", "COMPLETED": "completed"}

ProgressCallback = Callable[["QueueStatus"], Awaitable[None]]
Sleep = Callable[[float], Awaitable[object]]


@attrs.frozen(kw_only=True)
class QueueStatus:
    """Where a request stands. ``logs`` holds log messages (only new ones from ``follow``)."""

    state: Literal["queued", "in_progress", "completed"]
    position: int | None = None
    logs: tuple[str, ...] = ()
    error: str | None = None
    error_type: str | None = None


@attrs.frozen(kw_only=True)
class FalRequest:
    """A queued request: its id and the URLs to poll, fetch and cancel it."""

    request_id: str
    status_url: str = attrs.field(repr=False)
    response_url: str = attrs.field(repr=False)
    cancel_url: str = attrs.field(repr=False)


@attrs.define
class FalImages:
    """Submit, poll and fetch fal.ai requests; every failure becomes a ``FalError``.

    Build it with ``async with FalImages.from_env(os.environ) as fal:``, or inject an
    ``httpx.AsyncClient`` that sends ``Authorization: Key …`` as ``FalImages(http=…)`` (the
    caller then owns it). ``sleep`` waits between in-place retries.
    """

    http: httpx.AsyncClient = attrs.field(repr=False)
    queue_url: str = DEFAULT_QUEUE_URL
    sleep: Sleep = attrs.field(default=anyio.sleep, repr=False)

    @classmethod
    @asynccontextmanager
    async def open(
        cls, *, key: str, queue_url: str = DEFAULT_QUEUE_URL, http_timeout: float = 120.0
    ) -> AsyncIterator[FalImages]:
        """A client for ``key`` whose requests go to ``queue_url``; closed on exit."""
        import httpx

        _check_key(key)
        queue_url = _check_queue_url(queue_url)
        headers = {"Authorization": f"Key {key}", "User-Agent": _user_agent()}
        timeout = httpx.Timeout(http_timeout, connect=10.0)
        async with httpx.AsyncClient(headers=headers, timeout=timeout) as http:
            yield cls(http=http, queue_url=queue_url)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AbstractAsyncContextManager[FalImages]:
        """``open`` with FAL_KEY (or FAL_KEY_ID + FAL_KEY_SECRET) and FAL_QUEUE_URL."""
        key = env.get("FAL_KEY", "").strip()
        if not key and env.get("FAL_KEY_ID") and env.get("FAL_KEY_SECRET"):
            key = f"{env['FAL_KEY_ID'].strip()}:{env['FAL_KEY_SECRET'].strip()}"
        if not key:
            raise FalConfigError("FAL_KEY is not set")
        queue_url = env.get("FAL_QUEUE_URL", "").strip() or DEFAULT_QUEUE_URL
        return cls.open(key=key, queue_url=queue_url)

    def describe(self) -> str:
        return f"fal.ai queue at {self.queue_url}"

    def request(self, app: str, request_id: str) -> FalRequest:
        """The request ``request_id`` of ``app`` on this queue (to resume a saved id)."""
        if not request_id or len(request_id) > 200:
            raise FalConfigError("a fal request id must be 1 to 200 characters")
        base = f"{self._app_base(app)}/requests/{quote(request_id, safe='')}"
        return FalRequest(
            request_id=request_id,
            status_url=f"{base}/status",
            response_url=base,
            cancel_url=f"{base}/cancel",
        )

    async def submit(self, app: str, arguments: Mapping[str, Any]) -> FalRequest:
        """Queue a request (store its ``request_id`` to resume it after a retry)."""
        _check_app(app)
        with span("fal submit", app=app) as current:
            data = await self._call("POST", f"{self.queue_url}/{app}", None, json=dict(arguments))
            if current is not None and isinstance(data.get("request_id"), str):
                current.set_attribute("cineqo.request_id", data["request_id"])
        request_id = data.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise FalRetryableError("fal submission answered without a request_id")
        built = self.request(app, request_id)
        urls = [data.get(name) for name in ("status_url", "response_url", "cancel_url")]
        given = [url for url in urls if isinstance(url, str) and self._same_origin(url)]
        if len(given) < 3:
            return built
        status_url, response_url, cancel_url = given
        return attrs.evolve(
            built, status_url=status_url, response_url=response_url, cancel_url=cancel_url
        )

    async def status(self, request: FalRequest, *, with_logs: bool = False) -> QueueStatus:
        params = {"logs": "1"} if with_logs else None
        data = await self._call("GET", request.status_url, request.request_id, params=params)
        return _queue_status(data, request.request_id)

    async def result(self, request: FalRequest) -> dict[str, Any]:
        """The result of a completed request (call after ``follow``)."""
        with span("fal result", request_id=request.request_id):
            return await self._call("GET", request.response_url, request.request_id)

    async def cancel(self, request: FalRequest) -> None:
        await self._call("PUT", request.cancel_url, request.request_id)

    async def follow(
        self,
        request: FalRequest,
        *,
        on_progress: ProgressCallback | None = None,
        interval: float = 1.0,
        max_polls: int | None = None,
        sleep: Sleep = anyio.sleep,
    ) -> QueueStatus:
        """Poll until completed, reporting each change (with new log lines) to ``on_progress``.

        After ``max_polls`` polls without completion, ``FalRetryableError``: the request
        goes on at fal.ai, and a retry can resume it with the same id.
        """
        seen_logs, last, polls = 0, None, 0
        while True:
            current = await self.status(request, with_logs=True)
            polls += 1
            fresh = current.logs[seen_logs:]
            seen_logs = max(seen_logs, len(current.logs))
            report = attrs.evolve(current, logs=fresh)
            if on_progress is not None and (fresh or attrs.evolve(report, logs=()) != last):
                await on_progress(report)
            last = attrs.evolve(report, logs=())
            if current.state == "completed":
                return report
            if max_polls is not None and polls >= max_polls:
                raise FalRetryableError(
                    f"fal request {request.request_id} is still {current.state} "
                    f"after {polls} polls",
                    request_id=request.request_id,
                )
            await sleep(interval)

    async def run(
        self,
        app: str,
        arguments: Mapping[str, Any],
        *,
        request_id: str | None = None,
        on_submitted: Callable[[str], Awaitable[None]] | None = None,
        on_progress: ProgressCallback | None = None,
        interval: float = 1.0,
        max_polls: int | None = None,
        sleep: Sleep = anyio.sleep,
    ) -> dict[str, Any]:
        """Submit (or resume ``request_id``), follow and return the result.

        ``on_submitted`` gets the new id before polling starts, so a handler can save it and
        a retried job resumes the paid-for request. An unknown ``request_id`` is resubmitted.
        """

        async def finish(request: FalRequest) -> dict[str, Any]:
            with span("fal wait", request_id=request.request_id):
                await self.follow(
                    request,
                    on_progress=on_progress,
                    interval=interval,
                    max_polls=max_polls,
                    sleep=sleep,
                )
            return await self.result(request)

        if request_id is not None:
            try:
                return await finish(self.request(app, request_id))
            except FalRequestNotFound:
                pass  # expired at fal.ai: pay for a new one
        request = await self.submit(app, arguments)
        if on_submitted is not None:
            await on_submitted(request.request_id)
        return await finish(request)

    # -- HTTP -------------------------------------------------------------------------------

    async def _call(
        self, method: str, url: str, request_id: str | None, **kwargs: Any
    ) -> dict[str, Any]:
        """One call, retried in place while that is safe and short; its JSON object."""
        try:
            for attempt in range(1, ATTEMPTS + 1):
                delay = await self._try(method, url, request_id, attempt, kwargs)
                if isinstance(delay, dict):
                    return delay
                await self.sleep(delay)
            raise AssertionError("unreachable: the last attempt raises")  # pragma: no cover
        except (FalPermanentError, FalRetryableError) as error:
            raise redact(error, self._secrets()) from None

    async def _try(
        self, method: str, url: str, request_id: str | None, attempt: int, kwargs: Any
    ) -> dict[str, Any] | float:
        """The answer's JSON object, or how long to wait before trying again."""
        import httpx

        last = attempt >= ATTEMPTS
        try:
            response = await self.http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
            if last or not (unsent or request_id is not None):
                raise classify_error(exc, request_id=request_id) from None
            return _backoff(attempt)
        if response.is_success:
            return _json_object(response, request_id)
        error = http_error(
            response.status_code, response_detail(response.content), response.headers, request_id
        )
        wait = getattr(error, "retry_after", None)
        if last or not _retry_in_place(response) or (wait is not None and wait > RETRY_CAP):
            raise error
        return _backoff(attempt) if wait is None else wait

    def _app_base(self, app: str) -> str:
        """``{queue}/[namespace/]{owner}/{alias}``: where an app's requests live."""
        _check_app(app)
        parts = app.split("/")
        segments = 3 if parts[0] in _NAMESPACES else 2
        if len(parts) < segments:
            raise FalConfigError(f"invalid fal app id {app!r} (expected {parts[0]}/owner/app)")
        return f"{self.queue_url}/{'/'.join(parts[:segments])}"

    def _same_origin(self, url: str) -> bool:
        ours, theirs = urlsplit(self.queue_url), urlsplit(url)
        return (theirs.scheme, theirs.netloc.lower()) == (ours.scheme, ours.netloc.lower())

    def _secrets(self) -> tuple[str, ...]:
        header = self.http.headers.get("authorization", "")
        return secret_parts(header.removeprefix("Key ").strip() or None)


def _retry_in_place(response: httpx.Response) -> bool:
    """Busy (408/409), or a gateway's error page rather than fal's own answer."""
    status = response.status_code
    if status in _IN_PLACE_STATUS:
        return True
    return status in _GATEWAY_STATUS and "x-fal-request-id" not in response.headers


def _backoff(attempt: int) -> float:
    return min(RETRY_BASE * 2.0 ** (attempt - 1), RETRY_CAP) * random.uniform(0.5, 1.5)


def _json_object(response: httpx.Response, request_id: str | None) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise FalRetryableError(
            f"{what(request_id)} answered HTTP {response.status_code} without a JSON object",
            request_id=request_id,
        )
    return data


def _queue_status(data: Mapping[str, Any], request_id: str) -> QueueStatus:
    state = _STATES.get(str(data.get("status")))
    if state is None:
        raise FalRetryableError(
            f"fal request {request_id} has an unknown status {data.get('status')!r}",
            request_id=request_id,
        )
    if state == "queued":
        position = data.get("queue_position")
        return QueueStatus(state="queued", position=position if isinstance(position, int) else None)
    raw_logs = data.get("logs")
    logs = tuple(_log_message(entry) for entry in raw_logs) if isinstance(raw_logs, list) else ()
    if state == "in_progress":
        return QueueStatus(state="in_progress", logs=logs)
    error, error_type = data.get("error"), data.get("error_type")
    return QueueStatus(
        state="completed",
        logs=logs,
        error=error if isinstance(error, str) else None,
        error_type=error_type if isinstance(error_type, str) else None,
    )


def _log_message(entry: Any) -> str:
    return str(entry.get("message", "")) if isinstance(entry, dict) else str(entry)


def _check_app(app: str) -> None:
    if not _APP_ID.fullmatch(app) or "/../" in f"/{app}/" or "/./" in f"/{app}/":
        raise FalConfigError(f"invalid fal app id {app!r} (expected owner/app[/path])")


def _check_key(key: str) -> None:
    if not key or any(ch.isspace() or ord(ch) < 32 for ch in key):
        raise FalConfigError("the fal.ai key is empty or contains whitespace")


def _check_queue_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise FalConfigError("FAL_QUEUE_URL must be an http:// or https:// URL")
    return url.rstrip("/")


def _user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"jobrunner-cineqo/{version('jobrunner-cineqo')}"
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "jobrunner-cineqo"
