"""Reliability plugin `relbad`: handlers that return or raise hostile values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

import jobrunner

plugin = jobrunner.Plugin("relbad")
QUICK = jobrunner.RetryPolicy(base=0.1, factor=1, cap=0.1, jitter=0)
SQL_TYPE = "bad.sql'); DROP TABLE job; --"


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


RESULTS: dict[str, Callable[[], Any]] = {
    "set": lambda: {"s": {1, 2}},
    "object": object,
    "bytes": lambda: b"raw bytes",
    "nan": lambda: float("nan"),
    "inf": lambda: {"x": float("inf")},
    "nul": lambda: "a\x00b",
    "surrogate": lambda: {"text": "lone \ud800 surrogate"},
    "huge": lambda: "x" * (200 << 20),
    "deep": lambda: _deep(100_000),
    "ok": lambda: {"fine": True},
}
ERRORS: dict[str, Callable[[], BaseException]] = {
    "enormous": lambda: RuntimeError("E" * 1_000_000),
    "nul": lambda: RuntimeError("before\x00after"),
    "surrogate": lambda: RuntimeError("lone \udcff surrogate"),
    "sql": lambda: RuntimeError("'); DROP TABLE job; --"),
    "empty": lambda: RuntimeError(),
}


@plugin.handler("bad.result", max_attempts=2, retry=QUICK)
async def result(ctx: jobrunner.JobContext) -> Any:
    """Return the hostile value named by payload['kind']."""
    return RESULTS[ctx.payload["kind"]]()


@plugin.handler("bad.raise", max_attempts=2, retry=QUICK)
async def raise_(ctx: jobrunner.JobContext) -> None:
    """Raise the hostile error named by payload['kind']."""
    raise ERRORS[ctx.payload["kind"]]()


@plugin.handler("bad.progress", max_attempts=1)
async def progress(ctx: jobrunner.JobContext) -> str:
    """Report progress with payload['message'] (decoded from escapes), then finish."""
    ctx.progress(0.5, ctx.payload["message"].encode().decode("unicode_escape"))
    await anyio.sleep(1.3)  # the progress loop stores reports once a second
    return "done"


@plugin.handler("bad.echo", max_attempts=1)
async def echo(ctx: jobrunner.JobContext) -> dict[str, Any]:
    """Return what the job was given."""
    return {"payload": ctx.payload, "user_id": ctx.user_id, "queue": ctx.job.queue}


@plugin.handler(SQL_TYPE, max_attempts=1)
async def sql_named(ctx: jobrunner.JobContext) -> str:
    """A job type whose name looks like SQL."""
    return ctx.type
