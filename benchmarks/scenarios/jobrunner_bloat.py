"""jobrunner: no-op drain with 1,000,000 finished jobs already in the table.

The claim index is partial (pending rows only), so finished rows should not slow claiming;
this measures it. Compare with ``jobrunner_drain`` in the same table.
"""

from __future__ import annotations

from typing import Any

from benchmarks import _db
from benchmarks._scenarios import DEFAULT_TIMEOUT, Result, _throughput
from benchmarks.scenarios._jobrunner import JobrunnerAdapter

FINISHED_ROWS = 1_000_000


async def run(dsn: str, jobs: int, **options: Any) -> Result:
    adapter = JobrunnerAdapter()
    await adapter.install(dsn)
    await _db.insert_generated_rows(
        dsn,
        "job",
        {
            "type": "'bench.job'",
            "status": "'completed'",
            "payload": "'{}'::jsonb",
            "attempts": "1",
            "max_attempts": "1",
            "created_at": "now() - interval '2 days' + g.i * interval '1 ms'",
            "started_at": "now() - interval '2 days' + g.i * interval '1 ms'",
            "finished_at": "now() - interval '2 days' + g.i * interval '1 ms'",
            # Finished rows need no fair turn; naming it skips the turn trigger, whose per-row
            # update of one user's turn row grows with the statement (docs/limits.md).
            "turn": "0",
        },
        FINISHED_ROWS,
    )
    await _db.vacuum_analyze(dsn)
    timeout = float(options.get("timeout", DEFAULT_TIMEOUT))
    measured = await _throughput(
        adapter, dsn, jobs, handler="noop", concurrency=None, timeout=timeout
    )
    return {f"{metric}, 1M finished rows": value for metric, value in measured.items()}
