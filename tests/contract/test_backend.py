"""Behaviour every backend must have, at the level of the backend protocol."""

from __future__ import annotations

import datetime as dt

import anyio
import pytest

from jobrunner import ClaimSlot, Held, JobFilter, JobNotFound, NewJob, Outcome, OutcomeKind
from jobrunner._backend import Wakeup

pytestmark = pytest.mark.anyio


def slot(type: str = "t", free: int = 10, max_attempts: int = 3, lease: float = 30.0) -> ClaimSlot:
    return ClaimSlot(type=type, free=free, max_attempts=max_attempts, lease=lease)


async def claim(backend, *slots: ClaimSlot, worker: str = "w1", limit: int = 100, queues=None):
    return await backend.job_claim(
        worker=worker, slots=list(slots) or [slot()], limit=limit, queues=queues
    )


async def test_enqueue_fills_defaults(backend):
    [job_id] = await backend.job_insert_many([NewJob(type="t", payload={"a": 1})])
    job = await backend.job_get(job_id)
    assert job.status == "pending"
    assert job.payload == {"a": 1}
    assert (job.queue, job.priority, job.attempts, job.user_id) == ("default", 0, 0, None)
    assert job.max_attempts is None  # the handler's default applies at claim
    assert job.created_at is not None and job.run_at is not None


async def test_enqueue_many_returns_ids_in_order(backend):
    jobs = [NewJob(type="t", payload={"i": i}) for i in range(50)]
    ids = await backend.job_insert_many(jobs)
    assert len(set(ids)) == 50
    for i in (0, 17, 49):
        assert (await backend.job_get(ids[i])).payload == {"i": i}


async def test_claim_marks_running_and_stamps_policy(backend):
    [job_id] = await backend.job_insert_many([NewJob(type="t")])
    [job] = await claim(backend, slot(max_attempts=7, lease=60))
    assert job.id == job_id
    assert job.status == "running"
    assert job.attempts == 1
    assert job.max_attempts == 7
    assert job.locked_by == "w1"
    assert job.locked_until > job.started_at


async def test_claim_keeps_per_job_max_attempts(backend):
    await backend.job_insert_many([NewJob(type="t", max_attempts=2)])
    [job] = await claim(backend, slot(max_attempts=9))
    assert job.max_attempts == 2


async def test_claim_orders_by_priority_then_run_at(backend):
    now = dt.datetime.now(dt.UTC)
    await backend.job_insert_many(
        [
            NewJob(type="t", payload={"n": "late-low"}, run_at=now - dt.timedelta(seconds=1)),
            NewJob(type="t", payload={"n": "early-low"}, run_at=now - dt.timedelta(seconds=9)),
            NewJob(type="t", payload={"n": "high"}, priority=5),
        ]
    )
    jobs = await claim(backend, slot(free=1), limit=1)
    assert [j.payload["n"] for j in jobs] == ["high"]
    jobs = await claim(backend, slot(free=2), limit=2)
    assert [j.payload["n"] for j in jobs] == ["early-low", "late-low"]


async def test_claim_skips_future_jobs_and_other_types_and_queues(backend):
    await backend.job_insert_many(
        [
            NewJob(type="t", delay=3600),
            NewJob(type="other"),
            NewJob(type="t", queue="slow"),
            NewJob(type="t", payload={"ok": True}),
        ]
    )
    jobs = await claim(backend, queues=["default"])
    assert [j.payload for j in jobs] == [{"ok": True}]
    assert await claim(backend) != []  # the "slow" queue job, now that queues are not filtered
    assert await claim(backend) == []


async def test_claim_never_exceeds_free_slots(backend):
    await backend.job_insert_many([NewJob(type="a") for _ in range(10)])
    await backend.job_insert_many([NewJob(type="b") for _ in range(10)])
    jobs = await claim(backend, slot("a", free=2), slot("b", free=5), limit=4)
    assert len(jobs) == 4
    assert sum(j.type == "a" for j in jobs) <= 2
    jobs = await claim(backend, slot("a", free=1), slot("b", free=0), limit=10)
    assert [j.type for j in jobs] == ["a"]


async def test_concurrent_claims_never_share_a_job(backend):
    await backend.job_insert_many([NewJob(type="t") for _ in range(200)])
    seen: list[int] = []

    async def claimer(worker: str) -> None:
        while jobs := await claim(backend, slot(free=7), worker=worker, limit=7):
            seen.extend(j.id for j in jobs)

    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(claimer, f"w{i}")
    assert len(seen) == 200
    assert len(set(seen)) == 200


