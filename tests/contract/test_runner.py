"""Behaviour of a worker on each backend: running, retrying, limits, timeouts, cancel, stop."""

from __future__ import annotations

import anyio
import pytest

from jobrunner import JobContext, PermanentFailure, Plugin, Retry, RetryPolicy

pytestmark = pytest.mark.anyio

FAST = RetryPolicy(base=0.01, cap=0.05)


def make_plugin() -> tuple[Plugin, dict]:
    plugin = Plugin("t")
    state: dict = {"running": 0, "peak": 0, "calls": [], "started": anyio.Event()}

    @plugin.handler("t.echo")
    async def echo(ctx: JobContext):
        return {"echo": ctx.payload, "attempt": ctx.attempt}

    @plugin.handler("t.flaky", max_attempts=3, retry=FAST)
    async def flaky(ctx: JobContext):
        state["calls"].append(ctx.attempt)
        if ctx.attempt < ctx.payload["succeed_on"]:
            raise ValueError(f"attempt {ctx.attempt} broke")
        return "ok"

    @plugin.handler("t.permanent", max_attempts=5, retry=FAST)
    async def permanent(ctx: JobContext):
        state["calls"].append(ctx.attempt)
        raise PermanentFailure("the input can never work")

    @plugin.handler("t.retry_later", max_attempts=2)
    async def retry_later(ctx: JobContext):
        if ctx.attempt == 1:
            raise Retry("rate limited", delay=0.05)
        return ctx.attempt

    @plugin.handler("t.limited", concurrency=2)
    async def limited(ctx: JobContext):
        state["running"] += 1
        state["peak"] = max(state["peak"], state["running"])
        await anyio.sleep(0.05)
        state["running"] -= 1

    @plugin.handler("t.slow", timeout=0.2, max_attempts=2, retry=FAST)
    async def slow(ctx: JobContext):
        await anyio.sleep(30)

    @plugin.handler("t.block")
    async def block(ctx: JobContext):
        state["started"].set()
        ctx.progress(0.5, "half way")
        await anyio.sleep(ctx.payload.get("seconds", 30))
        return "finished"

    @plugin.handler("t.bad_result")
    async def bad_result(ctx: JobContext):
        return {"not json": {1, 2}}

    return plugin, state


async def test_jobs_run_and_store_results(engine):
    plugin, _ = make_plugin()
    async with engine.runner(plugins=[plugin]) as runner:
        job_id = await runner.enqueue("t.echo", {"hello": "世界"}, user_id="u1")
        job = await runner.wait_for(job_id, timeout=10)
    assert job.status == "completed"
    assert job.result == {"echo": {"hello": "世界"}, "attempt": 1}
    assert job.user_id == "u1"


async def test_failures_retry_with_backoff_until_success(engine):
    plugin, state = make_plugin()
    async with engine.runner(plugins=[plugin]) as runner:
        job = await runner.wait_for(await runner.enqueue("t.flaky", {"succeed_on": 3}), timeout=10)
    assert (job.status, job.attempts, job.result) == ("completed", 3, "ok")
    assert state["calls"] == [1, 2, 3]


async def test_attempts_run_out_then_the_job_fails_with_its_error(engine):
    plugin, state = make_plugin()
    async with engine.runner(plugins=[plugin]) as runner:
        job = await runner.wait_for(await runner.enqueue("t.flaky", {"succeed_on": 9}), timeout=10)
    assert (job.status, job.attempts) == ("failed", 3)
    assert job.error == "ValueError: attempt 3 broke"


async def test_per_job_max_attempts_overrides_the_handler(engine):
    plugin, state = make_plugin()
    async with engine.runner(plugins=[plugin]) as runner:
        job_id = await runner.enqueue("t.flaky", {"succeed_on": 9}, max_attempts=1)
        job = await runner.wait_for(job_id, timeout=10)
    assert (job.status, job.attempts, state["calls"]) == ("failed", 1, [1])


async def test_permanent_failure_is_not_retried(engine):
    plugin, state = make_plugin()
    async with engine.runner(plugins=[plugin]) as runner:
        job = await runner.wait_for(await runner.enqueue("t.permanent"), timeout=10)
    assert (job.status, job.attempts) == ("failed", 1)
    assert job.error == "PermanentFailure: the input can never work"
    assert state["calls"] == [1]


async def test_retry_with_delay(engine):
    plugin, _ = make_plugin()
    async with engine.runner(plugins=[plugin]) as runner:
        job = await runner.wait_for(await runner.enqueue("t.retry_later"), timeout=10)
    assert (job.status, job.result) == ("completed", 2)


async def test_per_handler_and_global_concurrency(engine):
    plugin, state = make_plugin()
    async with engine.runner(plugins=[plugin], concurrency=10) as runner:
        ids = [await runner.enqueue("t.limited") for _ in range(8)]
        for job_id in ids:
            assert (await runner.wait_for(job_id, timeout=10)).status == "completed"
    assert state["peak"] == 2


