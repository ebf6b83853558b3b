"""fal.ai image generation through ``fal_client``'s queue API.

Errors (whether to retry is said by the type)::

    FalPermanentError(ValueError)    do not retry: rejected input (4xx, e.g. 422), bad result
    ├── FalNsfwError                 the safety checker flagged a generated image
    └── FalRequestNotFound           the queue no longer knows a request id (submit anew)
    FalRetryableError(RuntimeError)  retry later: 408/409/425/429, 5xx, timeouts, transport
    FalConfigError(ValueError)       FAL_KEY missing or malformed, bad FAL_QUEUE_URL or app id

The API key never appears in an error, a log line or a ``repr``.
``fal_client`` and ``httpx`` are imported only when a client is opened or an error classified.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import anyio
import attrs

if TYPE_CHECKING:
    import fal_client
    import httpx

DEFAULT_QUEUE_URL = "https://queue.fal.run"
_APP_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)+")
_RETRYABLE_STATUS = frozenset({408, 409, 425, 429})

ProgressCallback = Callable[["QueueStatus"], Awaitable[None]]
T = TypeVar("T")
Sleep = Callable[[float], Awaitable[object]]


class FalPermanentError(ValueError):
    """fal.ai refused the request or its result; the same request will fail again."""

    def __init__(
        self, message: str, *, status_code: int | None = None, request_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.request_id = request_id


class FalNsfwError(FalPermanentError):
    """The safety checker flagged a generated image."""


class FalRequestNotFound(FalPermanentError):
    """The queue does not know this request id (it expired or never existed)."""


class FalRetryableError(RuntimeError):
    """fal.ai was busy or unreachable; trying again later may succeed."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.request_id = request_id
        self.retry_after = retry_after  # seconds, from a Retry-After header


class FalConfigError(ValueError):
    """The fal.ai configuration is missing or malformed."""


FalError = FalPermanentError | FalRetryableError


@attrs.frozen(kw_only=True)
class QueueStatus:
    """Where a request stands. ``logs`` holds log messages (only new ones from ``follow``)."""

    state: Literal["queued", "in_progress", "completed"]
    position: int | None = None
    logs: tuple[str, ...] = ()
    error: str | None = None
    error_type: str | None = None


