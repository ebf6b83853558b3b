"""Cluster-wide limits, fair claiming, pauses and back-pressure: the same behaviour on every
backend, through the backend protocol (workers are simulated by worker names)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter

import anyio
import pytest

from jobrunner import (
    ClaimSlot,
    JobFilter,
    NewJob,
    Outcome,
    OutcomeKind,
    Rate,
    TypeLimits,
)
from jobrunner._schema import check_schema

pytestmark = pytest.mark.anyio


def slot(type: str = "t", free: int = 100) -> ClaimSlot:
    return ClaimSlot(type=type, free=free, max_attempts=3, lease=30.0)


async def claim(backend, *slots: ClaimSlot, worker: str = "w1", limit: int = 100):
    return await backend.job_claim(
        worker=worker, slots=list(slots) or [slot()], limit=limit, queues=None
    )


async def finish(backend, jobs, worker: str = "w1", kind=OutcomeKind.COMPLETED, **fields):
    return await backend.job_finish_many(
        worker=worker,
        outcomes=[Outcome(id=j.id, attempt=j.attempts, kind=kind, **fields) for j in jobs],
    )


async def enqueue(backend, n: int, type: str = "t", **fields) -> list[int]:
    return await backend.job_insert_many([NewJob(type=type, **fields) for _ in range(n)])


async def test_global_concurrency_holds_across_workers(backend):
    await enqueue(backend, 10)
    await backend.limits_set("t", TypeLimits(concurrency=3))
    first = await claim(backend, worker="a")
    second = await claim(backend, worker="b")
    assert (len(first), len(second)) == (3, 0)  # b sees a's running jobs
    await finish(backend, first[:2], worker="a")
    assert len(await claim(backend, worker="b")) == 2


async def test_a_handler_default_holds_until_overridden_and_cleared(backend):
    await enqueue(backend, 10)
    await backend.limits_declare({"t": TypeLimits(concurrency=2), "u": TypeLimits()})
    assert len(await claim(backend)) == 2
    await backend.limits_set("t", TypeLimits(concurrency=5))
    assert len(await claim(backend)) == 3  # 5 in all now
    await backend.limits_clear("t")  # the default again: 5 already run, none more
    assert await claim(backend) == []
    [state] = await backend.limits_list()
    assert (state.type, state.running) == ("t", 5)
    assert state.defaults.concurrency == 2 and state.configured.concurrency is None
    assert state.effective.concurrency == 2


async def test_a_concurrency_of_zero_pauses_and_types_without_limits_are_free(backend):
    await enqueue(backend, 3)
    await enqueue(backend, 3, type="free")
    await backend.limits_set("t", TypeLimits(concurrency=0))
    got = await claim(backend, slot(), slot("free"))
    assert Counter(j.type for j in got) == {"free": 3}


async def test_per_user_concurrency(backend):
    for user in ("a", "a", "a", "b", "b", None, None):
        await enqueue(backend, 1, user_id=user)
    await backend.limits_set("t", TypeLimits(per_user=1))
    got = await claim(backend)
    # One of a's, one of b's, and both of the jobs without a user (not limited by it).
    assert Counter(j.user_id for j in got) == {"a": 1, "b": 1, None: 2}
    assert Counter(j.user_id for j in await claim(backend, worker="w2")) == {}
    await finish(backend, [j for j in got if j.user_id == "a"])
    assert [j.user_id for j in await claim(backend, worker="w2")] == ["a"]


async def test_a_rate_spaces_starts_evenly(engine, backend):
    await enqueue(backend, 5)
    await backend.limits_set("t", TypeLimits(rate=Rate.parse("2/1s")))  # one every 0.5 s
    started: list[int] = []
    with anyio.fail_after(10):
        while len(started) < 3:
            started += [j.id for j in await claim(backend)]
            await anyio.sleep(0.02)
    rows = await engine.sql("SELECT started_at FROM {job} WHERE status = 'running'")
    times = sorted(_seconds(r[0]) for r in rows)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) == 3 and all(g >= 0.499 for g in gaps), gaps


def _seconds(value) -> float:
    return value.timestamp() if isinstance(value, dt.datetime) else float(value)


async def test_fair_claims_take_users_in_turn(backend):
    await backend.job_insert_many([NewJob(type="t", user_id="heavy") for _ in range(1000)])
    await backend.job_insert_many([NewJob(type="t", user_id=f"light{i}") for i in range(10)])
    got = await claim(backend, limit=20)
    users = Counter(j.user_id for j in got)
    # The ten light users' jobs are all in the first claim, beside ten of the heavy user's.
    assert users["heavy"] == 10 and all(users[f"light{i}"] == 1 for i in range(10))


async def test_within_a_user_oldest_first_and_priorities_still_win(backend):
    now = dt.datetime.now(dt.UTC)
    await backend.job_insert_many(
        [NewJob(type="t", user_id="a", payload={"n": i}) for i in range(5)]
    )
    await backend.job_insert_many(
        [NewJob(type="t", user_id="b", priority=1, run_at=now - dt.timedelta(seconds=1))]
    )
    got = await claim(backend, limit=3)
    assert [j.user_id for j in got] == ["b", "a", "a"]
    assert [j.payload.get("n") for j in got[1:]] == [0, 1]


async def test_fairness_off_is_strict_fifo(backend):
    await backend.limits_set("t", TypeLimits(), fair=False)
    await backend.job_insert_many([NewJob(type="t", user_id="heavy") for _ in range(20)])
    await backend.job_insert_many([NewJob(type="t", user_id="light")])
    got = await claim(backend, limit=20)
    assert {j.user_id for j in got} == {"heavy"}


async def test_a_plain_sql_insert_gets_its_turn(engine, backend):
    await backend.job_insert_many([NewJob(type="t", user_id="heavy") for _ in range(50)])
    await engine.sql("INSERT INTO {job} (type, user_id) VALUES ('t', 'web')")
    got = await claim(backend, limit=2)
    assert {j.user_id for j in got} == {"heavy", "web"}


async def test_pausing_a_type_or_a_queue_keeps_its_jobs_pending(backend):
    await enqueue(backend, 2)
    await enqueue(backend, 2, type="u", queue="slow")
    await backend.pause(types=["t"], queues=["slow"], reason="maintenance")
    assert await claim(backend, slot(), slot("u")) == []
    assert await backend.paused_queues() == {"slow": "maintenance"}
    [state] = await backend.limits_list()
    assert (state.type, state.paused, state.pause_reason) == ("t", True, "maintenance")
    await backend.resume(types=["t"], queues=["slow"])
    assert len(await claim(backend, slot(), slot("u"))) == 4


async def test_rate_limited_refunds_the_attempt_and_pauses_the_type(backend):
    await enqueue(backend, 3)
    [job] = await claim(backend, limit=1)
    await finish(
        backend,
        [job],
        kind=OutcomeKind.RATE_LIMITED,
        error="RateLimited: slow down",
        delay=3600,
    )
    again = await backend.job_get(job.id)
    assert (again.status, again.attempts) == ("pending", 0)
    assert await claim(backend, worker="other") == []  # the whole type waits
    [state] = await backend.limits_list()
    assert state.pause_reason == "RateLimited: slow down"
    assert state.paused_until is not None and not state.paused
    assert await backend.job_next_run_in(["t"]) > 3000
    await backend.resume(types=["t"])
    assert len(await claim(backend, worker="other")) == 2  # the paused one runs later


async def test_a_limit_holds_until_a_crashed_workers_jobs_are_rescued(engine, backend):
    await enqueue(backend, 4)
    await backend.limits_set("t", TypeLimits(concurrency=2))
    assert len(await claim(backend, worker="dead")) == 2
    assert await claim(backend, worker="alive") == []
    await engine.expire_leases()
    assert len(await backend.job_rescue_expired()) == 2
    assert len(await claim(backend, worker="alive")) == 2


async def test_the_next_due_time_leaves_out_what_cannot_start(backend):
    await enqueue(backend, 2)
    await backend.limits_set("t", TypeLimits(concurrency=1))
    await claim(backend)
    assert await backend.job_next_run_in(["t"]) is None  # at its limit: a finish wakes us
    await backend.limits_clear("t")
    assert await backend.job_next_run_in(["t"]) <= 0


async def test_the_schema_is_current_and_jobs_list_as_before(backend):
    await check_schema(backend)
    await enqueue(backend, 2, user_id="u")
    assert len(await backend.job_list(JobFilter(user_id="u"))) == 2
