"""The worker's maintenance services: lease renewal, progress, rescue, heartbeat, pruning.

Each is built with exactly what it uses (never the worker) and does one round in
`run_once()`, which returns the seconds until the next round; tests call it directly.
`run_service` repeats it. A database failure is reported to the shared `Outage` (logged
once per outage) and the service tries again on its next round.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol, TypeVar

import anyio
import attrs

from ._attempt import StopReason
from ._backend import Backend, Held, Outcome, Wakeup, WorkerInfo
from ._budgets import UsageEntry
from ._errors import DatabaseError
from ._ledger import Ledger
from ._limits import TypeLimits
from ._observe import Observer
from ._outage import Outage
from ._schedules import Schedule, decide
from ._secrets import redact
from ._status import JobStatus

log = logging.getLogger("jobrunner.worker")

HEARTBEAT_INTERVAL = 10.0
STATEMENT_GRACE = 10.0

T = TypeVar("T")


class Service(Protocol):
    def first_delay(self) -> float:
        """Seconds to wait after start before the first round."""
        ...

    async def run_once(self) -> float:
        """Do one round; return the seconds until the next."""
        ...


async def run_service(service: Service) -> None:
    """Run `service` round after round until cancelled."""
    delay = service.first_delay()
    while True:
        await anyio.sleep(delay)
        delay = await service.run_once()


async def finishing(call: Awaitable[T]) -> T:
    """Await a short maintenance statement even while the worker stops (for up to
    STATEMENT_GRACE seconds): one cancelled mid-flight makes psycopg cancel it on the server
    and drop the connection, with a warning in the log."""
    with anyio.CancelScope(shield=True) as scope:
        scope.deadline = anyio.current_time() + STATEMENT_GRACE
        return await call
    raise DatabaseError(f"the database did not answer within {STATEMENT_GRACE:g}s")


def shortest(leases: Mapping[str, float]) -> float:
    return min(leases.values(), default=30.0)


@attrs.define(eq=False)
class LeaseKeeper:
    """Extends the leases of held jobs every third of the shortest lease; stops the attempts
    whose lease was lost or whose job was asked to cancel."""

    backend: Backend
    worker_id: str
    outage: Outage
    ledger: Ledger
    unwritten: Callable[[], list[Outcome]]  # outcomes not yet written: still held
    leases: Mapping[str, float]  # by job type
    stats: Counter[str]

    def first_delay(self) -> float:
        return shortest(self.leases) / 3

    async def run_once(self) -> float:
        period = shortest(self.leases) / 3
        held = self.ledger.held(self.unwritten(), self.leases)
        if not held:
            return period
        try:
            report = await finishing(
                self.backend.job_extend_leases(worker=self.worker_id, held=held)
            )
        except DatabaseError as exc:
            self.outage.failed("extending leases", exc)
            return period
        asked = {(h.id, h.attempt) for h in held}  # jobs claimed meanwhile were not asked
        for attempt in self.ledger:
            job = attempt.job
            if (job.id, job.attempts) in asked and job.id not in report.owned:
                self.stats["lease_lost"] += 1
                attempt.stop(StopReason.LOST)
            elif job.id in report.cancel_requested:
                attempt.ctx.cancel_requested = True
                attempt.stop(StopReason.CANCEL)
        return period


@attrs.define(eq=False)
class ProgressWriter:
    """Stores, every second, the progress reports made since (redacted, fenced)."""

    backend: Backend
    worker_id: str
    outage: Outage
    ledger: Ledger
    interval: float = 1.0

    def first_delay(self) -> float:
        return self.interval

    async def run_once(self) -> float:
        dirty = [a for a in self.ledger if a.ctx.progress_dirty]
        if not dirty:
            return self.interval
        for attempt in dirty:
            attempt.ctx.progress_dirty = False
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
            await finishing(self.backend.job_progress_many(worker=self.worker_id, held=held))
        except DatabaseError as exc:
            self.outage.failed("storing progress", exc)
        return self.interval


@attrs.define(eq=False)
class Rescuer:
    """Takes back jobs whose lease expired, on any worker, every half lease, and wakes the
    workers when that made jobs runnable."""

    backend: Backend
    outage: Outage
    observer: Observer
    stats: Counter[str]
    wake: Callable[[], None]  # this worker's producer
    leases: Mapping[str, float]
    rand: Callable[[], float] = random.random

    def first_delay(self) -> float:
        return self.rand()  # soon after start: a restarted host's jobs come back fast

    async def run_once(self) -> float:
        period = max(shortest(self.leases) / 2, 1.0)
        try:
            rescued = await finishing(self.backend.job_rescue_expired())
        except DatabaseError as exc:
            self.outage.failed("rescuing expired jobs", exc)
            return period
        if not rescued:
            return period
        self.observer.jobs_rescued(rescued)
        for job in rescued:
            self.stats["rescued"] += 1
            log.warning(
                "job %s (%s) lease expired; now %s",
                job.id,
                job.type,
                job.status,
                extra={"job_id": job.id, "job_type": job.type, "event": "rescued"},
            )
        if any(job.status is JobStatus.PENDING for job in rescued):
            self.wake()
            try:
                await finishing(self.backend.notify(Wakeup()))
            except DatabaseError as exc:
                self.outage.failed("waking the workers", exc)
        return period


@attrs.define(eq=False)
class Heartbeat:
    """Registers the worker and refreshes its heartbeat row; removes it on a clean stop."""

    backend: Backend
    outage: Outage
    info: Callable[[], WorkerInfo]
    interval: float = HEARTBEAT_INTERVAL

    def first_delay(self) -> float:
        return 0.0

    async def run_once(self) -> float:
        try:
            await finishing(self.backend.worker_heartbeat(self.info()))
        except DatabaseError as exc:
            self.outage.failed("sending the heartbeat", exc)
        else:
            self.outage.recovered()
        return self.interval

    async def remove(self) -> None:
        """Remove the heartbeat row of a worker that stopped cleanly."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            try:
                await self.backend.worker_remove(self.info().id)
            except DatabaseError as exc:
                log.debug("could not remove the heartbeat row: %s", exc)


