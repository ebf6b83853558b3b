"""The producer: claims jobs for the worker's free slots and hands them to its executors.

It never claims more than the free slots allow (plus claim-ahead for fast jobs, never past a
handler's own limit), claims again at once while full batches come back, and otherwise
sleeps until woken (a notification, a finished job, a scheduled retry) or until the next
scheduled job is due, the poll interval at most.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

import anyio
import anyio.lowlevel
import attrs

from ._ahead import ClaimAhead
from ._attempt import Attempt
from ._backend import Backend, Outcome
from ._completer import Completer
from ._dispatch import Dispatcher
from ._errors import DatabaseError
from ._job import Job
from ._ledger import Ledger
from ._outage import Outage
from ._plugin import Handler
from ._status import RESCHEDULED, OutcomeKind


@attrs.define
class RunState:
    """Whether the worker is stopping, and whether it runs in burst mode (exit when idle)."""

    stopping: bool = False
    burst: bool = False


@attrs.define(eq=False)
class Producer:
    backend: Backend
    worker_id: str
    handlers: Mapping[str, Handler]
    ledger: Ledger
    ahead: ClaimAhead
    completer: Completer
    queue: Dispatcher[Attempt]
    outage: Outage
    state: RunState
    start: Callable[[Job], Attempt]  # turn a claimed job into an attempt this worker holds
    concurrency: int
    claim_batch: int
    poll_interval: float
    queues: Sequence[str] | None = None
    # Called after every claim round, e.g. the memory check: a worker that runs fast jobs
    # must notice its memory limit between two claims, not only once a second.
    after_round: Callable[[], None] = lambda: None
    # Awaited before every claim, e.g. writing what finished jobs spent: a budget reached by
    # the job that just ended holds its user's next job at this worker's next claim.
    before_claim: Callable[[], Awaitable[None]] | None = None
    clock: Callable[[], float] = time.monotonic
    _wake: anyio.Event = attrs.field(factory=anyio.Event, init=False)
    _retry_due: float | None = attrs.field(default=None, init=False)
    _maybe_more: bool = attrs.field(default=True, init=False)  # the last claim may have left jobs
    _backlogged: bool = attrs.field(default=False, init=False)  # waiting for the completer

    # -- what others tell it -------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def ended(self, attempt: Attempt, outcome: Outcome | None) -> None:
        """An attempt ended (its slot is free again): remember a retry it scheduled, and
        wake up if that can matter."""
        if outcome is not None and outcome.kind in RESCHEDULED:
            due = self.clock() + outcome.delay
            self._retry_due = due if self._retry_due is None else min(self._retry_due, due)
        if self.should_wake(attempt, outcome):
            self._wake.set()

    def flushed(self, left: int) -> None:
        """The completer wrote a batch and has `left` outcomes buffered."""
        if self._backlogged and left <= self.backlog_limit:
            self._backlogged = False
            self._wake.set()

    # -- decisions -------------------------------------------------------------------------

    def free_total(self) -> int:
        """Jobs this worker may still claim: its free slots, plus those it may claim ahead."""
        return self.concurrency + self.ahead.jobs - len(self.ledger)

    @property
    def backlog_limit(self) -> int:
        """Outcomes waiting to be written beyond which the worker stops claiming."""
        return 10 * self.completer.batch_size

    def should_wake(self, attempt: Attempt, outcome: Outcome | None) -> bool:
        """Whether a finished job should wake the producer. Not when the last claim found the
        queue empty: that would cost a claim and a due-time query per job on a quiet queue;
        nor, while jobs claimed ahead still wait, before enough slots are free to be worth a
        claim."""
        if self.state.burst or self.state.stopping or outcome is None:
            return True
        if outcome.kind in RESCHEDULED:
            return True  # a retry or a parked job: the producer must rethink its sleep
        limit = attempt.handler.concurrency
        if limit is not None and self.ledger.of_type(attempt.job.type) + 1 >= limit:
            return True  # a type at its own limit got a slot back
        return self._maybe_more and self.free_total() >= self.ahead.claim_at

    def _stopping(self) -> bool:
        return self.state.stopping  # a call, so no reader assumes it cannot change meanwhile

    def _idle(self) -> bool:
        """Nothing held and nothing left to write."""
        return not self.ledger and not self.completer

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        """Claim until stopping (in burst mode: until nothing is left to run)."""
        while not self._stopping():
            self._wake = anyio.Event()  # reset before claiming: a wake-up during it is kept
            asked, got = await self.claim_once()
            self._maybe_more = asked <= 0 or got == asked
            if self._stopping():
                return
            if asked < 0:
                continue  # the database failed; claim_once already backed off
            # Outcomes not yet written may hand jobs back (retries): write them, then look again.
            if (
                self.state.burst
                and asked > 0
                and got == 0
                and not self.ledger
                and not self.completer
            ):
                return
            if asked == 0:
                await self.wait(None)  # no free slot: a finishing job wakes us
            elif got == asked:
                # A full batch: more may be waiting. Claim again at once while slots are free,
                # so the next claim is in flight while this batch runs.
                if self.free_total() < self.ahead.claim_at:
                    await self.wait(None)
            else:
                if got:
                    await anyio.lowlevel.checkpoint()  # start those jobs before looking ahead
                await self.wait(await self._idle_timeout())
            self.after_round()

    async def claim_once(self) -> tuple[int, int]:
        """Claim up to the free slots; return (asked, got), asked -1 after a database error."""
        free_total = self.free_total()
        slots = self.ledger.slots(self.handlers.values(), free_total)
        limit = min(sum(s.free for s in slots), free_total, self.claim_batch)
        if limit <= 0:
            return 0, 0
        if len(self.completer) > self.backlog_limit:
            self._backlogged = True  # claim again once the completer has caught up
            return 0, 0
        if self.before_claim is not None:
            await self.before_claim()
        started = time.monotonic()
        try:
            claimed = await self.backend.job_claim(
                worker=self.worker_id, slots=slots, limit=limit, queues=self.queues
            )
        except DatabaseError as exc:
            self.outage.failed("claiming jobs", exc)
            await self.wait(self.outage.delay())
            return -1, 0
        self.outage.recovered()
        if self._stopping():  # stopped during the claim: these jobs go back at once
            for job in claimed:
                self.completer.add(
                    Outcome(id=job.id, attempt=job.attempts, kind=OutcomeKind.RELEASED)
                )
        else:
            self.ahead.after_claim(time.monotonic() - started)
            self.queue.put_many([self.start(job) for job in claimed])
        return limit, len(claimed)

    async def _idle_timeout(self) -> float:
        """Sleep until the next scheduled job is due, or the poll interval, whichever is first."""
        timeout = self.poll_interval
        if self.state.burst and len(self.completer):
            return 0.05  # look again once the buffered outcomes are written
        if self.ledger and self.state.burst:
            return timeout
        if self._retry_due is not None:
            # A retry this worker scheduled may not be written yet: don't sleep past it.
            now = self.clock()
            timeout = min(timeout, max(self._retry_due - now, 0.0) + 0.001)
            if self._retry_due <= now:
                self._retry_due = None
        # Only types with a free slot: a type at its own limit is woken by its finishing jobs,
        # and counting its due jobs here would make the worker spin.
        types = [slot.type for slot in self.ledger.slots(self.handlers.values(), self.free_total())]
        if not types:
            return timeout
        try:
            due = await self.backend.job_next_run_in(types)
        except DatabaseError:
            return timeout
        if due is not None:
            timeout = min(timeout, max(due, 0.0) + 0.001)
        return timeout

    async def wait(self, timeout: float | None) -> None:
        """Sleep until woken, or `timeout` seconds (None: until woken)."""
        with anyio.move_on_after(timeout):
            await self._wake.wait()
        if timeout == 0:
            await anyio.lowlevel.checkpoint()

    async def wait_for_change(self) -> None:
        """Sleep until the next wake-up (used while draining)."""
        self._wake = anyio.Event()
        await self._wake.wait()
