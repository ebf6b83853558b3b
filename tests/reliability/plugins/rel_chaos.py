"""Reliability plugin `relchaos`: a job whose side effect is a row in its own table.

`chaos.work` sleeps `ms` milliseconds, inserts (job_id, attempt, pid) into `side` and returns
the pid and attempt that produced the result. Side effects go through one plain connection
per process to SIDE_DATABASE_URL (no pool, so every pool message in a worker's log is
jobrunner's own, and a test can cut the worker's jobrunner connections and leave these be).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
import attrs
import psycopg
from psycopg import sql

import jobrunner

plugin = jobrunner.Plugin("relchaos")
FAST = jobrunner.RetryPolicy(base=0.2, factor=2, cap=1.0, jitter=0.5)
LEASE = float(os.environ.get("CHAOS_LEASE", "2"))


@attrs.define
class Side:
    """One connection, shared by the process's jobs, opened again after a failure."""

    url: str
    table: sql.Composable
    conn: psycopg.AsyncConnection[Any] | None = None
    lock: anyio.Lock = attrs.field(factory=anyio.Lock)

    async def record(self, job_id: int, attempt: int) -> None:
        query = sql.SQL("INSERT INTO {} (job_id, attempt, pid) VALUES (%s, %s, %s)")
        async with self.lock:
            if self.conn is None or self.conn.closed:
                self.conn = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, connect_timeout=5
                )
            try:
                await self.conn.execute(query.format(self.table), [job_id, attempt, os.getpid()])
            except psycopg.OperationalError:
                await self.conn.close()
                raise


@plugin.resource("side")
async def side(env: Mapping[str, str]) -> AsyncIterator[Side]:
    recorder = Side(env["SIDE_DATABASE_URL"], sql.Identifier(env["JOBRUNNER_SCHEMA"], "side"))
    try:
        yield recorder
    finally:
        if recorder.conn is not None:
            await recorder.conn.close()


@plugin.handler("chaos.work", lease=LEASE, max_attempts=50, retry=FAST, requires=("side",))
async def work(ctx: jobrunner.JobContext) -> dict[str, Any]:
    """Sleep, then record the side effect."""
    await anyio.sleep(ctx.payload["ms"] / 1000)
    await ctx.resource("side").record(ctx.id, ctx.attempt)
    return {"pid": os.getpid(), "attempt": ctx.attempt}
