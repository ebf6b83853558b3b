"""The worker's maintenance services, one round each: every service is built here with
exactly what it uses (a real backend, the real `Ledger`, `Outage` and stats), and
`run_once()` is called directly; the database shows what it decided."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from jobrunner import ClaimSlot, Job, JobContext, JobFilter, NewJob, Outcome, OutcomeKind
from jobrunner._attempt import Attempt, StopReason
from jobrunner._backend import Backend, Rescued, WorkerInfo
from jobrunner._context import JobServices
from jobrunner._errors import DatabaseError
from jobrunner._ledger import Ledger
from jobrunner._limits import TypeLimits
from jobrunner._observe import Observer
from jobrunner._outage import Outage
from jobrunner._plugin import Handler
from jobrunner._schedules import Schedule
from jobrunner._services import (
    Declaration,
    Heartbeat,
    LeaseKeeper,
    ProgressWriter,
    Pruner,
    Rescuer,
    Scheduler,
    Service,
    UsageWriter,
)
from jobrunner._sqlite import SQLiteBackend
from jobrunner._status import JobStatus

pytestmark = pytest.mark.anyio

WORKER = "host:1:w1"


async def _noop(ctx: JobContext) -> None:
    return None


async def claim(backend: Backend, *, worker: str = WORKER, lease: float = 5.0) -> list[Job]:
    slot = ClaimSlot(type="t", free=10, max_attempts=3, lease=lease)
    return await backend.job_claim(worker=worker, slots=[slot], limit=10, queues=None)


def hold(ledger: Ledger, backend: Backend, job: Job, *, lease: float = 120.0) -> Attempt:
    """Hold `job` in `ledger` as this worker's attempt, with a handler of lease `lease`."""
    services = JobServices(worker_id=WORKER, backend=backend, enqueue_many=backend.job_insert_many)
    attempt = Attempt(
        job=job,
        handler=Handler(type=job.type, func=_noop, lease=lease),
        ctx=JobContext(job=job, services=services),
    )
    ledger.add(attempt)
    return attempt


async def ids(backend: Backend) -> set[int]:
    return {j.id for j in await backend.job_list(JobFilter(limit=1000))}


def seconds(delta: dt.timedelta | None) -> float:
    assert delta is not None
    return delta.total_seconds()


# -- LeaseKeeper -----------------------------------------------------------------------------


async def test_lease_keeper_extends_held_attempts_and_unwritten_outcomes(backend):
    await backend.job_insert_many([NewJob(type="t") for _ in range(3)])
    a, b, done = await claim(backend, lease=5)
    ledger = Ledger()
    attempts = [hold(ledger, backend, a, lease=120), hold(ledger, backend, b, lease=120)]
    unwritten = [Outcome(id=done.id, attempt=1, kind=OutcomeKind.COMPLETED)]
    stats: Counter[str] = Counter()
    keeper = LeaseKeeper(
        backend=backend,
        worker_id=WORKER,
        outage=Outage(),
        ledger=ledger,
        unwritten=lambda: unwritten,
        leases={"t": 120.0, "other": 300.0},
        stats=stats,
    )
    assert await keeper.run_once() == 40.0  # a third of the shortest lease
    after = {j.id: (await backend.job_get(j.id)).locked_until for j in (a, b, done)}
    for job in (a, b):  # the handler's 120 s, not the 5 s of the claim
        assert seconds(after[job.id] - job.locked_until) > 60
    # An outcome not written yet: its job keeps the longest lease of any type.
    assert seconds(after[done.id] - after[a.id]) > 120
    assert [x.stop_reason for x in attempts] == [None, None]
    assert stats == {}


async def test_lease_keeper_stops_lost_and_cancel_requested_attempts(engine, backend):
    await backend.job_insert_many([NewJob(type="t")])
    [lost] = await claim(backend)
    await engine.expire_leases()
    await backend.job_rescue_expired()
    [taken] = await claim(backend, worker="host:2:w2")  # another worker runs it now
    assert (taken.id, taken.attempts) == (lost.id, 2)
    await backend.job_insert_many([NewJob(type="t"), NewJob(type="t")])
    kept, cancelled = await claim(backend)
    await backend.job_cancel(cancelled.id)
    ledger = Ledger()
    held = {job.id: hold(ledger, backend, job) for job in (lost, kept, cancelled)}
    stats: Counter[str] = Counter()
    keeper = LeaseKeeper(
        backend=backend,
        worker_id=WORKER,
        outage=Outage(),
        ledger=ledger,
        unwritten=list,
        leases={"t": 120.0},
        stats=stats,
    )
    await keeper.run_once()
    assert held[lost.id].stop_reason is StopReason.LOST
    assert held[cancelled.id].stop_reason is StopReason.CANCEL
    assert held[cancelled.id].ctx.cancel_requested
    assert held[kept.id].stop_reason is None and not held[kept.id].ctx.cancel_requested
    assert stats == {"lease_lost": 1}
    assert (await backend.job_get(lost.id)).locked_by == "host:2:w2"  # still the other's


