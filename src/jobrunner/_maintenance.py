"""The worker's maintenance loops: leases, progress, rescuing expired leases, heartbeats,
pruning."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

import anyio

from . import __version__
from ._backend import Held, WorkerInfo
from ._errors import DatabaseError
from ._secrets import redact

if TYPE_CHECKING:
    from ._worker import Worker

log = logging.getLogger("jobrunner.worker")

HEARTBEAT_INTERVAL = 10.0
STATEMENT_GRACE = 10.0

T = TypeVar("T")


async def finishing(call: Awaitable[T]) -> T:
    """Await a short maintenance statement even while the worker stops (for up to
    STATEMENT_GRACE seconds): one cancelled mid-flight makes psycopg cancel it on the server
    and drop the connection, with a warning in the log."""
    with anyio.CancelScope(shield=True) as scope:
        scope.deadline = anyio.current_time() + STATEMENT_GRACE
        return await call
    raise DatabaseError(f"the database did not answer within {STATEMENT_GRACE:g}s")


async def rescue_loop(worker: Worker) -> None:
    """Take back jobs whose lease expired, on any worker, every half lease."""
    period = max(min((h.lease for h in worker.handlers.values()), default=30.0) / 2, 1.0)
    await anyio.sleep(worker.rand())  # soon after start: a restarted host's jobs come back fast
    while True:
        try:
            rescued = await finishing(worker.backend.job_rescue_expired())
        except DatabaseError as exc:
            worker.outage.failed("rescuing expired jobs", exc)
            rescued = []
        if rescued:
            worker.observer.jobs_rescued(rescued)
        for job in rescued:
            worker.stats["rescued"] += 1
            log.warning(
                "job %s (%s) lease expired; now %s",
                job.id,
                job.type,
                job.status,
                extra={"job_id": job.id, "job_type": job.type, "event": "rescued"},
            )
        if rescued:
            worker.wake()
        await anyio.sleep(period)


def worker_info(worker: Worker) -> WorkerInfo:
    """The worker as its heartbeat row describes it."""
    host, pid, _ = worker.id.rsplit(":", 2)
    return WorkerInfo(
        id=worker.id,
        host=host,
        pid=int(pid),
        version=__version__,
        job_types=tuple(worker.handlers),
        concurrency=worker.settings.concurrency,
        running=len(worker.running),
        processed=sum(worker.stats[s] for s in ("completed", "failed", "pending", "cancelled")),
    )


async def heartbeat_loop(worker: Worker) -> None:
    while True:
        try:
            await finishing(worker.backend.worker_heartbeat(worker_info(worker)))
        except DatabaseError as exc:
            worker.outage.failed("sending the heartbeat", exc)
        else:
            worker.outage.recovered()
        await anyio.sleep(HEARTBEAT_INTERVAL)


async def unregister(worker: Worker) -> None:
    """Remove the heartbeat row of a worker that stopped cleanly."""
    with anyio.CancelScope(shield=True), anyio.move_on_after(5):
        try:
            await worker.backend.worker_remove(worker.id)
        except DatabaseError as exc:
            log.debug("could not remove the heartbeat row: %s", exc)


async def prune_loop(worker: Worker) -> None:
    """Delete finished jobs older than the retention setting, in batches."""
    assert worker.settings.retention
    await anyio.sleep(60 * worker.rand())
    while True:
        try:
            deleted = await finishing(
                worker.backend.job_delete_finished_before(seconds=worker.settings.retention)
            )
            if deleted:
                log.info("pruned %d finished jobs", deleted, extra={"event": "pruned"})
        except DatabaseError as exc:
            worker.outage.failed("pruning finished jobs", exc)
            deleted = 0
        await anyio.sleep(1 if deleted >= 10_000 else 3600)


def held_by(worker: Worker) -> list[Held]:
    """Jobs the worker holds: those running, and those whose outcome is not written yet."""
    held = [
        Held(id=a.job.id, attempt=a.job.attempts, lease=a.handler.lease)
        for a in worker.running.values()
    ]
    longest = max((h.lease for h in worker.handlers.values()), default=30.0)
    held += [Held(id=o.id, attempt=o.attempt, lease=longest) for o in worker.completer.pending]
    return held


async def lease_loop(worker: Worker) -> None:
    """Extend the leases of held jobs every third of the shortest lease; stop the attempts
    whose lease was lost or whose job was asked to cancel."""
    period = min((h.lease for h in worker.handlers.values()), default=30.0) / 3
    while True:
        await anyio.sleep(period)
        held = held_by(worker)
        if not held:
            continue
        try:
            report = await finishing(worker.backend.job_extend_leases(worker=worker.id, held=held))
        except DatabaseError as exc:
            worker.outage.failed("extending leases", exc)
            continue
        asked = {(h.id, h.attempt) for h in held}  # jobs claimed meanwhile were not asked
        for attempt in list(worker.running.values()):
            held_now = (attempt.job.id, attempt.job.attempts) in asked
            if held_now and attempt.job.id not in report.owned:
                worker.stats["lease_lost"] += 1
                attempt.stop("lost")
            elif attempt.job.id in report.cancel_requested:
                attempt.ctx.cancel_requested = True
                attempt.stop("cancel")


async def progress_loop(worker: Worker) -> None:
    """Every second: check memory, hand back jobs that waited too long for a slot, and store
    the progress reports made since."""
    while True:
        await anyio.sleep(1.0)
        worker.check_memory()  # also here: a worker whose slots are all busy never polls
        worker.hand_back_stale()
        dirty = [a for a in worker.running.values() if a.ctx.progress_dirty]
        if not dirty:
            continue
        for a in dirty:
            a.ctx.progress_dirty = False
        held = [
            Held(
                id=a.job.id,
                attempt=a.job.attempts,
                progress=a.ctx.progress_value,
                message=redact(a.ctx.progress_message) if a.ctx.progress_message else None,
            )
            for a in dirty
        ]
        try:
            await finishing(worker.backend.job_progress_many(worker=worker.id, held=held))
        except DatabaseError as exc:
            worker.outage.failed("storing progress", exc)
