"""Write outcomes in batches: flush on size or interval, and always on stop.

A batch's commit waits for the server to flush its write-ahead log, and the server's other work
can stretch that to tens of milliseconds; one batch at a time then falls behind fast jobs, and
the worker's stop waits for the backlog. So up to `writers` batches are written at once (each
outcome is for another attempt: batches never depend on each other), and only one while the
database fails.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc
import attrs

from ._backend import Backend, Outcome
from ._errors import DatabaseError
from ._outage import Outage
from ._status import OutcomeKind

log = logging.getLogger("jobrunner.worker")


@attrs.define(eq=False)
class Completer:
    """Buffers outcomes and writes them with one statement per batch."""

    backend: Backend
    worker_id: str
    outage: Outage
    batch_size: int = 500
    interval: float = 0.01
    writers: int = 3
    rejected: int = attrs.field(default=0, init=False)
    _buffer: list[Outcome] = attrs.field(factory=list, init=False)  # not being written yet
    _writing: list[list[Outcome]] = attrs.field(factory=list, init=False)  # batches in flight
    _ready: anyio.Event = attrs.field(factory=anyio.Event, init=False)  # something buffered
    _changed: anyio.Event = attrs.field(factory=anyio.Event, init=False)  # full, or a write ended
    _limiter: anyio.CapacityLimiter | None = attrs.field(default=None, init=False)
    # Called after each written batch with the number of outcomes not yet written.
    on_flushed: Callable[[int], None] = lambda left: None
    # Awaited before each write, e.g. what the jobs spent: their usage reaches the database
    # before their outcomes free their slots for other workers, whose budgets then see it.
    before_write: Callable[[], Awaitable[None]] | None = None
    # Whether more outcomes may come soon (the worker holds attempts): else a batch has nothing to
    # wait for, and an idle worker writes a job's outcome at once.
    busy: Callable[[], bool] = lambda: True

    def add(self, outcome: Outcome) -> None:
        self._buffer.append(outcome)
        if len(self._buffer) == 1:  # the first of a batch wakes the flusher
            self._ready.set()
        elif len(self._buffer) == self.batch_size:
            self._changed.set()

    @property
    def pending(self) -> list[Outcome]:
        """Outcomes not yet written: buffered, or in a batch being written."""
        return [*self._buffer, *(o for batch in self._writing for o in batch)]

    def __len__(self) -> int:
        return len(self._buffer) + sum(map(len, self._writing))

    async def run(self) -> None:
        """Write forever; cancelled on stop (batches being written finish), after which
        `drain` writes what is left."""
        async with anyio.create_task_group() as group:
            while True:
                await self._ready.wait()
                if len(self._buffer) < self.batch_size and self.busy():
                    await anyio.sleep(self.interval)
                # Another batch while one is in flight only once a full one waits: writing in
                # parallel is for catching up, not for more, smaller statements.
                while self._writing and len(self._buffer) < self.batch_size:
                    await self._change()
                await self._start_write(group, None)

    async def drain(self, deadline: float) -> None:
        """Write everything buffered, retrying until `deadline` (anyio.current_time())."""
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as group:
                while (self._buffer or self._writing) and anyio.current_time() < deadline:
                    if self._buffer:
                        await self._start_write(group, deadline)
                    else:  # a batch in flight may fail and come back
                        with anyio.move_on_after(deadline - anyio.current_time()):
                            await self._change()
        if self._buffer:
            log.error(
                "%d job outcomes could not be written before stopping; their leases will expire "
                "and the jobs will be retried",
                len(self._buffer),
            )

    async def _change(self) -> None:
        self._changed = anyio.Event()
        await self._changed.wait()

    async def _start_write(self, group: anyio.abc.TaskGroup, deadline: float | None) -> None:
        """Wait for a free writer (the batch fills meanwhile), then write the next batch."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.writers)
        token = object()
        await self._limiter.acquire_on_behalf_of(token)
        batch = self._take()
        if batch:
            group.start_soon(self._write, batch, token, deadline)
        else:
            self._limiter.release_on_behalf_of(token)

    def _take(self) -> list[Outcome]:
        batch = self._buffer[: self.batch_size]
        del self._buffer[: len(batch)]
        if not self._buffer:
            self._ready = anyio.Event()
        if batch:
            self._writing.append(batch)
        return batch

    def _put_back(self, batch: list[Outcome]) -> None:
        self._buffer[:0] = batch
        self._ready.set()

    def _done(self, batch: list[Outcome]) -> None:
        self._writing = [b for b in self._writing if b is not batch]

    async def _write(self, batch: list[Outcome], token: object, deadline: float | None) -> None:
        """Write one batch (holding a writer's token); on a transient failure put it back and
        wait out the backoff, writing one batch at a time until the database answers again."""
        limiter = self._limiter
        assert limiter is not None
        try:
            try:
                accepted = await self._finish(batch)
            except DatabaseError as exc:
                if not exc.transient:
                    accepted = await self._write_one_by_one(batch, exc)
                else:
                    self.outage.failed("writing job outcomes", exc)
                    self._done(batch)
                    self._put_back(batch)
                    limiter.total_tokens = 1
                    delay = self.outage.delay()
                    if deadline is not None:
                        delay = min(delay, max(deadline - anyio.current_time(), 0))
                    await anyio.sleep(delay)
                    return
            self.outage.recovered()
            limiter.total_tokens = self.writers
            self._done(batch)
            self.on_flushed(len(self))
            self._report(batch, accepted)
        finally:
            limiter.release_on_behalf_of(token)
            self._changed.set()

    def _report(self, batch: list[Outcome], accepted: set[int]) -> None:
        rejected = [o for o in batch if o.id not in accepted]
        if rejected:
            self.rejected += len(rejected)
            log.warning(
                "%d outcomes rejected because this worker lost their leases and the jobs were "
                "taken over (jobs %s)",
                len(rejected),
                ", ".join(str(o.id) for o in rejected[:10]) + ("…" if len(rejected) > 10 else ""),
                extra={"event": "rejected"},
            )

    async def _write_one_by_one(self, batch: list[Outcome], first: DatabaseError) -> set[int]:
        """A batch the database refused: write each outcome alone so one bad outcome cannot
        block the others; one still refused is recorded as a failure with the reason."""
        log.error("the database refused a batch of outcomes (%s); writing them one by one", first)
        accepted: set[int] = set()
        for outcome in batch:
            try:
                accepted |= await self._finish([outcome])
            except DatabaseError as exc:
                if exc.transient:
                    raise
                error = f"OutcomeRefused: the database refused this job's outcome: {exc}"[:4000]
                fallback = Outcome(
                    id=outcome.id, attempt=outcome.attempt, kind=OutcomeKind.FAILED, error=error
                )
                try:
                    accepted |= await self._finish([fallback])
                except DatabaseError as again:
                    log.error("cannot record the outcome of job %s: %s", outcome.id, again)
        return accepted

    async def _finish(self, outcomes: list[Outcome]) -> set[int]:
        # Shielded: a write cancelled mid-flight may still commit, and writing the batch again
        # would then look like a lost lease.
        with anyio.CancelScope(shield=True):
            if self.before_write is not None:
                await self.before_write()
            accepted = await self.backend.job_finish_many(worker=self.worker_id, outcomes=outcomes)
        return accepted