@attrs.define(eq=False)
class Declaration:
    """Records what the code declares in the database, where every worker reads it: the
    handlers' default limits and the plugins' schedules; at start, again after a failure,
    then once a day."""

    backend: Backend
    outage: Outage
    defaults: Mapping[str, TypeLimits]
    schedules: Mapping[str, Sequence[Schedule]] = attrs.field(factory=dict)  # by origin

    def first_delay(self) -> float:
        return 0.0

    async def run_once(self) -> float:
        try:
            await finishing(self.backend.limits_declare(self.defaults))
            for origin, schedules in self.schedules.items():
                await finishing(self.backend.schedules_declare(origin, schedules))
        except DatabaseError as exc:
            self.outage.failed("declaring the handlers' limits and schedules", exc)
            return 5.0
        return 86400.0


@attrs.define(eq=False)
class UsageWriter:
    """Writes what jobs recorded with `ctx.record_usage`: before their outcomes are written
    and before this worker's next claim (so a budget the last job reached holds its user's
    next job on every worker), every second (a long job's spending so far), and at stop."""

    backend: Backend
    outage: Outage
    interval: float = 1.0
    _pending: list[UsageEntry] = attrs.field(factory=list, init=False)
    _lock: anyio.Lock = attrs.field(factory=anyio.Lock, init=False)

    def add(self, job_id: int, user_id: str | None, amounts: Mapping[str, float]) -> None:
        self._pending.append(UsageEntry(job_id=job_id, user_id=user_id, amounts=amounts))

    def first_delay(self) -> float:
        return self.interval

    async def flush(self) -> None:
        if not self._pending and not self._lock.locked():
            return  # the common case: nothing recorded, nothing in flight
        # One write at a time: a caller that finds one in flight waits for it, since it may
        # carry this caller's entries (outcomes must not overtake their jobs' usage).
        async with self._lock:
            if not self._pending:
                return
            batch, self._pending = self._pending, []
            try:
                await finishing(self.backend.usage_add(batch))
            except DatabaseError as exc:
                self.outage.failed("recording usage", exc)
                self._pending[:0] = batch  # kept: tried again next round

    async def run_once(self) -> float:
        await self.flush()
        return self.interval


@attrs.define(eq=False)
class Scheduler:
    """Enqueues the due schedules' jobs (one worker takes each tick, under a row lock), then
    waits until the next tick of any schedule (a minute at most); `run` repeats that, and a
    change of schedules (`poke`) cuts the wait short."""

    backend: Backend
    outage: Outage
    max_payload_bytes: int
    longest: float = 60.0
    _poked: anyio.Event = attrs.field(factory=anyio.Event, init=False)

    def first_delay(self) -> float:
        return 0.0

    def poke(self) -> None:
        """Look again now (a schedule was added or changed)."""
        self._poked.set()

    async def run_once(self) -> float:
        """Enqueue the due ticks' jobs; return the seconds until the next tick."""
        self._poked = anyio.Event()  # a poke from here on is for the next round
        try:
            _, next_in = await finishing(
                self.backend.schedules_run(decide, max_payload_bytes=self.max_payload_bytes)
            )
        except DatabaseError as exc:
            self.outage.failed("running the schedules", exc)
            return 5.0
        return self.longest if next_in is None else min(max(next_in, 0.01), self.longest)

    async def run(self) -> None:
        """Round after round until cancelled, each at the next tick or at a poke."""
        await anyio.sleep(self.first_delay())
        while True:
            delay = await self.run_once()
            with anyio.move_on_after(delay):
                await self._poked.wait()


@attrs.define(eq=False)
class Pruner:
    """Deletes finished jobs older than `retention` seconds, in batches: hourly, and again
    at once while a full batch came back."""

    backend: Backend
    outage: Outage
    retention: float
    rand: Callable[[], float] = random.random
    batch: int = 10_000

    def first_delay(self) -> float:
        return 60 * self.rand()  # workers started together do not prune together

    async def run_once(self) -> float:
        try:
            deleted = await finishing(
                self.backend.job_delete_finished_before(seconds=self.retention, limit=self.batch)
            )
        except DatabaseError as exc:
            self.outage.failed("pruning finished jobs", exc)
            return 3600
        if deleted:
            log.info("pruned %d finished jobs", deleted, extra={"event": "pruned"})
        return 1 if deleted >= self.batch else 3600


@attrs.define(eq=False)
class MemoryGuard:
    """Calls `exceeded(rss)` once the process's resident memory passes `limit` bytes."""

    limit: int | None
    probe: Callable[[], int] | None
    exceeded: Callable[[int], None]

    def check(self) -> None:
        if not self.limit or self.probe is None:
            return
        rss = self.probe()
        if rss > self.limit:
            self.exceeded(rss)