# -- ProgressWriter --------------------------------------------------------------------------


async def test_progress_writer_stores_the_reports_made_since_its_last_round(backend):
    await backend.job_insert_many([NewJob(type="t"), NewJob(type="t")])
    a, b = await claim(backend)
    ledger = Ledger()
    pa, pb = hold(ledger, backend, a), hold(ledger, backend, b)
    pa.ctx.progress(0.5, "reading postgresql://me:hunter2@db.example/x")
    writer = ProgressWriter(backend=backend, worker_id=WORKER, outage=Outage(), ledger=ledger)
    assert await writer.run_once() == 1.0
    stored = await backend.job_get(a.id)
    assert (stored.progress, stored.progress_message) == (
        0.5,
        "reading postgresql://me:***@db.example/x",  # redacted before it is stored
    )
    untouched = await backend.job_get(b.id)
    assert (untouched.progress, untouched.progress_message) == (None, None)
    assert not pa.ctx.progress_dirty
    pb.ctx.progress(1.0)
    await writer.run_once()
    assert (await backend.job_get(b.id)).progress == 1.0
    assert (await backend.job_get(a.id)).progress_message.endswith("***@db.example/x")


# -- Rescuer ---------------------------------------------------------------------------------


@attrs.define
class Seen(Observer):
    rescued: list[Rescued] = attrs.field(factory=list)

    def jobs_rescued(self, rescued: Sequence[Rescued]) -> None:
        self.rescued.extend(rescued)


def rescuer(backend: Backend, observer: Observer, stats: Counter[str], wakes: list[int]) -> Rescuer:
    return Rescuer(
        backend=backend,
        outage=Outage(),
        observer=observer,
        stats=stats,
        wake=lambda: wakes.append(1),
        leases={"t": 30.0},
    )


async def test_rescuer_returns_expired_jobs_to_pending_and_leaves_live_ones(engine, backend):
    await backend.job_insert_many([NewJob(type="t"), NewJob(type="t")])
    expired = await claim(backend)
    await engine.expire_leases()
    await backend.job_insert_many([NewJob(type="t")])
    [live] = await claim(backend)
    seen, stats, wakes = Seen(), Counter[str](), list[int]()
    service = rescuer(backend, seen, stats, wakes)
    assert await service.run_once() == 15.0  # half the shortest lease
    for job in expired:
        back = await backend.job_get(job.id)
        assert (back.status, back.locked_by) == (JobStatus.PENDING, None)
    still = await backend.job_get(live.id)
    assert (still.status, still.locked_by) == (JobStatus.RUNNING, WORKER)
    assert stats == {"rescued": 2}
    assert {r.id for r in seen.rescued} == {j.id for j in expired}
    assert wakes == [1]  # this worker's producer, once
    await service.run_once()  # nothing else expired
    assert (stats, wakes, len(seen.rescued)) == ({"rescued": 2}, [1], 2)


async def test_rescuer_fails_a_job_out_of_attempts_and_wakes_nobody(engine, backend):
    await backend.job_insert_many([NewJob(type="t", max_attempts=1)])
    [job] = await claim(backend)
    await engine.expire_leases()
    seen, stats, wakes = Seen(), Counter[str](), list[int]()
    await rescuer(backend, seen, stats, wakes).run_once()
    assert (await backend.job_get(job.id)).status == JobStatus.FAILED
    assert [(r.id, r.status) for r in seen.rescued] == [(job.id, JobStatus.FAILED)]
    assert (stats, wakes) == ({"rescued": 1}, [])  # nothing became runnable


# -- Heartbeat -------------------------------------------------------------------------------


async def test_heartbeat_writes_the_worker_row_and_ends_an_outage(backend):
    info = WorkerInfo(
        id=WORKER, host="host", pid=1, version="1.0", job_types=("t",), concurrency=4, running=1
    )
    now = {"info": info}
    outage = Outage()
    outage.failed("claiming jobs", DatabaseError("the database went away"))
    heartbeat = Heartbeat(backend=backend, outage=outage, info=lambda: now["info"])
    assert await heartbeat.run_once() == 10.0
    [row] = await backend.worker_list()
    assert (row.id, row.job_types, row.concurrency, row.running) == (WORKER, ("t",), 4, 1)
    assert not outage.down  # the database answered
    now["info"] = attrs.evolve(info, running=3, processed=9)
    await heartbeat.run_once()
    [row] = await backend.worker_list()
    assert (row.running, row.processed) == (3, 9)
    await heartbeat.remove()
    assert await backend.worker_list() == []