async def test_global_concurrency_limit(engine):
    plugin = Plugin("g")
    state = {"running": 0, "peak": 0}

    @plugin.handler("g.sleep")
    async def sleep(ctx: JobContext):
        state["running"] += 1
        state["peak"] = max(state["peak"], state["running"])
        await anyio.sleep(0.05)
        state["running"] -= 1

    async with engine.runner(plugins=[plugin], concurrency=3) as runner:
        ids = [await runner.enqueue("g.sleep") for _ in range(12)]
        for job_id in ids:
            await runner.wait_for(job_id, timeout=10)
    assert state["peak"] == 3


async def test_timeout_fails_the_attempt_and_the_worker_lives_on(engine):
    plugin, _ = make_plugin()
    async with engine.runner(plugins=[plugin]) as runner:
        slow = await runner.wait_for(await runner.enqueue("t.slow"), timeout=10)
        after = await runner.wait_for(await runner.enqueue("t.echo", {"n": 1}), timeout=10)
    assert (slow.status, slow.attempts) == ("failed", 2)
    assert slow.error == "TimeoutError: t.slow did not finish within its 0.2s timeout"
    assert after.status == "completed"


async def test_unserialisable_result_fails_with_a_clear_error(engine):
    plugin, _ = make_plugin()
    async with engine.runner(plugins=[plugin]) as runner:
        job = await runner.wait_for(await runner.enqueue("t.bad_result"), timeout=10)
    assert job.status == "failed"
    assert "result is not JSON-serialisable" in job.error


async def test_cancel_reaches_a_running_handler(engine):
    plugin, state = make_plugin()
    async with engine.runner(plugins=[plugin]) as runner:
        job_id = await runner.enqueue("t.block")
        with anyio.fail_after(10):
            await state["started"].wait()
        await runner.cancel_job(job_id)
        job = await runner.wait_for(job_id, timeout=30)
    assert job.status == "cancelled"


async def test_unknown_job_types_stay_pending(engine):
    plugin, _ = make_plugin()
    async with engine.runner(plugins=[plugin]) as runner:
        other = await runner.enqueue("nobody.handles.this")
        done = await runner.wait_for(await runner.enqueue("t.echo"), timeout=10)
        assert done.status == "completed"
        assert (await runner.get_job(other)).status == "pending"


async def test_progress_is_visible_while_running(engine):
    plugin, state = make_plugin()
    async with engine.runner(plugins=[plugin]) as runner:
        job_id = await runner.enqueue("t.block", {"seconds": 30})
        with anyio.fail_after(10):
            while (await runner.get_job(job_id)).progress_message != "half way":
                await anyio.sleep(0.05)
        assert (await runner.get_job(job_id)).progress == 0.5
        await runner.cancel_job(job_id)


async def test_clean_stop_hands_back_unfinished_jobs(engine):
    plugin, state = make_plugin()
    runner = engine.runner(plugins=[plugin], shutdown_timeout=0.2)
    async with runner:
        job_id = await runner.enqueue("t.block", {"seconds": 30})
        with anyio.fail_after(10):
            await state["started"].wait()
    job = await engine.backend.job_get(job_id)
    assert (job.status, job.attempts, job.locked_by) == ("pending", 0, None)


async def test_clean_stop_lets_short_jobs_finish(engine):
    plugin, state = make_plugin()
    runner = engine.runner(plugins=[plugin], shutdown_timeout=10)
    async with runner:
        job_id = await runner.enqueue("t.block", {"seconds": 0.3})
        with anyio.fail_after(10):
            await state["started"].wait()
    job = await engine.backend.job_get(job_id)
    assert (job.status, job.result) == ("completed", "finished")


async def test_a_worker_that_lost_its_lease_cannot_overwrite_the_new_result(engine):
    plugin = Plugin("lease")
    release = anyio.Event()
    runs: list[str] = []

    @plugin.handler("lease.job", lease=0.6)
    async def job(ctx: JobContext):
        runs.append(ctx.job.locked_by)
        if len(runs) == 1:
            with anyio.CancelScope(shield=True):  # deaf to the lease-loss cancel
                await release.wait()
            return "stale result"
        return "fresh result"

    async with engine.runner(plugins=[plugin]) as first:
        job_id = await first.enqueue("lease.job")
        with anyio.fail_after(10):
            while not runs:
                await anyio.sleep(0.01)
        # Simulate the first worker being cut off: its lease runs out and is rescued.
        await engine.sql("UPDATE {job} SET locked_by = 'someone-else' WHERE id = ?", job_id)
        await engine.expire_leases()
        await engine.backend.job_rescue_expired()
        async with engine.runner(plugins=[plugin]) as second:
            done = await second.wait_for(job_id, timeout=10)
        release.set()
    assert (done.status, done.result, done.attempts) == ("completed", "fresh result", 2)
    assert (await engine.backend.job_get(job_id)).result == "fresh result"


async def test_burst_mode_exits_when_idle(engine):
    plugin, _ = make_plugin()
    async with engine.runner(plugins=[plugin], worker=False) as runner:
        ids = [await runner.enqueue("t.echo", {"i": i}) for i in range(20)]
        code = await runner.run(burst=True)
        assert code == 0
        for job_id in ids:
            assert (await runner.get_job(job_id)).status == "completed"


