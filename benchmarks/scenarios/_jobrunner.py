"""jobrunner adapter and worker.

Worker settings: `Runner(concurrency=500)` for no-op jobs (claims and completions batched
up to 500 per statement), uvloop when installed, log level warning (no per-job log lines).
Run as ``python -m benchmarks.scenarios._jobrunner --dsn … --handler … --expect …``.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import attrs
import psycopg

from benchmarks import _workerkit
from jobrunner import JobContext, NewJob, Plugin, Runner

JOB_TYPE = "bench.job"
CONCURRENCY = 500
SCHEMA = "public"


@attrs.frozen
class JobrunnerEnqueuer:
    runner: Runner

    async def enqueue(self, payload: dict[str, Any]) -> None:
        await self.runner.enqueue(JOB_TYPE, payload)

    async def enqueue_many(self, count: int) -> None:
        await self.runner.enqueue_many([NewJob(type=JOB_TYPE) for _ in range(count)])


@attrs.frozen(kw_only=True)
class JobrunnerAdapter:
    name: str = "jobrunner"
    jobs_cap: int | None = None
    url_prefix: str = ""

    async def install(self, dsn: str) -> None:
        async with Runner(dsn, worker=False, env={}):
            pass  # opening a runner applies the migrations

    @asynccontextmanager
    async def enqueuer(self, dsn: str) -> AsyncIterator[JobrunnerEnqueuer]:
        async with Runner(dsn, worker=False, env={}) as runner:
            yield JobrunnerEnqueuer(runner)

    def worker_command(
        self, dsn: str, *, handler: str, expect: int, concurrency: int | None
    ) -> list[str]:
        return [
            *_workerkit.python_module(__name__),
            *("--dsn", dsn, "--handler", handler, "--expect", str(expect)),
            *("--concurrency", str(concurrency or CONCURRENCY)),
        ]

    async def unfinished(self, dsn: str) -> int:
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM job WHERE status IN ('pending', 'running')"
            )
            (count,) = await cur.fetchone()
            return count


@attrs.frozen(kw_only=True)
class FifoAdapter(JobrunnerAdapter):
    """The tuned worker with fairness off for its job type: claims in strict FIFO order."""

    name: str = "jobrunner-fifo"

    async def install(self, dsn: str) -> None:
        async with Runner(dsn, worker=False, env={}) as runner:
            await runner.set_limits(JOB_TYPE, fair=False)


@attrs.frozen(kw_only=True)
class LimitedAdapter(JobrunnerAdapter):
    """The tuned worker with a cluster-wide concurrency of 1,000 on its type, above its own
    500: every claim locks the type's limits row and counts its running jobs."""

    name: str = "jobrunner-limited"

    async def install(self, dsn: str) -> None:
        async with Runner(dsn, worker=False, env={}) as runner:
            await runner.set_limits(JOB_TYPE, concurrency=1000)


async def main() -> None:
    args = _workerkit.parse_args()
    plugin = Plugin("bench")
    runner = Runner(
        args.dsn,
        plugins=[plugin],
        worker=False,
        env={},
        concurrency=args.concurrency or 500,
        log_level="warning",
    )
    tally = _workerkit.Tally(args, on_expected=runner.stop)

    @plugin.handler(JOB_TYPE, max_attempts=1)
    async def bench(ctx: JobContext) -> None:
        await tally.handle(ctx.payload)

    async with runner, anyio.create_task_group() as tg:

        async def signals() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
                async for _ in received:
                    runner.stop()

        tg.start_soon(signals)
        tally.start()
        await runner.run()
        tally.finish()
        tg.cancel_scope.cancel()


if __name__ == "__main__":
    try:
        import uvloop  # noqa: F401

        options = {"use_uvloop": True}
    except ImportError:
        options = {}
    anyio.run(main, backend_options=options)
