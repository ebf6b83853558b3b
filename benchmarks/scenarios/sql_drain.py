"""Bare-SQL ceiling: no-op drain, claiming batches of 100 and of 500.

The ceiling's ``jobs/s`` (and CPU per job) is the better of the two batch sizes, since a
library may batch either way; both are reported too.
"""

from __future__ import annotations

from typing import Any

import psycopg

from benchmarks._scenarios import Result, drain
from benchmarks.scenarios._sql import SqlAdapter

_batch_100 = drain(SqlAdapter(batch=100))
_batch_500 = drain(SqlAdapter(batch=500))


async def run(dsn: str, jobs: int, **options: Any) -> Result:
    small = await _batch_100(dsn, jobs, **options)
    # A fresh table for the second pass, so it does not start on a bloated one.
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("DROP TABLE jobs")
    large = await _batch_500(dsn, jobs, **options)
    best = max(small, large, key=lambda result: float(result["jobs/s"]))
    return {
        "jobs/s": best["jobs/s"],
        "worker CPU µs/job": best["worker CPU µs/job"],
        "jobs/s, batch 100": small["jobs/s"],
        "jobs/s, batch 500": large["jobs/s"],
    }