@attrs.define
class FalImages:
    """Submit, poll and fetch fal.ai requests; every failure becomes a ``FalError``.

    Build it with ``async with FalImages.from_env(os.environ) as fal:`` or inject any
    ``fal_client.AsyncClient`` as ``FalImages(client=...)`` (the caller then owns it).
    """

    client: fal_client.AsyncClient = attrs.field(repr=False)
    queue_url: str = DEFAULT_QUEUE_URL

    @classmethod
    @asynccontextmanager
    async def open(
        cls, *, key: str, queue_url: str = DEFAULT_QUEUE_URL, http_timeout: float = 120.0
    ) -> AsyncIterator[FalImages]:
        """A client for ``key`` whose queue requests go to ``queue_url``; closed on exit."""
        _check_key(key)
        queue_url = _check_queue_url(queue_url)
        client_class, http = _routed_client(key=key, queue_url=queue_url, timeout=http_timeout)
        try:
            yield cls(
                client=client_class(key=key, default_timeout=http_timeout, http=http),
                queue_url=queue_url,
            )
        finally:
            await http.aclose()

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

    async def submit(self, app: str, arguments: Mapping[str, Any]) -> str:
        """Queue a request and return its id (store it to resume after a retry)."""
        _check_app(app)
        async with self._errors(None):
            handle = await self.client.submit(app, dict(arguments))
        return handle.request_id

    async def status(self, app: str, request_id: str, *, with_logs: bool = False) -> QueueStatus:
        _check_app(app)
        async with self._errors(request_id):
            raw = await self.client.status(app, request_id, with_logs=with_logs)
        return _queue_status(raw)

    async def result(self, app: str, request_id: str) -> dict[str, Any]:
        """The result of a completed request (call after ``follow``)."""
        _check_app(app)
        async with self._errors(request_id):
            return dict(await self.client.result(app, request_id))

    async def cancel(self, app: str, request_id: str) -> None:
        _check_app(app)
        async with self._errors(request_id):
            await self.client.cancel(app, request_id)

    async def follow(
        self,
        app: str,
        request_id: str,
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
            current = await self.status(app, request_id, with_logs=True)
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
                    f"fal request {request_id} is still {current.state} after {polls} polls",
                    request_id=request_id,
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
        follow = functools.partial(
            self.follow,
            on_progress=on_progress,
            interval=interval,
            max_polls=max_polls,
            sleep=sleep,
        )
        if request_id is not None:
            try:
                await follow(app, request_id)
                return await self.result(app, request_id)
            except FalRequestNotFound:
                pass  # expired at fal.ai: pay for a new one
        request_id = await self.submit(app, arguments)
        if on_submitted is not None:
            await on_submitted(request_id)
        await follow(app, request_id)
        return await self.result(app, request_id)

    @asynccontextmanager
    async def _errors(self, request_id: str | None) -> AsyncIterator[None]:
        try:
            yield
        except Exception as exc:
            error = classify_error(exc, request_id=request_id)
            secrets = _secret_parts(getattr(self.client, "key", None))
            error.args = tuple(_redact(str(arg), secrets) for arg in error.args)
            if error is exc:
                raise
            # A cause that quotes the key would print it in every traceback: drop it then.
            leaks = any(secret in str(exc) for secret in secrets)
            raise error from (None if leaks else exc)


def _secret_parts(key: str | None) -> tuple[str, ...]:
    """The key, and its secret half for ``id:secret`` keys, longest first."""
    if not key:
        return ()
    parts = {key, key.partition(":")[2]}
    return tuple(sorted((p for p in parts if len(p) >= 4), key=len, reverse=True))


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def classify_error(exc: BaseException, *, request_id: str | None = None) -> FalError:
    """The ``FalError`` to raise for ``exc``: permanent for 4xx, retryable for the rest.

    A 404 while a ``request_id`` is known means the request is gone (``FalRequestNotFound``).
    Anything unexpected (a malformed response, an unknown error) counts as retryable: the
    job runner bounds attempts, and a transient proxy page should not fail a job for good.
    """
    import fal_client
    import httpx

    if isinstance(exc, FalPermanentError | FalRetryableError):
        return exc
    if isinstance(exc, fal_client.FalClientHTTPError):
        detail = _format_detail(exc.message, exc.error_type)
        return _http_error(exc.status_code, detail, exc.response_headers, request_id)
    if isinstance(exc, httpx.HTTPStatusError):
        response = exc.response
        return _http_error(response.status_code, response.text[:500], response.headers, request_id)
    what = f"fal request {request_id}" if request_id else "fal submission"
    if isinstance(exc, fal_client.FalClientTimeoutError | httpx.TimeoutException | TimeoutError):
        return FalRetryableError(f"{what} timed out", request_id=request_id)
    if isinstance(exc, httpx.TransportError | OSError):
        reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
        return FalRetryableError(f"{what} could not reach fal.ai ({reason})", request_id=request_id)
    return FalRetryableError(
        f"{what} failed unexpectedly ({type(exc).__name__}: {exc})", request_id=request_id
    )


def _http_error(
    status: int, detail: str, headers: Mapping[str, str], request_id: str | None
) -> FalError:
    what = f"fal request {request_id}" if request_id else "fal submission"
    message = f"{what} failed with HTTP {status}" + (f": {detail}" if detail else "")
    if status == 404 and request_id is not None:
        return FalRequestNotFound(message, status_code=status, request_id=request_id)
    if 400 <= status < 500 and status not in _RETRYABLE_STATUS:
        return FalPermanentError(message, status_code=status, request_id=request_id)
    retry_after = _retry_after(headers)
    return FalRetryableError(
        message, status_code=status, request_id=request_id, retry_after=retry_after
    )


def _format_detail(detail: Any, error_type: str | None) -> str:
    """fal's ``detail``: a string, or a list of pydantic-style ``{"loc","msg"}`` entries."""
    if isinstance(detail, list):
        text = "; ".join(_format_item(item) for item in detail)
    elif isinstance(detail, str):
        text = detail
    else:
        text = json.dumps(detail, ensure_ascii=False, default=str)
    if error_type:
        text = f"{text} [{error_type}]"
    return text[:500]


def _format_item(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    loc = [str(part) for part in item.get("loc", []) if part != "body"]
    message = str(item.get("msg", item))
    return f"{'.'.join(loc)}: {message}" if loc else message


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = {k.lower(): v for k, v in headers.items()}.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date; the runner's own backoff applies


def _queue_status(raw: Any) -> QueueStatus:
    import fal_client

    if isinstance(raw, fal_client.Queued):
        return QueueStatus(state="queued", position=raw.position)
    logs = tuple(_log_message(entry) for entry in (raw.logs or ()))
    if isinstance(raw, fal_client.Completed):
        return QueueStatus(state="completed", logs=logs, error=raw.error, error_type=raw.error_type)
    return QueueStatus(state="in_progress", logs=logs)


def _log_message(entry: Any) -> str:
    return str(entry.get("message", "")) if isinstance(entry, dict) else str(entry)


def _check_app(app: str) -> None:
    if not _APP_ID.fullmatch(app) or "/../" in f"/{app}/" or "/./" in f"/{app}/":
        raise FalConfigError(f"invalid fal app id {app!r} (expected owner/app[/path])")


def _check_key(key: str) -> None:
    if not key or any(ch.isspace() or ord(ch) < 32 for ch in key):
        raise FalConfigError("the fal.ai key is empty or contains whitespace")


def _check_queue_url(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise FalConfigError("FAL_QUEUE_URL must be an http:// or https:// URL")
    return url.rstrip("/")


def _routed_client(*, key: str, queue_url: str, timeout: float) -> tuple[type, httpx.AsyncClient]:
    """fal's client class that uses our httpx client, and that httpx client.

    ``fal_client`` builds queue URLs from a module-wide https constant. Rather than change
    that constant for the whole process, requests to it are rerouted by this client's own
    transport; ``status_url``/``response_url`` given back by the queue are followed as they are.
    """
    import httpx
    from fal_client import client as fal_module

    routed_class, route_transport = _client_classes()
    transport: httpx.AsyncBaseTransport = fal_module.AsyncBackupDomainTransport()
    if queue_url != DEFAULT_QUEUE_URL:
        default = httpx.URL(fal_module.QUEUE_URL_FORMAT)
        transport = route_transport(default=default, target=httpx.URL(queue_url), inner=transport)
    http = httpx.AsyncClient(
        transport=transport,
        headers={"Authorization": f"Key {key}", "User-Agent": fal_module.USER_AGENT},
        timeout=timeout,
    )
    return routed_class, http


@functools.cache
def _client_classes() -> tuple[type, type]:
    # Defined on first use so that importing this module does not import fal_client or httpx.
    import fal_client
    import httpx

    class RoutedAsyncClient(fal_client.AsyncClient):
        """``fal_client.AsyncClient`` whose HTTP client is given rather than built inside."""

        def __init__(self, *, key: str, default_timeout: float, http: httpx.AsyncClient) -> None:
            super().__init__(key=key, default_timeout=default_timeout)
            self._http = http

        @property
        def _client(self) -> Awaitable[httpx.AsyncClient]:  # replaces fal's own
            return _ready(self._http)

    class QueueRouteTransport(httpx.AsyncBaseTransport):
        """Sends requests for fal's default queue host to ``target`` instead."""

        def __init__(
            self, *, default: httpx.URL, target: httpx.URL, inner: httpx.AsyncBaseTransport
        ) -> None:
            self._default, self._target, self._inner = default, target, inner

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            url = request.url
            if url.scheme == self._default.scheme and url.netloc == self._default.netloc:
                path = self._target.raw_path.rstrip(b"/") + url.raw_path
                new_url = self._target.copy_with(raw_path=path)
                headers = request.headers.copy()
                headers["Host"] = new_url.netloc.decode("ascii")
                request = httpx.Request(
                    request.method,
                    new_url,
                    headers=headers,
                    stream=request.stream,
                    extensions=request.extensions,
                )
            return await self._inner.handle_async_request(request)

        async def aclose(self) -> None:
            await self._inner.aclose()

    return RoutedAsyncClient, QueueRouteTransport


async def _ready(value: T) -> T:
    return value