async def test_finish_is_fenced_by_worker_and_attempt(backend):
    await backend.job_insert_many([NewJob(type="t")])
    [job] = await claim(backend)
    wrong_worker = Outcome(id=job.id, attempt=1, kind=OutcomeKind.COMPLETED, result_json='{"x":1}')
    assert await backend.job_finish_many(worker="intruder", outcomes=[wrong_worker]) == set()
    wrong_attempt = Outcome(id=job.id, attempt=2, kind=OutcomeKind.COMPLETED, result_json="1")
    assert await backend.job_finish_many(worker="w1", outcomes=[wrong_attempt]) == set()
    assert (await backend.job_get(job.id)).status == "running"
    assert await backend.job_finish_many(worker="w1", outcomes=[wrong_worker]) == {job.id}
    done = await backend.job_get(job.id)
    assert (done.status, done.result, done.progress) == ("completed", {"x": 1}, 1.0)
    assert done.finished_at is not None and done.locked_by is None
    # A late duplicate completion changes nothing.
    assert await backend.job_finish_many(worker="w1", outcomes=[wrong_worker]) == set()


async def test_retry_outcome_waits_then_runs_again(backend):
    await backend.job_insert_many([NewJob(type="t")])
    [job] = await claim(backend)
    retry = Outcome(
        id=job.id, attempt=1, kind=OutcomeKind.RETRIED, error="ValueError: x", delay=3600
    )
    await backend.job_finish_many(worker="w1", outcomes=[retry])
    again = await backend.job_get(job.id)
    assert (again.status, again.attempts, again.error) == ("pending", 1, "ValueError: x")
    assert again.finished_at is None
    assert await claim(backend) == []  # not due yet
    assert 3500 < await backend.job_next_run_in(["t"]) <= 3600
    await backend.job_finish_many(worker="w1", outcomes=[])
    soon = Outcome(id=job.id, attempt=1, kind=OutcomeKind.RETRIED, error="e", delay=0)
    assert await backend.job_finish_many(worker="w1", outcomes=[soon]) == set()  # not running


async def test_released_job_gets_its_attempt_back(backend):
    await backend.job_insert_many([NewJob(type="t")])
    [job] = await claim(backend)
    await backend.job_finish_many(
        worker="w1", outcomes=[Outcome(id=job.id, attempt=1, kind=OutcomeKind.RELEASED)]
    )
    back = await backend.job_get(job.id)
    assert (back.status, back.attempts, back.locked_by) == ("pending", 0, None)
    [again] = await claim(backend)
    assert again.attempts == 1


async def test_failed_outcome_is_final(backend):
    await backend.job_insert_many([NewJob(type="t")])
    [job] = await claim(backend)
    failed = Outcome(id=job.id, attempt=1, kind=OutcomeKind.FAILED, error="PermanentFailure: no")
    await backend.job_finish_many(worker="w1", outcomes=[failed])
    done = await backend.job_get(job.id)
    assert (done.status, done.error) == ("failed", "PermanentFailure: no")
    assert done.finished_at is not None


async def test_extend_leases_reports_owned_and_cancel_requested(backend):
    await backend.job_insert_many([NewJob(type="t") for _ in range(3)])
    a, b, c = await claim(backend, slot(lease=5))
    before = (await backend.job_get(a.id)).locked_until
    await backend.job_cancel(b.id)
    held = [Held(id=j.id, attempt=1, lease=120) for j in (a, b, c)]
    held.append(Held(id=c.id, attempt=2, lease=120))
    report = await backend.job_extend_leases(worker="w1", held=held)
    assert report.owned == {a.id, b.id, c.id}
    assert report.cancel_requested == {b.id}
    assert (await backend.job_get(a.id)).locked_until > before
    other = await backend.job_extend_leases(worker="w2", held=held)
    assert other.owned == set()