# -- Pruner ----------------------------------------------------------------------------------


async def finish(backend: Backend, job: Job, kind: OutcomeKind) -> None:
    outcome = Outcome(id=job.id, attempt=job.attempts, kind=kind, error="e")
    assert await backend.job_finish_many(worker=WORKER, outcomes=[outcome]) == {job.id}


async def finished_ago(engine: Any, job: Job, age: float) -> None:
    if engine.name == "postgres":
        query = "UPDATE {job} SET finished_at = now() - make_interval(secs => ?) WHERE id = ?"
    else:
        query = "UPDATE {job} SET finished_at = finished_at - ? WHERE id = ?"
    await engine.sql(query, age, job.id)


async def test_pruner_deletes_finished_jobs_older_than_the_retention(engine, backend):
    await backend.job_insert_many([NewJob(type="t") for _ in range(5)])
    old_done, old_failed, old_cancelled, new_done, running = await claim(backend)
    [pending] = await backend.job_insert_many([NewJob(type="t")])
    finished = [
        (old_done, OutcomeKind.COMPLETED),
        (old_failed, OutcomeKind.FAILED),
        (old_cancelled, OutcomeKind.CANCELLED),
        (new_done, OutcomeKind.COMPLETED),
    ]
    for job, kind in finished:
        await finish(backend, job, kind)
    for job in (old_done, old_failed, old_cancelled):
        await finished_ago(engine, job, 7200)
    await finished_ago(engine, new_done, 1800)
    pruner = Pruner(backend=backend, outage=Outage(), retention=3600)
    assert await pruner.run_once() == 3600  # fewer than a batch: again in an hour
    assert await ids(backend) == {new_done.id, running.id, pending}


async def test_pruner_comes_back_at_once_while_batches_are_full(engine, backend):
    await backend.job_insert_many([NewJob(type="t") for _ in range(3)])
    jobs = await claim(backend)
    for job in jobs:
        await finish(backend, job, OutcomeKind.COMPLETED)
        await finished_ago(engine, job, 7200)
    pruner = Pruner(backend=backend, outage=Outage(), retention=3600, batch=2)
    assert await pruner.run_once() == 1
    assert len(await ids(backend)) == 1
    assert await pruner.run_once() == 3600
    assert await ids(backend) == set()


# -- UsageWriter -----------------------------------------------------------------------------


async def test_usage_writer_writes_recorded_usage_once(backend):
    a, b = await backend.job_insert_many([NewJob(type="t", user_id="u1"), NewJob(type="t")])
    writer = UsageWriter(backend=backend, outage=Outage())
    writer.add(a, "u1", {"tokens": 100, "cost_usd": 0.5})
    writer.add(a, "u1", {"tokens": 20})
    writer.add(b, None, {"images": 1})
    assert await writer.run_once() == 1.0
    await writer.run_once()  # nothing new: nothing is added twice
    assert (await backend.job_get(a)).usage == {"tokens": 120, "cost_usd": 0.5}
    assert (await backend.job_get(b)).usage == {"images": 1}
    totals = {(t.user_id, t.unit): t.amount for t in await backend.usage_totals()}
    assert totals == {("u1", "tokens"): 120, ("u1", "cost_usd"): 0.5}


# -- Scheduler and Declaration ---------------------------------------------------------------


async def backdate(engine: Any, name: str, age: float) -> None:
    """Move a schedule's next tick `age` seconds into the past."""
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
    await engine.sql(query, age, name)


async def test_scheduler_enqueues_a_due_tick_once(engine, backend):
    scheduler = Scheduler(backend=backend, outage=Outage(), max_payload_bytes=1 << 20, longest=60)
    assert await scheduler.run_once() == 60  # no schedule: look again after `longest`
    await backend.schedule_add(Schedule(name="s", type="t", every=30, payload={"p": 1}))
    assert 20 < await scheduler.run_once() < 31  # its first tick is ahead (SQLite: ± float)
    assert await ids(backend) == set()
    await backdate(engine, "s", 1)
    assert 20 < await scheduler.run_once() < 31  # the tick after
    await scheduler.run_once()
    [job] = await backend.job_list(JobFilter())
    assert (job.type, job.payload) == ("t", {"p": 1})


