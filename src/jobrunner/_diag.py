"""The built-in `diag` plugin: tiny handlers for smoke tests, benchmarks and health probes."""

from __future__ import annotations

from typing import Any

import anyio

from ._context import JobContext
from ._errors import PayloadError, PermanentFailure, RateLimited
from ._plugin import Plugin

plugin = Plugin("diag")


@plugin.handler("diag.noop", max_attempts=1)
async def noop(ctx: JobContext) -> None:
    """Return at once."""
    return None


@plugin.handler("diag.sleep", max_attempts=1)
async def sleep(ctx: JobContext) -> dict[str, Any]:
    """Await `seconds` (default 1), reporting progress."""
    seconds = _number(ctx.payload, "seconds", 1.0)
    steps = max(1, min(int(seconds * 10), 100))
    for step in range(steps):
        await anyio.sleep(seconds / steps)
        ctx.progress((step + 1) / steps, f"slept {seconds * (step + 1) / steps:.1f}s")
    return {"slept": seconds}


@plugin.handler("diag.fail", max_attempts=3)
async def fail(ctx: JobContext) -> None:
    """Raise `message`; permanent when `permanent` is true; `rate_limited: seconds` raises
    RateLimited (the type pauses cluster-wide for that long)."""
    payload = ctx.payload if isinstance(ctx.payload, dict) else {}
    message = str(payload.get("message", "diag.fail was asked to fail"))
    if payload.get("rate_limited") is not None:
        raise RateLimited(message, retry_after=_number(payload, "rate_limited", 0.0))
    if payload.get("permanent"):
        raise PermanentFailure(message)
    raise RuntimeError(message)


def _number(payload: Any, key: str, default: float) -> float:
    if not isinstance(payload, dict):
        raise PayloadError(f"payload must be a JSON object, got {type(payload).__name__}")
    value = payload.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 86400:
        raise PayloadError(f"{key} must be a number of seconds between 0 and 86400, got {value!r}")
    return float(value)
