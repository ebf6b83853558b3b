"""Procrastinate adapter and worker (psycopg connector, its asyncio ``Worker``).

Worker settings: ``concurrency=10`` for no-op jobs (10, 24 and 50 measured alike here;
10 was a little ahead), a pool of concurrency + 2 connections (at most 50), LISTEN/NOTIFY
on, jobs kept after completion (``delete_jobs="never"``, the default). Procrastinate
fetches and finishes jobs one by one (~250-360 jobs/s here), so throughput scenarios use
at most ``JOBS_CAP`` jobs to stay within the time budget.
Run as ``python -m benchmarks.scenarios._procrastinate --dsn … --handler … --expect …``.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
from procrastinate import App, PsycopgConnector
from procrastinate.worker import Worker

from benchmarks import _workerkit

TASK = "bench"
DRAIN_CONCURRENCY = 10
MAX_POOL = 50
JOBS_CAP = 3_000
UNFINISHED = "SELECT count(*) AS n FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"


def _app(dsn: str, pool: int, handle: Callable[[dict[str, Any]], Any] | None = None) -> App:
    app = App(connector=PsycopgConnector(conninfo=dsn, min_size=1, max_size=pool))

    @app.task(name=TASK)
    async def bench(**payload: Any) -> None:
        if handle is not None:
            await handle(payload)

    return app


@attrs.frozen
class ProcrastinateEnqueuer:
    app: App

    async def enqueue(self, payload: dict[str, Any]) -> None:
        await self.app.tasks[TASK].defer_async(**payload)

    async def enqueue_many(self, count: int) -> None:
        await self.app.tasks[TASK].batch_defer_async(*({} for _ in range(count)))


@attrs.frozen(kw_only=True)
class ProcrastinateAdapter:
    name: str = "Procrastinate"
    jobs_cap: int | None = JOBS_CAP

    async def install(self, dsn: str) -> None:
        async with _app(dsn, 2).open_async() as app:
            await app.schema_manager.apply_schema_async()

    @asynccontextmanager
    async def enqueuer(self, dsn: str) -> AsyncIterator[ProcrastinateEnqueuer]:
        async with _app(dsn, 2).open_async() as app:
            yield ProcrastinateEnqueuer(app)

    def worker_command(
        self, dsn: str, *, handler: str, expect: int, concurrency: int | None
    ) -> list[str]:
        return [
            *_workerkit.python_module(__name__),
            *("--dsn", dsn, "--handler", handler, "--expect", str(expect)),
            *("--concurrency", str(concurrency or DRAIN_CONCURRENCY)),
        ]

    async def unfinished(self, dsn: str) -> int:
        async with _app(dsn, 2).open_async() as app:
            row = await app.connector.execute_query_one_async(UNFINISHED)
        return int(row["n"])


async def main() -> None:
    args = _workerkit.parse_args()
    concurrency = args.concurrency or DRAIN_CONCURRENCY
    tally = _workerkit.Tally(args)
    app = _app(args.dsn, min(concurrency + 2, MAX_POOL), tally.handle)
    async with app.open_async():
        worker = Worker(app, concurrency=concurrency, install_signal_handlers=False)
        tally.on_expected = worker.stop
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        tally.start()
        await worker.run()
        tally.finish()


if __name__ == "__main__":
    asyncio.run(main())
