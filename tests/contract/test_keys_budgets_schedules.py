"""Idempotency keys, usage and budgets, schedules: the same behaviour on every backend."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import anyio
import pytest

from jobrunner import (
    Budget,
    ClaimSlot,
    JobContext,
    JobFilter,
    NewJob,
    Outcome,
    OutcomeKind,
    Plugin,
    Schedule,
)
from jobrunner._budgets import UsageEntry
from jobrunner._schedules import decide

pytestmark = pytest.mark.anyio


def slot(type: str = "t", free: int = 100) -> ClaimSlot:
    return ClaimSlot(type=type, free=free, max_attempts=3, lease=30.0)


async def claim(backend, *slots: ClaimSlot, worker: str = "w1"):
    return await backend.job_claim(
        worker=worker, slots=list(slots) or [slot()], limit=100, queues=None
    )


async def finish(backend, jobs, kind=OutcomeKind.COMPLETED, worker: str = "w1"):
    await backend.job_finish_many(
        worker=worker, outcomes=[Outcome(id=j.id, attempt=j.attempts, kind=kind) for j in jobs]
    )


async def all_jobs(backend):
    return await backend.job_list(JobFilter(limit=100))


# -- idempotency keys -----------------------------------------------------------------------


async def test_a_key_held_by_a_pending_or_running_job_returns_that_job(backend):
    [first] = await backend.job_insert_many([NewJob(type="t", key="order-1")])
    [again] = await backend.job_insert_many([NewJob(type="t", key="order-1", payload={"x": 2})])
    assert again == first
    [job] = await claim(backend)
    [running] = await backend.job_insert_many([NewJob(type="t", key="order-1")])
    assert running == first  # still held while it runs
    await finish(backend, [job])
    [after] = await backend.job_insert_many([NewJob(type="t", key="order-1")])
    assert after != first  # the key is free once the job has ended
    jobs = await all_jobs(backend)
    assert sorted(j.id for j in jobs) == sorted({first, after})
    assert {j.unique_key for j in jobs} == {"order-1"}


async def test_a_failed_or_cancelled_job_frees_its_key(backend):
    [first] = await backend.job_insert_many([NewJob(type="t", key="k")])
    await backend.job_cancel(first)
    [second] = await backend.job_insert_many([NewJob(type="t", key="k")])
    assert second != first
    [job] = await claim(backend)
    await backend.job_finish_many(
        worker="w1",
        outcomes=[Outcome(id=job.id, attempt=job.attempts, kind=OutcomeKind.FAILED, error="x")],
    )
    [third] = await backend.job_insert_many([NewJob(type="t", key="k")])
    assert third not in (first, second)


async def test_keys_in_one_batch_with_unkeyed_jobs_keep_input_order(backend):
    ids = await backend.job_insert_many(
        [
            NewJob(type="t", payload=1),
            NewJob(type="t", payload=2, key="a"),
            NewJob(type="t", payload=3),
            NewJob(type="t", payload=4, key="a"),
            NewJob(type="t", payload=5, key="b"),
        ]
    )
    assert ids[1] == ids[3] and len(set(ids)) == 4
    payloads = {j.id: j.payload for j in await all_jobs(backend)}
    assert [payloads[i] for i in ids] == [1, 2, 3, 2, 5]


async def test_twenty_concurrent_enqueues_of_one_key_make_one_job(engine):
    ids: list[int] = []
    runners = [engine.runner(worker=False) for _ in range(4)]
    for r in runners:
        await r.__aenter__()
    try:

        async def one(i: int) -> None:
            ids.append(await runners[i % 4].enqueue("t", {"i": i}, key="double-click"))

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(one, i)
    finally:
        for r in runners:
            await r.__aexit__(None, None, None)
    assert len(ids) == 20 and len(set(ids)) == 1
    [(count,)] = await engine.sql("SELECT count(*) FROM {job} WHERE unique_key = 'double-click'")
    assert count == 1


async def test_plain_sql_dedupes_with_the_documented_conflict_target(engine):
    target = (
        "ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL "
        "AND status IN ('pending', 'running') DO NOTHING"
    )
    for _ in range(2):
        await engine.sql(
            f"INSERT INTO {{job}} (type, payload, unique_key) VALUES ('t', '{{}}', 'k') {target}"
        )
    [(count,)] = await engine.sql("SELECT count(*) FROM {job} WHERE unique_key = 'k'")
    assert count == 1
    with pytest.raises(Exception, match="(?i)unique"):  # a plain duplicate: an error, no job
        await engine.sql("INSERT INTO {job} (type, payload, unique_key) VALUES ('t', '{}', 'k')")
    [(count,)] = await engine.sql("SELECT count(*) FROM {job}")
    assert count == 1


async def test_ctx_enqueue_with_a_key_dedupes_follow_ups(engine):
    plugin = Plugin("k")

    @plugin.handler("k.parent")
    async def parent(ctx: JobContext):
        ids = [await ctx.enqueue("k.child", {"n": n}, key="only-one") for n in range(3)]
        return ids

    @plugin.handler("k.child")
    async def child(ctx: JobContext):
        return ctx.payload

    async with engine.runner(plugins=[plugin], worker=False) as runner:
        job_id = await runner.enqueue("k.parent")
        await runner.run(burst=True)
        job = await runner.get_job(job_id)
        children = await runner.list_jobs(parent_id=job_id)
    assert job.status == "completed" and len(set(job.result)) == 1
    assert [c.payload for c in children] == [{"n": 0}]


# -- usage and budgets ----------------------------------------------------------------------


async def test_usage_adds_up_on_the_job_and_per_user_and_day(backend):
    a, b = await backend.job_insert_many([NewJob(type="t", user_id="u1"), NewJob(type="t")])
    await backend.usage_add(
        [
            UsageEntry(job_id=a, user_id="u1", amounts={"tokens": 100, "cost_usd": 0.5}),
            UsageEntry(job_id=a, user_id="u1", amounts={"tokens": 20}),
            UsageEntry(job_id=b, user_id=None, amounts={"images": 1}),
        ]
    )
    await backend.usage_add([UsageEntry(job_id=a, user_id="u1", amounts={"tokens": 1})])
    jobs = {j.id: j for j in await all_jobs(backend)}
    assert jobs[a].usage == {"tokens": 121, "cost_usd": 0.5}
    assert jobs[b].usage == {"images": 1}  # no user: the job's own record only
    totals = {(t.user_id, t.unit): t.amount for t in await backend.usage_totals()}
    assert totals == {("u1", "tokens"): 121, ("u1", "cost_usd"): 0.5}
    [t] = [t for t in await backend.usage_totals(user_id="u1") if t.unit == "tokens"]
    assert t.day == dt.datetime.now(dt.UTC).date().isoformat()


async def test_a_user_over_budget_is_held_and_others_run(backend):
    await backend.job_insert_many(
        [NewJob(type="t", user_id=u, payload=i) for i in range(3) for u in ("rich", "poor")]
    )
    await backend.budget_set(Budget(user_id="poor", unit="tokens", period="daily", amount=10))
    await backend.usage_add([UsageEntry(job_id=1, user_id="poor", amounts={"tokens": 10})])
    got = await claim(backend)
    assert Counter(j.user_id for j in got) == {"rich": 3}
    [hold] = await backend.budget_holds(user_id="poor")
    assert (hold.unit, hold.period, hold.spent, hold.amount) == ("tokens", "daily", 10, 10)
    assert "over its daily budget of tokens: 10 of 10" in hold.reason
    assert await backend.job_next_run_in(["t"]) is None  # nothing due
    await backend.budget_set(Budget(user_id="poor", unit="tokens", period="daily", amount=11))
    assert Counter(j.user_id for j in await claim(backend)) == {"poor": 3}


async def test_a_budget_of_zero_holds_everything_and_a_default_covers_the_others(backend):
    await backend.job_insert_many([NewJob(type="t", user_id=u) for u in ("a", "b", "c")])
    await backend.job_insert_many([NewJob(type="t")])  # no user: never held by a budget
    await backend.budget_set(Budget(user_id="a", unit="cost_usd", period="monthly", amount=0))
    got = await claim(backend)
    assert sorted(str(j.user_id) for j in got) == ["None", "b", "c"]
    await backend.job_insert_many([NewJob(type="t", user_id=u) for u in ("b", "c")])
    await backend.budget_set(Budget(user_id=None, unit="cost_usd", period="daily", amount=0))
    await backend.budget_set(Budget(user_id="c", unit="cost_usd", period="daily", amount=5))
    got = await claim(backend)
    assert [j.user_id for j in got] == ["c"]  # b has no budget of its own: the default holds it
    holds = {(h.user_id, h.by_default) for h in await backend.budget_holds()}
    assert ("a", False) in holds and ("b", True) in holds and all(u != "c" for u, _ in holds)


async def test_budgets_list_what_their_user_spent_in_the_period(engine):
    backend = engine.backend
    today = dt.datetime.now(dt.UTC).date()
    if today.day == 1:
        pytest.skip("on the 1st, yesterday is another month")  # the other 30 days cover it
    yesterday = (today - dt.timedelta(days=1)).isoformat()
    await engine.sql(
        "INSERT INTO {job}_usage (user_id, day, unit, amount) VALUES ('u', ?, 'tokens', 50)",
        yesterday,
    )
    [job] = await backend.job_insert_many([NewJob(type="t", user_id="u")])
    await backend.usage_add([UsageEntry(job_id=job, user_id="u", amounts={"tokens": 7})])
    for period in ("daily", "monthly"):
        await backend.budget_set(Budget(user_id="u", unit="tokens", period=period, amount=100))
    await backend.budget_set(Budget(user_id="v", unit="tokens", period="daily", amount=1))
    await backend.budget_set(Budget(user_id=None, unit="tokens", period="daily", amount=5))
    spent = {(b.user_id, b.period): b.spent for b in await backend.budgets_list()}
    assert spent == {
        ("u", "daily"): 7,
        ("u", "monthly"): 57,
        ("v", "daily"): 0,
        (None, "daily"): None,
    }


async def test_a_budget_holds_only_its_types(backend):
    await backend.job_insert_many([NewJob(type=t, user_id="u") for t in ("image", "text")])
    await backend.budget_set(
        Budget(user_id="u", unit="images", period="daily", amount=0, types=("image",))
    )
    got = await claim(backend, slot("image"), slot("text"))
    assert [j.type for j in got] == ["text"]


async def test_a_running_job_is_not_cut_off_by_a_budget(backend):
    await backend.job_insert_many([NewJob(type="t", user_id="u")])
    [job] = await claim(backend)
    await backend.budget_set(Budget(user_id="u", unit="tokens", period="daily", amount=0))
    await finish(backend, [job])
    [done] = await all_jobs(backend)
    assert done.status == "completed"


async def test_yesterdays_usage_counts_for_the_month_not_the_day(engine):
    backend = engine.backend
    today = dt.datetime.now(dt.UTC).date()
    if today.day == 1:
        pytest.skip("on the 1st, yesterday is another month")  # the other 30 days cover it
    yesterday = (today - dt.timedelta(days=1)).isoformat()
    await engine.sql(
        "INSERT INTO {job}_usage (user_id, day, unit, amount) VALUES ('u', ?, 'tokens', 50)",
        yesterday,
    )
    await backend.job_insert_many([NewJob(type="t", user_id="u")])
    await backend.budget_set(Budget(user_id="u", unit="tokens", period="daily", amount=40))
    assert len(await claim(backend)) == 1  # a new day: the daily budget is untouched
    await backend.job_insert_many([NewJob(type="t", user_id="u")])
    await backend.budget_set(Budget(user_id="u", unit="tokens", period="monthly", amount=40))
    assert await claim(backend) == []  # but the month's total is over


async def test_diag_noop_records_usage_and_the_next_job_of_that_user_waits(engine):
    async with engine.runner(plugins=["diag"], concurrency=1, worker=False) as runner:
        await runner.set_budget(user_id="u", unit="tokens", amount=10)
        first = await runner.enqueue("diag.noop", {"usage": {"tokens": 12}}, user_id="u")
        await runner.run(burst=True)
        second = await runner.enqueue("diag.noop", user_id="u")
        other = await runner.enqueue("diag.noop", user_id="v")
        bad = await runner.enqueue("diag.noop", {"usage": {"tokens": "many"}}, user_id="v")
        await runner.run(burst=True)
        jobs = {i: await runner.get_job(i) for i in (first, second, other, bad)}
        reasons = await runner.pending_reasons(jobs[second])
        usage = {(t.user_id, t.unit): t.amount for t in await runner.usage()}
    assert jobs[first].status == "completed" and jobs[first].usage == {"tokens": 12}
    assert jobs[second].status == "pending"
    assert reasons == ["user u is over its daily budget of tokens: 12 of 10"]
    assert jobs[other].status == "completed"
    assert jobs[bad].status == "failed" and "usage 'tokens' must be a number" in jobs[bad].error
    assert usage == {("u", "tokens"): 12}


# -- schedules ------------------------------------------------------------------------------


def every(name: str = "s", seconds: float = 60, **fields) -> Schedule:
    return Schedule(name=name, type="t", every=seconds, **fields)


async def backdate(engine, name: str, seconds: float) -> None:
    """Move a schedule's next tick `seconds` into the past."""
    if engine.name == "postgres":
        query = (
            "UPDATE {job}_schedules SET next_run_at = now() - make_interval(secs => ?) "
            "WHERE name = ?"
        )
    else:
        query = (
            "UPDATE {job}_schedules SET next_run_at = (julianday('now') - 2440587.5) * 86400.0 - ? "
            "WHERE name = ?"
        )
    await engine.sql(query, seconds, name)


