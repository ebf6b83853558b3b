"""PgQueuer adapter and worker (asyncpg driver, uvloop, as PgQueuer's own benchmark runs).

Worker settings: ``QueueManager.run(batch_size=100, max_concurrent_tasks=200)``, one
entrypoint with ``concurrency_limit=0`` (unlimited), default durability (all tables logged).
Run as ``python -m benchmarks.scenarios._pgqueuer --dsn … --handler … --expect …``.
"""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import attrs
from pgqueuer import AsyncpgDriver, Job, Queries, QueueManager

from benchmarks import _workerkit

ENTRYPOINT = "bench"
BATCH_SIZE = 100
MAX_CONCURRENT_TASKS = 200


@attrs.frozen
class PgQueuerEnqueuer:
    queries: Queries

    async def enqueue(self, payload: dict[str, Any]) -> None:
        await self.queries.enqueue(ENTRYPOINT, json.dumps(payload).encode(), 0)

    async def enqueue_many(self, count: int) -> None:
        await self.queries.enqueue([ENTRYPOINT] * count, [b""] * count, [0] * count)


@attrs.frozen(kw_only=True)
class PgQueuerAdapter:
    name: str = "PgQueuer"
    jobs_cap: int | None = None

    async def install(self, dsn: str) -> None:
        async with _queries(dsn) as queries:
            await queries.install()

    @asynccontextmanager
    async def enqueuer(self, dsn: str) -> AsyncIterator[PgQueuerEnqueuer]:
        async with _queries(dsn) as queries:
            yield PgQueuerEnqueuer(queries)

    def worker_command(
        self, dsn: str, *, handler: str, expect: int, concurrency: int | None
    ) -> list[str]:
        return [
            *_workerkit.python_module(__name__),
            *("--dsn", dsn, "--handler", handler, "--expect", str(expect)),
            *("--concurrency", str(concurrency or MAX_CONCURRENT_TASKS)),
        ]

    async def unfinished(self, dsn: str) -> int:
        async with _queries(dsn) as queries:
            # Finished jobs leave the queue table for the log table.
            return sum(row.count for row in await queries.queue_size())


@asynccontextmanager
async def _queries(dsn: str) -> AsyncIterator[Queries]:
    conn = await asyncpg.connect(dsn)
    try:
        yield Queries(AsyncpgDriver(conn))
    finally:
        await conn.close()


async def main() -> None:
    import asyncio

    args = _workerkit.parse_args()
    async with _queries(args.dsn) as queries:
        qm = QueueManager(queries)
        tally = _workerkit.Tally(args, on_expected=qm.shutdown.set)

        @qm.entrypoint(ENTRYPOINT, concurrency_limit=0)
        async def bench(job: Job) -> None:
            await tally.handle(_workerkit.decode_payload(job.payload))

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, qm.shutdown.set)
        tally.start()
        await qm.run(batch_size=BATCH_SIZE, max_concurrent_tasks=args.concurrency)
        tally.finish()


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
