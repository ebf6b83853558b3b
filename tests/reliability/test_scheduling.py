"""Scheduling under real conditions: lease renewals that take time, retries due soon."""

from __future__ import annotations

import anyio
import pytest

from jobrunner import JobContext, Plugin, Retry, Runner
from jobrunner._postgres import PostgresBackend

pytestmark = pytest.mark.anyio


class SlowRenewals(PostgresBackend):
    """The real backend, with lease renewals that take half a second to come back."""

    async def job_extend_leases(self, **kwargs):  # type: ignore[override]
        await anyio.sleep(0.5)
        return await super().job_extend_leases(**kwargs)


async def test_a_job_claimed_during_a_lease_renewal_keeps_running(pg_url, pg_schema):
    plugin = Plugin("lease")
    runs: list[tuple[int, int]] = []

    @plugin.handler("lease.work", lease=1.5, max_attempts=3)
    async def work(ctx: JobContext) -> int:
        runs.append((ctx.id, ctx.attempt))
        await anyio.sleep(1.0)
        return ctx.attempt

    backend = SlowRenewals(pg_url, schema=pg_schema)
    options = {"poll_interval": 0.2, "concurrency": 50}
    async with Runner(pg_url, plugins=[plugin], backend=backend, env={}, **options) as runner:
        ids = []
        for _ in range(20):  # one claim every 0.1 s: many land while a renewal is in flight
            ids.append(await runner.enqueue("lease.work"))
            await anyio.sleep(0.1)
        jobs = [await runner.wait_for(i, timeout=30) for i in ids]
        assert runner.worker is not None
        lost = runner.worker.stats["lease_lost"]
    assert [(j.status, j.attempts) for j in jobs] == [("completed", 1)] * 20
    assert sorted(runs) == [(i, 1) for i in ids], "each job ran once"
    assert lost == 0


async def test_a_retry_runs_after_its_delay_not_after_the_next_poll(pg_url, pg_schema):
    plugin = Plugin("later")

    @plugin.handler("later.flaky", max_attempts=2)
    async def flaky(ctx: JobContext) -> int:
        if ctx.attempt == 1:
            raise Retry("busy", delay=0.2)
        return ctx.attempt

    options = {"poll_interval": 60.0}  # no poll will come during this test
    async with Runner(pg_url, schema=pg_schema, plugins=[plugin], env={}, **options) as runner:
        job = await runner.wait_for(await runner.enqueue("later.flaky"), timeout=15)
    assert (job.status, job.result) == ("completed", 2)
