"""Generic scenarios, parametrised by a library adapter.

A scenario module can be as small as ``run = drain(ADAPTER)``. Each built ``run`` has the
plug-in signature ``async def run(dsn: str, jobs: int, **options) -> dict[str, float | str]``
and returns metrics (plus an optional ``"note"``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import anyio

from benchmarks import _db, _procfs
from benchmarks._wirecount import CountingProxy, counting_proxy
from benchmarks._workerproc import WorkerError, WorkerProcess, start_worker

Result = dict[str, float | str]
Scenario = Callable[..., Awaitable[Result]]

DEFAULT_TIMEOUT = 150.0
BULK_ENQUEUE = 10_000
SINGLE_ENQUEUE = 2_000
LATENCY_SAMPLES = 200
LATENCY_GAP = 0.005
WARMUP_JOBS = 10
SLEEP_CONCURRENCY = 200
IDLE_SETTLE = 12.0  # PostgreSQL may hold a backend's stats up to 10 s before flushing
IDLE_WINDOW = 10.0


class Enqueuer(Protocol):
    async def enqueue(self, payload: dict[str, Any]) -> None:
        """Enqueue one job, committed when this returns."""

    async def enqueue_many(self, count: int) -> None:
        """Enqueue ``count`` no-op jobs with the library's bulk API."""


class Adapter(Protocol):
    """What the generic scenarios need from a library (see README.md, "Adding a scenario")."""

    @property
    def name(self) -> str:
        """Display name, used in notes and errors."""

    @property
    def jobs_cap(self) -> int | None:
        """Throughput scenarios use at most this many jobs (None: no cap)."""

    async def install(self, dsn: str) -> None:
        """Create the library's schema in the (fresh, empty) database."""

    def enqueuer(self, dsn: str) -> AbstractAsyncContextManager[Enqueuer]:
        """A client with an open connection, as an application would hold one."""

    def worker_command(
        self, dsn: str, *, handler: str, expect: int, concurrency: int | None
    ) -> list[str]:
        """Command line of one worker process speaking the protocol of ``_workerproc``.

        ``concurrency`` None means the library's own best setting for no-op jobs.
        """

    async def unfinished(self, dsn: str) -> int:
        """Jobs not yet finished (checked after a throughput run: must be 0)."""


def _capped(adapter: Adapter, jobs: int) -> tuple[int, Result]:
    cap = adapter.jobs_cap
    if cap is not None and jobs > cap:
        return cap, {"note": f"{adapter.name}: {cap:,} jobs instead of {jobs:,} (too slow)"}
    return jobs, {}


async def _throughput(
    adapter: Adapter,
    dsn: str,
    count: int,
    *,
    handler: str,
    concurrency: int | None,
    timeout: float,
    log_lines: bool = False,
) -> Result:
    """Enqueue ``count`` jobs, run one worker until all are done: jobs/s and CPU per job.

    ``log_lines``: also report the lines the worker wrote to stderr (its log) per job.
    """
    await adapter.install(dsn)
    async with adapter.enqueuer(dsn) as enqueuer:
        await enqueuer.enqueue_many(count)
    command = adapter.worker_command(dsn, handler=handler, expect=count, concurrency=concurrency)
    async with start_worker(command) as worker:
        try:
            done = await worker.wait_for("done", timeout)
        except TimeoutError as exc:
            raise WorkerError(f"timeout: {adapter.name} did not finish {count} jobs") from exc
        lines = worker.stderr_lines()
    left = await adapter.unfinished(dsn)
    if left:
        raise WorkerError(f"{adapter.name}: {left} jobs still unfinished after the worker stopped")
    result: Result = {"jobs/s": count / float(done["elapsed"])}
    if "cpu" in done:
        # The worker's own CPU per job: far less sensitive than jobs/s to a busy machine.
        result["worker CPU µs/job"] = float(done["cpu"]) / count * 1e6
    if log_lines:
        result["log lines/job"] = lines / count
    return result


def drain(adapter: Adapter, *, concurrency: int | None = None, log_lines: bool = False) -> Scenario:
    """No-op drain: N jobs enqueued in bulk beforehand, one worker, time until all done."""

    async def run(dsn: str, jobs: int, **options: Any) -> Result:
        count, extra = _capped(adapter, jobs)
        timeout = float(options.get("timeout", DEFAULT_TIMEOUT))
        result = await _throughput(
            adapter,
            dsn,
            count,
            handler="noop",
            concurrency=concurrency,
            timeout=timeout,
            log_lines=log_lines,
        )
        return {**result, **extra}

    return run


