"""Claim-ahead: a worker running fast jobs claims a few beyond its free slots, so a slot never
waits for a claim's round trip; it never runs more than its slots at once, never claims ahead
for slow jobs or past a type's own limit, and hands back what it claimed ahead when it stops.
"""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from jobrunner import JobContext, NewJob, Plugin

pytestmark = pytest.mark.anyio


async def _running_rows(engine, type: str) -> int:
    [(count,)] = await engine.sql(
        "SELECT count(*) FROM {job} WHERE status = 'running' AND type = ?", type
    )
    return count


def _plugin(engine, state: dict) -> Plugin:
    plugin = Plugin("ahead")

    def held(type: str) -> int:
        """Jobs of `type` the worker holds: running, or claimed and waiting for a slot."""
        return state["runner"].worker.ledger.of_type(type)

    @plugin.handler("ahead.quick")
    async def quick(ctx: JobContext):
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        state["held"] = max(state["held"], held("ahead.quick"))
        await anyio.lowlevel.checkpoint()
        state["now"] -= 1

    @plugin.handler("ahead.limited", concurrency=2)
    async def limited(ctx: JobContext):
        state["held_limited"] = max(state["held_limited"], held("ahead.limited"))

    @plugin.handler("ahead.hold")
    async def hold(ctx: JobContext):
        state["hold_calls"] += 1
        state["holding"].set()
        await anyio.sleep(ctx.payload.get("seconds", 30))

    return plugin


def _state() -> dict:
    return {
        "now": 0,
        "peak": 0,
        "held": 0,
        "held_limited": 0,
        "hold_calls": 0,
        "holding": anyio.Event(),
    }


async def _run_quick(runner, state: dict, count: int) -> None:
    state["runner"] = runner
    ids = await runner.enqueue_many([NewJob(type="ahead.quick")] * count)
    for job_id in ids:
        assert (await runner.wait_for(job_id, timeout=20)).status == "completed"


async def test_fast_jobs_are_claimed_ahead_but_run_within_the_slots(engine):
    state = _state()
    async with engine.runner(plugins=[_plugin(engine, state)], concurrency=2) as runner:
        await _run_quick(runner, state, 300)
    assert state["peak"] <= 2  # never more handlers at once than slots
    assert state["held"] > 2  # but more jobs held (claimed ahead) than slots


async def test_claim_ahead_zero_claims_only_for_free_slots(engine):
    state = _state()
    runner = engine.runner(plugins=[_plugin(engine, state)], concurrency=2, claim_ahead=0)
    async with runner:
        await _run_quick(runner, state, 100)
    assert state["peak"] <= 2 and state["held"] <= 2


async def test_a_type_at_its_own_limit_is_never_claimed_ahead(engine):
    state = _state()
    async with engine.runner(plugins=[_plugin(engine, state)], concurrency=20) as runner:
        await _run_quick(runner, state, 100)  # fast jobs: the worker now claims ahead
        ids = await runner.enqueue_many([NewJob(type="ahead.limited")] * 60)
        for job_id in ids:
            await runner.wait_for(job_id, timeout=20)
    assert state["held_limited"] <= 2


async def test_slow_jobs_are_not_claimed_ahead(engine):
    state = _state()
    async with engine.runner(plugins=[_plugin(engine, state)], concurrency=1) as runner:
        ids = await runner.enqueue_many([NewJob(type="ahead.hold", payload={"seconds": 0.3})] * 3)
        await runner.wait_for(ids[0], timeout=20)
        await anyio.sleep(0.1)  # the second one runs now: the third must still be pending
        third = await engine.backend.job_get(ids[2])
        assert (third.status, third.attempts) == ("pending", 0)
        await runner.wait_for(ids[2], timeout=20)


async def test_stop_hands_back_jobs_claimed_ahead_without_counting_an_attempt(engine):
    state = _state()
    runner = engine.runner(plugins=[_plugin(engine, state)], concurrency=1, shutdown_timeout=0.2)
    async with runner:
        await _run_quick(runner, state, 200)  # learn that jobs are fast: claim ahead from now on
        ids = await runner.enqueue_many([NewJob(type="ahead.hold", payload={"seconds": 30})] * 5)
        with anyio.fail_after(10):
            await state["holding"].wait()
        assert await _running_rows(engine, "ahead.hold") > 1  # one runs, others wait here
    assert state["hold_calls"] == 1
    for job_id in ids:
        job = await engine.backend.job_get(job_id)
        assert (job.status, job.attempts, job.locked_by) == ("pending", 0, None)


async def test_jobs_claimed_ahead_that_wait_too_long_for_a_slot_go_back(engine):
    state = _state()
    runner = engine.runner(plugins=[_plugin(engine, state)], concurrency=1, shutdown_timeout=0.2)
    async with runner:
        await _run_quick(runner, state, 200)  # fast jobs: the worker now claims ahead
        ids = await runner.enqueue_many([NewJob(type="ahead.hold", payload={"seconds": 30})] * 5)
        with anyio.fail_after(10):
            await state["holding"].wait()
        assert await _running_rows(engine, "ahead.hold") > 1  # claimed ahead behind the first
        with anyio.fail_after(10):  # the estimate was wrong: they go back within a few seconds
            while await _running_rows(engine, "ahead.hold") != 1:
                await anyio.sleep(0.1)
        for job_id in ids[1:]:
            job = await engine.backend.job_get(job_id)
            assert (job.status, job.attempts, job.locked_by) == ("pending", 0, None)
        await anyio.sleep(1.5)  # and are not claimed again while the slot is busy
        assert await _running_rows(engine, "ahead.hold") == 1
    assert state["hold_calls"] == 1