async def test_a_runner_runs_again_after_a_burst_or_a_stop(engine):
    plugin, _ = make_plugin()
    async with engine.runner(plugins=[plugin], concurrency=1, worker=False) as runner:
        for round in range(3):
            ids = [await runner.enqueue("t.echo", {"round": round}) for _ in range(3)]
            with anyio.fail_after(20):
                assert await runner.run(burst=True) == 0
            assert {(await runner.get_job(i)).status for i in ids} == {"completed"}
        runner.stop()  # a stop before run() is kept: it returns at once
        with anyio.fail_after(20):
            await runner.run()
        job_id = await runner.enqueue("t.echo", "after the stop")
        with anyio.fail_after(20):
            await runner.run(burst=True)
        assert (await runner.get_job(job_id)).status == "completed"


async def test_run_is_refused_while_the_background_worker_runs(engine):
    from jobrunner import ConfigurationError

    plugin, _ = make_plugin()
    async with engine.runner(plugins=[plugin]) as runner:
        with pytest.raises(ConfigurationError, match="worker=False"):
            await runner.run(burst=True)
        job_id = await runner.enqueue("t.echo", "still served")
        assert (await runner.wait_for(job_id, timeout=10)).status == "completed"


async def test_a_parent_waits_for_its_children_and_gathers_their_results(engine):
    from jobrunner import WaitForChildren

    plugin = Plugin("family")
    runs: list[str] = []

    @plugin.handler("family.parent", max_attempts=1)
    async def parent(ctx: JobContext):
        runs.append("parent")
        if "children" not in ctx.checkpoint:
            ids = [await ctx.enqueue("family.child", {"n": n}) for n in range(3)]
            await ctx.save_checkpoint("children", ids)
            raise WaitForChildren(recheck=3600)
        children = await ctx.children()
        if any(not c.status.is_final for c in children):
            raise WaitForChildren(recheck=3600)
        return {"sum": sum(c.result for c in children), "ids": [c.id for c in children]}

    @plugin.handler("family.child")
    async def child(ctx: JobContext):
        await anyio.sleep(0.05 * ctx.payload["n"])
        return ctx.payload["n"] * 10

    async with engine.runner(plugins=[plugin], concurrency=4) as runner:
        job_id = await runner.enqueue("family.parent", user_id="u9")
        job = await runner.wait_for(job_id, timeout=20)
        children = await runner.list_jobs(parent_id=job_id)
    assert (job.status, job.attempts, job.result["sum"]) == ("completed", 1, 30)
    assert sorted(job.result["ids"]) == sorted(c.id for c in children)
    assert {c.user_id for c in children} == {"u9"}
    assert runs == ["parent", "parent"]


async def test_cpu_bound_and_blocking_handlers_run_off_the_event_loop(engine):
    from jr_support import block_thread, burn_cpu

    plugin = Plugin("offloop")
    # The quick job has no timeout of its own: starting the process pool can take longer than
    # a second on a busy machine, and only the stuck job's timeout is under test.
    plugin.handler("offloop.quick", run_in="process", max_attempts=1)(burn_cpu)
    plugin.handler("offloop.cpu", run_in="process", timeout=1.0, max_attempts=1)(burn_cpu)
    plugin.handler("offloop.block", run_in="thread", lease=0.6)(block_thread)
    async with engine.runner(plugins=[plugin]) as runner:
        quick = await runner.enqueue("offloop.quick", {"seconds": 0.05, "answer": 42})
        stuck = await runner.enqueue("offloop.cpu", {"seconds": 60})
        # The thread blocks for longer than its lease: renewal must go on meanwhile.
        blocking = await runner.enqueue("offloop.block", {"seconds": 1.5})
        quick_job = await runner.wait_for(quick, timeout=30)
        stuck_job = await runner.wait_for(stuck, timeout=30)
        blocking_job = await runner.wait_for(blocking, timeout=30)
    assert (quick_job.status, quick_job.result) == ("completed", 42)
    assert stuck_job.status == "failed"
    assert "did not finish within its 1s timeout" in stuck_job.error
    assert (blocking_job.status, blocking_job.attempts, blocking_job.result) == (
        "completed",
        1,
        "woke",
    )


async def test_a_type_at_its_own_limit_is_claimed_again_when_a_slot_frees(engine):
    """Another type's free slots make the last claim come back short: finishing a job of the
    capped type must still wake the worker (the poll interval here is an hour)."""
    plugin = Plugin("capped")

    @plugin.handler("capped.one", concurrency=1)
    async def one(ctx: JobContext):
        await anyio.sleep(0.05)

    @plugin.handler("capped.other")
    async def other(ctx: JobContext):
        return None

    async with engine.runner(plugins=[plugin], poll_interval=3600, concurrency=5) as runner:
        ids = [await runner.enqueue("capped.one") for _ in range(3)]
        for job_id in ids:
            assert (await runner.wait_for(job_id, timeout=10)).status == "completed"