async def run_schedules(backend) -> int:
    enqueued, _ = await backend.schedules_run(decide, max_payload_bytes=1 << 20)
    return enqueued


async def test_a_due_tick_is_enqueued_once_with_its_key(engine):
    backend = engine.backend
    assert await backend.schedule_add(every(payload={"p": 1}, queue="q"))
    assert not await backend.schedule_add(every())  # the name is taken
    assert await run_schedules(backend) == 0  # new: its first tick is ahead
    [s] = await backend.schedules_list()
    assert s.next_run_at is not None and s.last_run_at is None
    await backdate(engine, "s", 1)
    [due] = await backend.schedules_list()
    assert await run_schedules(backend) == 1
    assert await run_schedules(backend) == 0  # the next tick is a minute away
    [job] = await all_jobs(backend)
    assert (job.type, job.payload, job.queue) == ("t", {"p": 1}, "q")
    assert job.unique_key == due.key(due.next_run_at)
    [s] = await backend.schedules_list()
    assert s.last_job_id == job.id and s.last_run_at == due.next_run_at
    assert s.next_run_at > due.next_run_at


async def test_concurrent_schedulers_enqueue_each_tick_once(engine):
    backend = engine.backend
    for name in "abc":
        await backend.schedule_add(every(name))
    await run_schedules(backend)
    for name in "abc":
        await backdate(engine, name, 1)
    results: list[int] = []

    async def one() -> None:
        results.append(await run_schedules(backend))

    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(one)
    assert sum(results) == 3
    assert len(await all_jobs(backend)) == 3


