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
IDLE_SETTLE = 11.0  # PostgreSQL may hold a backend's stats up to 10 s before flushing
IDLE_WINDOW = 10.0


class Enqueuer(Protocol):
    async def enqueue(self, payload: dict[str, Any]) -> None:
        """Enqueue one job, committed when this returns."""

    async def enqueue_many(self, count: int) -> None:
        """Enqueue ``count`` no-op jobs with the library's bulk API."""


class Adapter(Protocol):
    name: str
    jobs_cap: int | None  # throughput scenarios use at most this many jobs

    async def install(self, dsn: str) -> None: ...

    def enqueuer(self, dsn: str) -> AbstractAsyncContextManager[Enqueuer]: ...

    def worker_command(
        self, dsn: str, *, handler: str, expect: int, concurrency: int | None
    ) -> list[str]: ...

    async def unfinished(self, dsn: str) -> int: ...


def _capped(adapter: Adapter, jobs: int) -> tuple[int, Result]:
    if adapter.jobs_cap is not None and jobs > adapter.jobs_cap:
        return adapter.jobs_cap, {"note": f"{adapter.name}: {adapter.jobs_cap:,} jobs, not {jobs:,}"}
    return jobs, {}


async def _throughput(
    adapter: Adapter, dsn: str, count: int, *, handler: str, concurrency: int | None, timeout: float
) -> float:
    await adapter.install(dsn)
    async with adapter.enqueuer(dsn) as enqueuer:
        await enqueuer.enqueue_many(count)
    command = adapter.worker_command(dsn, handler=handler, expect=count, concurrency=concurrency)
    async with start_worker(command) as worker:
        try:
            done = await worker.wait_for("done", timeout)
        except TimeoutError as exc:
            raise WorkerError(f"timeout: {adapter.name} did not finish {count} jobs") from exc
    left = await adapter.unfinished(dsn)
    if left:
        raise WorkerError(f"{adapter.name}: {left} jobs still unfinished after the worker stopped")
    return count / float(done["elapsed"])


def drain(adapter: Adapter, *, concurrency: int | None = None) -> Scenario:
    """No-op drain: N jobs enqueued in bulk beforehand, one worker, time until all done."""

    async def run(dsn: str, jobs: int, **options: Any) -> Result:
        count, extra = _capped(adapter, jobs)
        timeout = float(options.get("timeout", DEFAULT_TIMEOUT))
        rate = await _throughput(
            adapter, dsn, count, handler="noop", concurrency=concurrency, timeout=timeout
        )
        return {"jobs/s": rate, **extra}

    return run


def sleep(adapter: Adapter) -> Scenario:
    """Handler awaiting 10 ms at concurrency 200 (ideal: 20,000 jobs/s)."""

    async def run(dsn: str, jobs: int, **options: Any) -> Result:
        count, extra = _capped(adapter, jobs)
        timeout = float(options.get("timeout", DEFAULT_TIMEOUT))
        rate = await _throughput(
            adapter, dsn, count, handler="sleep", concurrency=SLEEP_CONCURRENCY, timeout=timeout
        )
        return {"jobs/s": rate, **extra}

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
    """An idle worker for 10 s: queries/s it causes, its CPU %, its RSS."""

    async def run(dsn: str, jobs: int, **options: Any) -> Result:
        await adapter.install(dsn)
        database = dsn.rsplit("/", 1)[1]
        command = adapter.worker_command(dsn, handler="latency", expect=0, concurrency=None)
        async with start_worker(command) as worker, adapter.enqueuer(dsn) as enqueuer:
            await _warm_up(worker, enqueuer)
            await anyio.sleep(IDLE_SETTLE)
            xact0, cpu0, t0 = (
                await _db.committed_transactions(database),
                _procfs.cpu_seconds(worker.pid),
                time.perf_counter(),
            )
            await anyio.sleep(IDLE_WINDOW)
            xact1, cpu1, t1 = (
                await _db.committed_transactions(database),
                _procfs.cpu_seconds(worker.pid),
                time.perf_counter(),
            )
            rss = _procfs.rss_mib(worker.pid)
            await worker.stop()
        return {
            "queries/s": (xact1 - xact0) / (t1 - t0),
            "CPU %": 100.0 * (cpu1 - cpu0) / (t1 - t0),
            "RSS MiB": rss,
        }

    return run
