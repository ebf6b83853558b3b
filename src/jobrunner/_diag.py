"""The built-in `diag` plugin: tiny handlers for smoke tests, benchmarks and health probes."""

from __future__ import annotations

from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict, Field

from ._context import JobContext
from ._errors import ConfigurationError, PermanentFailure, RateLimited
from ._plugin import Plugin

plugin = Plugin("diag")


class SleepPayload(BaseModel):
    """What `diag.sleep` takes."""

    model_config = ConfigDict(extra="forbid", strict=True)

    seconds: float = Field(1.0, ge=0, le=86400, description="How long to sleep, in seconds.")


class FailPayload(BaseModel):
    """What `diag.fail` takes."""

    model_config = ConfigDict(extra="forbid", strict=True)

    message: str = Field(
        "diag.fail was asked to fail", max_length=10_000, description="The error to raise."
    )
    permanent: bool = Field(
        False, description="Fail for good at once (PermanentFailure) instead of being retried."
    )
    rate_limited: float | None = Field(
        None,
        ge=0,
        le=86400,
        description="Raise RateLimited with this retry_after (seconds): the type pauses.",
    )


@plugin.handler("diag.noop", max_attempts=1)
async def noop(ctx: JobContext) -> None:
    """Return at once; a payload's `usage` (`{"usage": {"tokens": 10}}`) is recorded as what
    the job spent, for tests and smoke checks of budgets."""
    payload = ctx.payload
    if isinstance(payload, dict) and "usage" in payload:
        usage = payload["usage"]
        if not isinstance(usage, dict):
            raise PermanentFailure(f"usage must be an object of amounts, not {usage!r}")
        try:
            ctx.record_usage(**usage)
        except ConfigurationError as exc:
            raise PermanentFailure(str(exc)) from None


@plugin.handler("diag.sleep", max_attempts=1, payload=SleepPayload)
async def sleep(ctx: JobContext[SleepPayload]) -> dict[str, Any]:
    """Await `seconds` (default 1), reporting progress."""
    seconds = ctx.data.seconds
    steps = max(1, min(int(seconds * 10), 100))
    for step in range(steps):
        await anyio.sleep(seconds / steps)
        ctx.progress((step + 1) / steps, f"slept {seconds * (step + 1) / steps:.1f}s")
    return {"slept": seconds}


@plugin.handler("diag.fail", max_attempts=3, payload=FailPayload)
async def fail(ctx: JobContext[FailPayload]) -> None:
    """Raise `message`; permanent when `permanent` is true; with `rate_limited` (seconds),
    raise RateLimited instead (the type pauses cluster-wide for that long)."""
    if ctx.data.rate_limited is not None:
        raise RateLimited(ctx.data.message, retry_after=ctx.data.rate_limited)
    if ctx.data.permanent:
        raise PermanentFailure(ctx.data.message)
    raise RuntimeError(ctx.data.message)