async def test_a_poke_makes_the_running_scheduler_look_again_at_once(engine, backend):
    await backend.schedule_add(Schedule(name="s", type="t", every=3600))
    await backdate(engine, "s", 1)
    scheduler = Scheduler(backend=backend, outage=Outage(), max_payload_bytes=1 << 20)
    with anyio.fail_after(20):  # without the poke the second job would wait for `longest`
        async with anyio.create_task_group() as tg:
            tg.start_soon(scheduler.run)
            while len(await ids(backend)) < 1:
                await anyio.sleep(0.02)
            await backdate(engine, "s", 1)
            scheduler.poke()
            while len(await ids(backend)) < 2:
                await anyio.sleep(0.02)
            tg.cancel_scope.cancel()


async def test_declaration_records_the_handlers_limits_and_the_plugins_schedules(backend):
    declaration = Declaration(
        backend=backend,
        outage=Outage(),
        defaults={"t": TypeLimits(concurrency=2)},
        schedules={"plugin:p": [Schedule(name="a", type="t", every=60)]},
    )
    assert await declaration.run_once() == 86400.0  # again tomorrow
    [state] = await backend.limits_list()
    assert (state.type, state.defaults.concurrency) == ("t", 2)
    [schedule] = await backend.schedules_list()
    assert (schedule.name, schedule.origin) == ("a", "plugin:p")


# -- a database that fails -------------------------------------------------------------------


@pytest.fixture
async def unready(tmp_path: Path) -> AsyncIterator[SQLiteBackend]:
    """A real database that refuses every statement: its schema was never applied."""
    backend = SQLiteBackend(tmp_path / "unready.db")
    await backend.open()
    yield backend
    await backend.aclose()


def _held(backend: Backend) -> Ledger:
    ledger = Ledger()
    attempt = hold(ledger, backend, Job(id=1, type="t", attempts=1, max_attempts=3))
    attempt.ctx.progress(0.5)
    return ledger


SERVICES: dict[str, tuple[Callable[[Backend, Outage], Service], float]] = {
    "lease keeper": (
        lambda b, o: LeaseKeeper(
            backend=b,
            worker_id=WORKER,
            outage=o,
            ledger=_held(b),
            unwritten=list,
            leases={"t": 30.0},
            stats=Counter(),
        ),
        10.0,
    ),
    "progress writer": (
        lambda b, o: ProgressWriter(backend=b, worker_id=WORKER, outage=o, ledger=_held(b)),
        1.0,
    ),
    "rescuer": (
        lambda b, o: Rescuer(
            backend=b, outage=o, observer=Observer(), stats=Counter(), wake=list, leases={}
        ),
        15.0,
    ),
    "heartbeat": (
        lambda b, o: Heartbeat(
            backend=b, outage=o, info=lambda: WorkerInfo(id=WORKER, host="h", pid=1, version="1")
        ),
        10.0,
    ),
    "pruner": (lambda b, o: Pruner(backend=b, outage=o, retention=60), 3600.0),
    "scheduler": (lambda b, o: Scheduler(backend=b, outage=o, max_payload_bytes=1024), 5.0),
    "declaration": (
        lambda b, o: Declaration(backend=b, outage=o, defaults={"t": TypeLimits()}),
        5.0,
    ),
}


@pytest.mark.parametrize("name", list(SERVICES))
async def test_a_failed_round_is_reported_to_the_outage_and_tried_again(unready, name):
    make, again = SERVICES[name]
    outage = Outage()
    service = make(unready, outage)
    assert await service.run_once() == again
    assert outage.down and outage.failures == 1
    if isinstance(service, LeaseKeeper):  # a failed renewal is not a lost lease
        assert [a.stop_reason for a in service.ledger] == [None]
        assert service.stats == {}


async def test_usage_the_database_refused_is_written_in_a_later_round(unready, tmp_path):
    from jobrunner._schema import migrate

    outage = Outage()
    writer = UsageWriter(backend=unready, outage=outage)
    writer.add(1, "u1", {"tokens": 5})
    await writer.run_once()
    assert outage.down
    await migrate(unready)  # the database is ready now
    [job_id] = await unready.job_insert_many([NewJob(type="t", user_id="u1")])
    assert job_id == 1
    await writer.run_once()
    assert (await unready.job_get(1)).usage == {"tokens": 5}
    totals = {(t.user_id, t.unit): t.amount for t in await unready.usage_totals()}
    assert totals == {("u1", "tokens"): 5}