async def test_rescue_retries_or_fails_expired_jobs(engine, backend):
    await backend.job_insert_many([NewJob(type="t"), NewJob(type="t", max_attempts=1)])
    await backend.job_insert_many([NewJob(type="t")])
    jobs = await claim(backend, limit=3)
    assert await backend.job_rescue_expired() == []  # leases are fresh
    await backend.job_cancel(jobs[2].id)
    await engine.expire_leases()
    rescued = {r.id: r.status for r in await backend.job_rescue_expired()}
    assert rescued == {jobs[0].id: "pending", jobs[1].id: "failed", jobs[2].id: "cancelled"}
    job = await backend.job_get(jobs[0].id)
    assert job.error.startswith("LeaseExpired: worker w1")
    assert job.locked_by is None
    # The old worker's late completion is refused; the next attempt is claimable.
    late = Outcome(id=jobs[0].id, attempt=1, kind=OutcomeKind.COMPLETED, result_json="1")
    assert await backend.job_finish_many(worker="w1", outcomes=[late]) == set()
    [again] = await claim(backend, worker="w2")
    assert (again.id, again.attempts) == (jobs[0].id, 2)
    assert await backend.job_finish_many(worker="w1", outcomes=[late]) == set()


async def test_cancel_pending_running_and_final(backend):
    ids = await backend.job_insert_many([NewJob(type="t"), NewJob(type="t")])
    assert (await backend.job_cancel(ids[0])).status == "cancelled"
    [running] = await claim(backend)
    cancelled = await backend.job_cancel(running.id)
    assert (cancelled.status, cancelled.cancel_requested) == ("running", True)
    done = Outcome(
        id=running.id, attempt=1, kind=OutcomeKind.CANCELLED, error="cancelled on request"
    )
    await backend.job_finish_many(worker="w1", outcomes=[done])
    assert (await backend.job_cancel(running.id)).status == "cancelled"
    with pytest.raises(JobNotFound):
        await backend.job_cancel(10**9)


async def test_retry_gives_a_finished_job_fresh_attempts(backend):
    await backend.job_insert_many([NewJob(type="t", max_attempts=1)])
    [job] = await claim(backend)
    failed = Outcome(id=job.id, attempt=1, kind=OutcomeKind.FAILED, error="boom")
    await backend.job_finish_many(worker="w1", outcomes=[failed])
    again = await backend.job_retry(job.id)
    assert (again.status, again.attempts, again.finished_at) == ("pending", 0, None)
    [job2] = await claim(backend)
    assert job2.attempts == 1
    assert (await backend.job_retry(job2.id)).status == "running"  # not finished: unchanged


async def test_checkpoint_merges_keys_and_is_fenced(backend):
    await backend.job_insert_many([NewJob(type="t")])
    [job] = await claim(backend)
    ok = await backend.job_checkpoint_set(
        worker="w1", job_id=job.id, attempt=1, key="a", value_json='{"n":1}'
    )
    assert ok
    await backend.job_checkpoint_set(worker="w1", job_id=job.id, attempt=1, key="b", value_json="2")
    refused = await backend.job_checkpoint_set(
        worker="w2", job_id=job.id, attempt=1, key="c", value_json="3"
    )
    assert not refused
    assert (await backend.job_get(job.id)).checkpoint == {"a": {"n": 1}, "b": 2}


async def test_progress_is_stored_and_fenced(backend):
    await backend.job_insert_many([NewJob(type="t")])
    [job] = await claim(backend)
    await backend.job_progress_many(
        worker="w1", held=[Held(id=job.id, attempt=1, progress=0.25, message="1/4")]
    )
    await backend.job_progress_many(
        worker="w2", held=[Held(id=job.id, attempt=1, progress=0.9, message="no")]
    )
    stored = await backend.job_get(job.id)
    assert (stored.progress, stored.progress_message) == (0.25, "1/4")


async def test_list_stats_and_delete(backend):
    await backend.job_insert_many(
        [NewJob(type="a", user_id="u1"), NewJob(type="a", user_id="u2"), NewJob(type="b")]
    )
    assert len(await backend.job_list(JobFilter(user_id="u1"))) == 1
    assert len(await backend.job_list(JobFilter(type="a"))) == 2
    [job] = await claim(backend, slot("b"))
    await backend.job_finish_many(
        worker="w1", outcomes=[Outcome(id=job.id, attempt=1, kind=OutcomeKind.COMPLETED)]
    )
    stats = {(s.type, s.status): s for s in await backend.job_stats()}
    assert stats["a", "pending"].count == 2
    assert stats["a", "pending"].oldest_pending_seconds >= 0
    assert stats["b", "completed"].count == 1
    assert await backend.job_delete_finished_before(seconds=3600) == 0
    await anyio.sleep(0.05)
    assert await backend.job_delete_finished_before(seconds=0.01) == 1
    with pytest.raises(JobNotFound):
        await backend.job_get(job.id)