async def test_missed_ticks_once_or_skip(engine):
    backend = engine.backend
    await backend.schedule_add(every("once", seconds=60))
    await backend.schedule_add(every("skip", seconds=60, missed="skip"))
    await run_schedules(backend)
    for name in ("once", "skip"):
        await backdate(engine, name, 600)  # ten ticks went by while no worker ran
    assert await run_schedules(backend) == 1
    [job] = await all_jobs(backend)
    assert job.unique_key.startswith("schedule:once:")
    for s in await backend.schedules_list():
        assert s.next_run_at > dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)


async def test_paused_schedules_wait_and_resume_from_their_next_tick(engine):
    backend = engine.backend
    await backend.schedule_add(every())
    await run_schedules(backend)
    assert await backend.schedule_pause("s", paused=True)
    await backdate(engine, "s", 600)
    assert await run_schedules(backend) == 0
    assert await backend.schedule_pause("s", paused=False)
    assert await run_schedules(backend) == 0  # the ticks missed while paused are not run
    [s] = await backend.schedules_list()
    assert not s.paused and s.next_run_at > dt.datetime.now(dt.UTC)
    assert not await backend.schedule_pause("nope", paused=True)
    assert await backend.schedule_remove("s") and not await backend.schedule_remove("s")


async def test_a_plugin_declares_its_schedules_and_leaves_the_clis_alone(backend):
    await backend.schedule_add(every("mine"))
    await backend.schedules_declare("plugin:p", [every("a"), every("mine", seconds=5), every("b")])
    found = {s.name: s for s in await backend.schedules_list()}
    assert set(found) == {"mine", "a", "b"}
    assert found["mine"].every == 60 and found["mine"].origin == "cli"
    assert found["a"].origin == "plugin:p"
    await backend.schedules_declare("plugin:p", [every("a", seconds=30)])
    found = {s.name: s for s in await backend.schedules_list()}
    assert set(found) == {"mine", "a"} and found["a"].every == 30


async def test_a_workers_scheduler_runs_plugin_schedules(engine):
    plugin = Plugin("sched")
    plugin.schedule("tick", every="0.2s", type="sched.tick", payload={"n": 1})

    @plugin.handler("sched.tick")
    async def tick(ctx: JobContext):
        return ctx.payload

    async with engine.runner(plugins=[plugin], worker=False) as runner:
        with anyio.move_on_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(runner.run)
                while len(await runner.list_jobs(status="completed")) < 3:
                    await anyio.sleep(0.05)
                runner.stop()
        done = await runner.list_jobs(status="completed")
        [s] = await runner.schedules()
    assert len(done) >= 3 and {j.payload["n"] for j in done} == {1}
    assert len({j.unique_key for j in done}) == len(done)
    assert s.origin == "plugin:sched" and s.last_job_id in {j.id for j in done}
