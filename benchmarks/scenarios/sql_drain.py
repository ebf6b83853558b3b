"""Bare-SQL ceiling: no-op drain, claiming batches of 100 and of 500."""

from __future__ import annotations

from typing import Any

from benchmarks._scenarios import Result, drain
from benchmarks.scenarios._sql import SqlAdapter

_batch_100 = drain(SqlAdapter(batch=100))
_batch_500 = drain(SqlAdapter(batch=500))


async def run(dsn: str, jobs: int, **options: Any) -> Result:
    small = await _batch_100(dsn, jobs, **options)
    # A fresh table for the second pass, so it does not start on a bloated one.
    await _reset(dsn)
    large = await _batch_500(dsn, jobs, **options)
    return {"jobs/s": small["jobs/s"], "jobs/s, batch 500": large["jobs/s"]}


async def _reset(dsn: str) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("DROP TABLE jobs")
