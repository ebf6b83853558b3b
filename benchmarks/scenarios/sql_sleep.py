"""The ideal for the 10 ms handler at concurrency 200: 200 / 10 ms. Computed, not measured."""

from __future__ import annotations

from typing import Any

from benchmarks._scenarios import SLEEP_CONCURRENCY, Result
from benchmarks._workerkit import SLEEP_SECONDS


async def run(dsn: str, jobs: int, **options: Any) -> Result:
    return {
        "jobs/s": SLEEP_CONCURRENCY / SLEEP_SECONDS,
        "note": "bare SQL, 10 ms handler: the ideal concurrency / 10 ms, computed, not measured",
    }
