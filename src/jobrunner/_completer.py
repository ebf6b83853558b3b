"""Write outcomes in batches: flush on size or interval, and always on stop."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio
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
    rejected: int = attrs.field(default=0, init=False)
    _lock: anyio.Lock = attrs.field(factory=anyio.Lock, init=False)
    _buffer: list[Outcome] = attrs.field(factory=list, init=False)
    _ready: anyio.Event = attrs.field(factory=anyio.Event, init=False)
    # Called after each written batch with the number of outcomes still buffered.
    on_flushed: Callable[[int], None] = lambda left: None
    # Awaited before each write, e.g. what the jobs spent: their usage reaches the database
    # before their outcomes free their slots for other workers, whose budgets then see it.
    before_write: Callable[[], Awaitable[None]] | None = None

    def add(self, outcome: Outcome) -> None:
        self._buffer.append(outcome)
        if len(self._buffer) == 1:  # the first of a batch wakes the flusher
            self._ready.set()

    @property
    def pending(self) -> list[Outcome]:
        return list(self._buffer)

    def __len__(self) -> int:
        return len(self._buffer)

    async def run(self) -> None:
        """Flush forever; cancelled on stop, after which `drain` writes what is left."""
        while True:
            await self._ready.wait()
            if len(self._buffer) < self.batch_size:
                await anyio.sleep(self.interval)
            if not await self.flush_once():
                await anyio.sleep(self.outage.delay())

    async def flush_once(self) -> bool:
        """Write one batch; False when the database failed (the batch stays buffered)."""
        async with self._lock:  # one writer at a time: the run loop and a final drain may overlap
            batch = self._buffer[: self.batch_size]
            if not batch:
                self._ready = anyio.Event()
                return True
            try:
                # Shielded: a write cancelled mid-flight may still commit, and writing the
                # batch again would then look like a lost lease.
                accepted = await self._finish(batch)
            except DatabaseError as exc:
                if exc.transient:
                    self.outage.failed("writing job outcomes", exc)
                    return False
                accepted = await self._write_one_by_one(batch, exc)
            self.outage.recovered()
            del self._buffer[: len(batch)]  # only appends happen meanwhile: the head is `batch`
            if not self._buffer:
                self._ready = anyio.Event()
        self.on_flushed(len(self._buffer))
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
        return True

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
        with anyio.CancelScope(shield=True):
            if self.before_write is not None:
                await self.before_write()
            accepted = await self.backend.job_finish_many(worker=self.worker_id, outcomes=outcomes)
        return accepted

    async def drain(self, deadline: float) -> None:
        """Write everything buffered, retrying until `deadline` (anyio.current_time())."""
        with anyio.CancelScope(shield=True):
            while self._buffer and anyio.current_time() < deadline:
                if not await self.flush_once():
                    await anyio.sleep(
                        min(self.outage.delay(), max(deadline - anyio.current_time(), 0))
                    )
        if self._buffer:
            log.error(
                "%d job outcomes could not be written before stopping; their leases will expire "
                "and the jobs will be retried",
                len(self._buffer),
            )