async def test_listen_wakes_on_insert_and_on_notify(backend):
    """An insert wakes listeners by itself; other changes are announced with `notify`."""
    wakeups: list[Wakeup] = []
    got = anyio.Event()

    def wake(w: Wakeup) -> None:
        wakeups.append(w)
        if w.cancel_job_id is not None:
            got.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(backend.listen, wake)
        await anyio.sleep(0.2)
        wakeups.clear()
        [job_id] = await backend.job_insert_many([NewJob(type="t")])
        with anyio.fail_after(5):
            while not wakeups:
                await anyio.sleep(0.01)
        await claim(backend)
        await backend.job_cancel(job_id)
        await backend.notify(Wakeup(cancel_job_id=job_id))
        with anyio.fail_after(5):
            await got.wait()
        tg.cancel_scope.cancel()
    assert Wakeup(cancel_job_id=job_id) in wakeups


async def test_worker_heartbeats_are_listed_and_removed(backend):
    from jobrunner._backend import WorkerInfo

    info = WorkerInfo(
        id="host-a:12:abc",
        host="host-a",
        pid=12,
        version="0.1.0",
        job_types=("t.a", "t.b"),
        concurrency=5,
        running=2,
        processed=7,
    )
    await backend.worker_heartbeat(info)
    await backend.worker_heartbeat(
        WorkerInfo(id="host-b:13:def", host="host-b", pid=13, version="0.1.0", concurrency=1)
    )
    await backend.worker_heartbeat(attrs_evolve(info, running=3, processed=9))
    listed = {w.id: w for w in await backend.worker_list()}
    assert set(listed) == {"host-a:12:abc", "host-b:13:def"}
    a = listed["host-a:12:abc"]
    assert (a.job_types, a.running, a.processed, a.concurrency) == (("t.a", "t.b"), 3, 9, 5)
    assert 0 <= a.seen_seconds_ago < 60
    await backend.worker_remove("host-a:12:abc")
    assert [w.id for w in await backend.worker_list()] == ["host-b:13:def"]


async def test_overdue_reports_expired_leases(engine, backend):
    assert await backend.job_overdue() == (0, None)
    await backend.job_insert_many([NewJob(type="t"), NewJob(type="t")])
    await claim(backend)
    expired, longest = await backend.job_overdue()
    assert expired == 0
    assert longest >= 0
    await engine.expire_leases()
    assert (await backend.job_overdue())[0] == 2


def attrs_evolve(value, **changes):
    import attrs

    return attrs.evolve(value, **changes)


async def test_large_enqueue_many_keeps_order_and_defaults(backend):
    jobs = [NewJob(type="t", payload={"i": i, "s": "tab\\tnew\nline"}) for i in range(1500)]
    jobs[7] = NewJob(type="t", payload={"i": 7}, user_id="u7", priority=3, max_attempts=2)
    ids = await backend.job_insert_many(jobs)
    assert len(set(ids)) == 1500
    assert ids == sorted(ids)
    for i in (0, 7, 1499):
        job = await backend.job_get(ids[i])
        assert job.payload["i"] == i
        assert (job.status, job.queue) == ("pending", "default")
    assert (await backend.job_get(ids[0])).payload["s"] == "tab\\tnew\nline"
    seventh = await backend.job_get(ids[7])
    assert (seventh.user_id, seventh.priority, seventh.max_attempts) == ("u7", 3, 2)
    [after] = await backend.job_insert_many([NewJob(type="t")])
    assert after > ids[-1]


async def test_active_stats_count_only_pending_and_running(backend):
    await backend.job_insert_many([NewJob(type="a"), NewJob(type="a"), NewJob(type="b")])
    [job] = await claim(backend, slot("b"))
    await backend.job_insert_many([NewJob(type="b")])
    done = await claim(backend, slot("b"))
    await backend.job_finish_many(
        worker="w1", outcomes=[Outcome(id=done[0].id, attempt=1, kind=OutcomeKind.COMPLETED)]
    )
    active = {(s.type, s.status): s.count for s in await backend.job_stats(active_only=True)}
    assert active == {("a", "pending"): 2, ("b", "running"): 1}
    full = {(s.type, s.status): s.count for s in await backend.job_stats()}
    assert full == {**active, ("b", "completed"): 1}
    assert job.id != done[0].id