def sleep(adapter: Adapter, *, log_lines: bool = False) -> Scenario:
    """Handler awaiting 10 ms at concurrency 200 (ideal: 20,000 jobs/s)."""

    async def run(dsn: str, jobs: int, **options: Any) -> Result:
        count, extra = _capped(adapter, jobs)
        timeout = float(options.get("timeout", DEFAULT_TIMEOUT))
        result = await _throughput(
            adapter,
            dsn,
            count,
            handler="sleep",
            concurrency=SLEEP_CONCURRENCY,
            timeout=timeout,
            log_lines=log_lines,
        )
        return {**result, **extra}

    return run


async def _warm_up(worker: WorkerProcess, enqueuer: Enqueuer) -> None:
    for _ in range(WARMUP_JOBS):
        await enqueuer.enqueue({"t": time.time()})
        await worker.wait_for("job", 30.0)


def latency(adapter: Adapter) -> Scenario:
    """Enqueue→start latency with an idle worker: one job at a time, from another process."""

    async def run(dsn: str, jobs: int, **options: Any) -> Result:
        await adapter.install(dsn)
        command = adapter.worker_command(dsn, handler="latency", expect=0, concurrency=None)
        samples: list[float] = []
        async with start_worker(command) as worker, adapter.enqueuer(dsn) as enqueuer:
            await _warm_up(worker, enqueuer)
            for _ in range(LATENCY_SAMPLES):
                await anyio.sleep(LATENCY_GAP)
                await enqueuer.enqueue({"t": time.time()})
                event = await worker.wait_for("job", 10.0)
                samples.append(float(event["lat_ms"]))
            await worker.stop()
        return {
            "median ms": statistics.median(samples),
            "p99 ms": statistics.quantiles(samples, n=100, method="inclusive")[98],
        }

    return run


def enqueue(adapter: Adapter) -> Scenario:
    """Bulk enqueue of 10k jobs in one call, and single enqueues one after another."""

    async def run(dsn: str, jobs: int, **options: Any) -> Result:
        await adapter.install(dsn)
        bulk = min(BULK_ENQUEUE, jobs)
        async with adapter.enqueuer(dsn) as enqueuer:
            await enqueuer.enqueue({})  # warm: connection, prepared statements
            started = time.perf_counter()
            await enqueuer.enqueue_many(bulk)
            bulk_rate = bulk / (time.perf_counter() - started)
            started = time.perf_counter()
            for _ in range(SINGLE_ENQUEUE):
                await enqueuer.enqueue({})
            single_rate = SINGLE_ENQUEUE / (time.perf_counter() - started)
        return {"bulk 10k jobs/s": bulk_rate, "single jobs/s": single_rate}

    return run


def idle(adapter: Adapter) -> Scenario:
    """A freshly started, idle worker for 10 s: its queries/s, CPU % and RSS."""

    async def run(dsn: str, jobs: int, **options: Any) -> Result:
        await adapter.install(dsn)
        await _db.vacuum_analyze(dsn)
        database = dsn.rsplit("/", 1)[1]
        async with counting_proxy(dsn) as proxy:
            command = adapter.worker_command(
                proxy.dsn, handler="latency", expect=0, concurrency=None
            )
            async with start_worker(command) as worker:
                # No warm-up jobs: a LISTENing backend commits one transaction per NOTIFY
                # it receives and may publish that count at any later time.
                await anyio.sleep(IDLE_SETTLE)
                before = await _idle_sample(database, worker, proxy)
                await anyio.sleep(IDLE_WINDOW)
                after = await _idle_sample(database, worker, proxy)
                rss = _procfs.rss_mib(worker.pid)
                await worker.stop()
        seconds = after[0] - before[0]
        return {
            "queries/s": (after[1] - before[1]) / seconds,
            "server xacts/s": (after[2] - before[2]) / seconds,
            "CPU %": 100.0 * (after[3] - before[3]) / seconds,
            "RSS MiB": rss,
        }

    return run


async def _idle_sample(
    database: str, worker: WorkerProcess, proxy: CountingProxy
) -> tuple[float, int, int, float]:
    """(time, statements sent, transactions committed in ``database``, worker CPU seconds)."""
    xacts = await _db.committed_transactions(database)
    return time.perf_counter(), proxy.statements, xacts, _procfs.cpu_seconds(worker.pid)
