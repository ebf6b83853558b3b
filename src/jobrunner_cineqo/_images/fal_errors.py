"""fal.ai failures, and which of them are worth trying again (pure, but for `classify_error`).

Errors (whether to retry is said by the type)::

    FalPermanentError(ValueError)    do not retry: rejected input (4xx, e.g. 422), bad result
    ├── FalNsfwError                 the safety checker flagged a generated image
    └── FalRequestNotFound           the queue no longer knows a request id (submit anew)
    FalRetryableError(RuntimeError)  retry later: 408/409/425, 5xx, timeouts, transport
    └── FalRateLimited               a 429: every worker should stop calling fal for a while
    FalConfigError(ValueError)       FAL_KEY missing or malformed, bad FAL_QUEUE_URL or app id

`retry_after` is fal's `Retry-After` (seconds or an HTTP date), None without one. Messages
never hold the API key: `redact` takes it out of anything fal echoes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .._retry_after import retry_after

RETRYABLE_STATUS = frozenset({408, 409, 425, 429})


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


class FalRateLimited(FalRetryableError):
    """fal.ai answered 429 Too Many Requests."""


class FalConfigError(ValueError):
    """The fal.ai configuration is missing or malformed."""


FalError = FalPermanentError | FalRetryableError


def what(request_id: str | None) -> str:
    """How a message names the call: "fal request <id>", or "fal submission"."""
    return f"fal request {request_id}" if request_id else "fal submission"


def http_error(
    status: int, detail: str, headers: Mapping[str, str], request_id: str | None
) -> FalError:
    """The error for an HTTP answer that is not a success."""
    message = f"{what(request_id)} failed with HTTP {status}" + (f": {detail}" if detail else "")
    if status == 404 and request_id is not None:
        return FalRequestNotFound(message, status_code=status, request_id=request_id)
    if 400 <= status < 500 and status not in RETRYABLE_STATUS:
        return FalPermanentError(message, status_code=status, request_id=request_id)
    kind = FalRateLimited if status == 429 else FalRetryableError
    return kind(
        message, status_code=status, request_id=request_id, retry_after=retry_after(headers)
    )


def classify_error(exc: BaseException, *, request_id: str | None = None) -> FalError:
    """The `FalError` for an exception raised while talking to fal.ai.

    Anything unexpected (a malformed response, an unknown error) counts as retryable: the job
    runner bounds attempts, and a transient proxy page should not fail a job for good.
    """
    import httpx

    if isinstance(exc, FalPermanentError | FalRetryableError):
        return exc
    if isinstance(exc, httpx.HTTPStatusError):
        response = exc.response
        detail = response_detail(response.content)
        return http_error(response.status_code, detail, response.headers, request_id)
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return FalRetryableError(f"{what(request_id)} timed out", request_id=request_id)
    if isinstance(exc, httpx.TransportError | OSError):
        reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
        return FalRetryableError(
            f"{what(request_id)} could not reach fal.ai ({reason})", request_id=request_id
        )
    return FalRetryableError(
        f"{what(request_id)} failed unexpectedly ({type(exc).__name__}: {exc})",
        request_id=request_id,
    )


def response_detail(body: bytes) -> str:
    """fal's `detail` (and `error_type`) from an error body, else the body's start."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return body[:500].decode("utf-8", "replace").strip()
    if not isinstance(data, dict) or "detail" not in data:
        return json.dumps(data, ensure_ascii=False)[:500]
    detail = data["detail"]
    if isinstance(detail, list):
        text = "; ".join(_format_item(item) for item in detail)
    elif isinstance(detail, str):
        text = detail
    else:
        text = json.dumps(detail, ensure_ascii=False, default=str)
    if isinstance(data.get("error_type"), str):
        text = f"{text} [{data['error_type']}]"
    return text[:500]


def _format_item(item: Any) -> str:
    """A pydantic-style `{"loc": ["body", "prompt"], "msg": …}` entry as "prompt: …"."""
    if not isinstance(item, dict):
        return str(item)
    loc = [str(part) for part in item.get("loc", []) if part != "body"]
    message = str(item.get("msg", item))
    return f"{'.'.join(loc)}: {message}" if loc else message


def secret_parts(key: str | None) -> tuple[str, ...]:
    """The key, and its secret half for `id:secret` keys, longest first."""
    if not key:
        return ()
    parts = {key, key.partition(":")[2]}
    return tuple(sorted((p for p in parts if len(p) >= 4), key=len, reverse=True))


def redact(error: FalError, secrets: tuple[str, ...]) -> FalError:
    """`error` with every secret in its message replaced by `***`."""
    for secret in secrets:
        error.args = tuple(str(arg).replace(secret, "***") for arg in error.args)
    return error
