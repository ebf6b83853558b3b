"""The worker: claims jobs up to its free slots, runs them, and records how they ended.

One anyio task group holds the producer, the completer and the maintenance loops
(leases, progress, rescue, pruning, notifications); a second one holds the running jobs.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anyio
import anyio.lowlevel
import attrs

from ._ahead import ClaimAhead
from ._backend import Backend, ClaimSlot, Outcome, Wakeup
from ._completer import Completer
from ._context import JobContext
from ._dispatch import Dispatcher
from ._errors import DatabaseError
from ._execute import Attempt, run_attempt, settle
from ._job import Job, NewJob
from ._joblog import job_log, log_outcome
from ._maintenance import (
    heartbeat_loop,
    lease_loop,
    progress_loop,
    prune_loop,
    rescue_loop,
    unregister,
)
from ._observe import Observer
from ._outage import Outage
from ._plugin import Handler
from ._settings import Settings

log = logging.getLogger("jobrunner.worker")

EXIT_MEMORY = 75  # EX_TEMPFAIL: the supervisor should restart us
# A job claimed ahead that waited this long for a slot goes back to the queue: the jobs turned
# out slower than the claim-ahead estimate, and another worker may be idle.
WAITING_LIMIT = 1.0


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@attrs.define(eq=False)
class Worker:
    """Runs jobs of the types in `handlers` from `backend`."""

    backend: Backend
    handlers: Mapping[str, Handler]
    settings: Settings
    resources: Mapping[str, Any] = attrs.field(factory=dict)
    id: str = attrs.field(factory=new_worker_id)
    rand: Callable[[], float] = random.random
    memory_probe: Callable[[], int] | None = None
    observer: Observer = attrs.field(factory=Observer)
    started_at: float = attrs.field(factory=time.time, init=False)
    running: dict[int, Attempt] = attrs.field(factory=dict, init=False)
    outage: Outage = attrs.field(init=False)
    completer: Completer = attrs.field(init=False)
    exit_code: int = attrs.field(default=0, init=False)
    stats: Counter[str] = attrs.field(factory=Counter, init=False)
    _stopping: bool = attrs.field(default=False, init=False)
    _wake: anyio.Event = attrs.field(factory=anyio.Event, init=False)
    _stop_now: anyio.Event = attrs.field(factory=anyio.Event, init=False)
    _burst: bool = attrs.field(default=False, init=False)
    _retry_due: float | None = attrs.field(default=None, init=False)
    _observing: bool = attrs.field(default=False, init=False)
    _by_type: Counter[str] = attrs.field(factory=Counter, init=False)  # attempts not yet ended
    _maybe_more: bool = attrs.field(default=True, init=False)  # the last claim may have left jobs
    _queue: Dispatcher[Attempt] = attrs.field(factory=Dispatcher, init=False)
    ahead: ClaimAhead = attrs.field(init=False)  # how far beyond its slots it may claim
    _backlogged: bool = attrs.field(default=False, init=False)  # waiting for the completer

    def __attrs_post_init__(self) -> None:
        self.ahead = ClaimAhead(self.settings.concurrency, self.settings.claim_ahead)
        self._observing = type(self.observer) is not Observer  # skip no-op calls per job
        self.outage = Outage(
            max_delay=self.settings.error_retry_delay, on_failure=self.observer.loop_error
        )
        self.completer = Completer(
            backend=self.backend,
            worker_id=self.id,
            outage=self.outage,
            batch_size=self.settings.completion_batch,
            interval=self.settings.completion_interval,
            on_flushed=self._on_flushed,
        )

    @property
    def max_result_bytes(self) -> int:
        return self.settings.max_result_bytes

    @property
    def poll_interval(self) -> float:
        return self.settings.poll_interval or self.backend.default_poll_interval

    # -- control -------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop claiming; running jobs get `shutdown_timeout` to finish. A second call stops now."""
        if self._stopping:
            self._stop_now.set()
        self._stopping = True
        self.ahead.off()
        self._hand_back_unstarted(self._queue.take_all(), "claimed jobs that had not started")
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    async def enqueue_many(self, jobs: Sequence[NewJob]) -> list[int]:
        ids = await self.backend.job_insert_many(
            jobs, max_payload_bytes=self.settings.max_payload_bytes
        )
        self.wake()  # same-process enqueue: no need to wait for a notification
        return ids

    # -- main loop -----------------------------------------------------------------------

    async def run(self, *, burst: bool = False) -> int:
        """Work until stopped (with `burst`: until nothing is runnable). Returns the exit code."""
        self._burst = burst
        log.info(
            "worker %s started: %d job types, concurrency %d, %s",
            self.id,
            len(self.handlers),
            self.settings.concurrency,
            "listening for notifications" if self.settings.listen else "polling only",
            extra={"event": "worker_started"},
        )
        async with anyio.create_task_group() as services:
            services.start_soon(self.completer.run)
            services.start_soon(lease_loop, self)
            services.start_soon(progress_loop, self)
            services.start_soon(rescue_loop, self)
            if self.settings.listen:
                services.start_soon(self._listen_loop)
            services.start_soon(heartbeat_loop, self)
            if self.settings.retention:
                services.start_soon(prune_loop, self)
            # A fixed pool of executor tasks, one per slot: far cheaper per job than
            # spawning a task for each.
            dispatcher = self._queue
            async with anyio.create_task_group() as pool:
                for _ in range(self.settings.concurrency):
                    pool.start_soon(self._executor, dispatcher)
                try:
                    await self._produce(dispatcher)
                    await self._drain()
                finally:
                    dispatcher.close()
            services.cancel_scope.cancel()
        await self.completer.drain(anyio.current_time() + 10)
        await unregister(self)
        log.info("worker %s stopped", self.id, extra={"event": "worker_stopped"})
        return self.exit_code

    async def _executor(self, dispatcher: Dispatcher[Attempt]) -> None:
        """Run attempts one after another inside one cancel scope, renewed only after an
        attempt was stopped (a scope per job would cost more than a no-op job)."""
        while True:
            attempt: Attempt | None = None
            with anyio.CancelScope() as scope:
                while not scope.cancel_called:
                    attempt = await dispatcher.get()
                    if attempt is None:
                        return
                    await self._run_one(attempt, scope)
                    attempt = None
            if attempt is not None:  # stopped mid-run: the cancellation ended its handler
                self._ended(attempt, settle(self, attempt))

    async def _produce(self, jobs: Dispatcher[Attempt]) -> None:
        while not self._stopping:
            self._wake = anyio.Event()  # reset before claiming: a wake-up during it is kept
            asked, got = await self._claim_into(jobs)
            self._maybe_more = asked <= 0 or got == asked
            if self._stopping:
                return
            if asked < 0:
                continue  # the database failed; _claim_into already backed off
            # Outcomes not yet written may hand jobs back (retries): write them, then look again.
            if self._burst and asked > 0 and got == 0 and not self.running and not self.completer:
                return
            if asked == 0:
                await self._wait(None)  # no free slot: a finishing job wakes us
            elif got == asked:
                # A full batch: more may be waiting. Claim again at once while slots are free,
                # so the next claim is in flight while this batch runs.
                if self._free_total() < self.ahead.claim_at:
                    await self._wait(None)
            else:
                if got:
                    await anyio.lowlevel.checkpoint()  # start those jobs before looking ahead
                await self._wait(await self._idle_timeout())
            self.check_memory()

    async def _claim_into(self, jobs: Dispatcher[Attempt]) -> tuple[int, int]:
        """Claim up to the free slots; return (asked, got), asked -1 after a database error."""
        slots = self._free_slots()
        limit = min(
            sum(s.free for s in slots),
            self._free_total(),
            self.settings.claim_batch,
        )
        if limit <= 0:
            return 0, 0
        if len(self.completer) > self._backlog_limit:
            self._backlogged = True  # claim again once the completer has caught up
            return 0, 0
        started = time.monotonic()
        try:
            claimed = await self.backend.job_claim(
                worker=self.id, slots=slots, limit=limit, queues=self.settings.queues
            )
        except DatabaseError as exc:
            self.outage.failed("claiming jobs", exc)
            await self._wait(self.outage.delay())
            return -1, 0
        self.outage.recovered()
        if self._stopping:  # stopped during the claim: these jobs go back at once
            for job in claimed:
                self.completer.add(Outcome(id=job.id, attempt=job.attempts, status="released"))
        else:
            self.ahead.after_claim(time.monotonic() - started)
            jobs.put_many([self._start(job) for job in claimed])
        return limit, len(claimed)

    @property
    def _backlog_limit(self) -> int:
        """Outcomes waiting to be written beyond which the worker stops claiming."""
        return 10 * self.settings.completion_batch

    def _on_flushed(self, left: int) -> None:
        if self._backlogged and left <= self._backlog_limit:
            self._backlogged = False
            self.wake()

    def _free_slots(self) -> list[ClaimSlot]:
        free_total = self._free_total()
        if free_total <= 0:
            return []
        by_type = self._by_type
        slots = []
        for handler in self.handlers.values():
            free = free_total
            if handler.concurrency is not None:
                free = min(free, handler.concurrency - by_type[handler.type])
            if free > 0:
                slots.append(
                    ClaimSlot(
                        type=handler.type,
                        free=free,
                        max_attempts=handler.max_attempts,
                        lease=handler.lease,
                    )
                )
        return slots

    async def _idle_timeout(self) -> float:
        """Sleep until the next scheduled job is due, or the poll interval, whichever is first."""
        timeout = self.poll_interval
        if self._burst and len(self.completer):
            return 0.05  # look again once the buffered outcomes are written
        if self.running and self._burst:
            return timeout
        if self._retry_due is not None:
            # A retry this worker scheduled may not be written yet: don't sleep past it.
            timeout = min(timeout, max(self._retry_due - time.monotonic(), 0.0) + 0.001)
            if self._retry_due <= time.monotonic():
                self._retry_due = None
        # Only types with a free slot: a type at its own limit is woken by its finishing jobs,
        # and counting its due jobs here would make the worker spin.
        types = [slot.type for slot in self._free_slots()]
        if not types:
            return timeout
        try:
            due = await self.backend.job_next_run_in(types)
        except DatabaseError:
            return timeout
        if due is not None:
            timeout = min(timeout, max(due, 0.0) + 0.001)
        return timeout

    async def _wait(self, timeout: float | None) -> None:
        with anyio.move_on_after(timeout):
            await self._wake.wait()
        if timeout == 0:
            await anyio.lowlevel.checkpoint()

    def _start(self, job: Job) -> Attempt:
        job_id, job_type = job.id, job.type
        attempt = Attempt(
            job=job, handler=self.handlers[job_type], ctx=JobContext(job=job, worker=self)
        )
        stale = self.running.get(job_id)
        if stale is not None:  # we lost this job's lease earlier and now claimed it again
            stale.stop("lost")
        self.running[job_id] = attempt
        self._by_type[job_type] += 1
        if self._observing:
            self.observer.job_started(job)
        if job_log.isEnabledFor(logging.INFO):
            attempt.ctx.log.info(
                "job %s %s claimed (attempt %s)",
                job.id,
                job.type,
                job.attempts,
                extra={"event": "claimed"},
            )
        return attempt

    async def _run_one(self, attempt: Attempt, scope: anyio.CancelScope) -> None:
        if attempt.job.cancel_requested:
            attempt.stop("cancel")
        attempt.started = time.monotonic()  # a job claimed ahead may have waited for its slot
        attempt.scope = scope
        try:
            outcome = await run_attempt(self, attempt)
        except BaseException:
            attempt.scope = None
            if not scope.cancel_called:  # cancelled from outside: the worker is going away
                self._release(attempt, None)
            raise
        attempt.scope = None
        self._ended(attempt, outcome)

    def _release(self, attempt: Attempt, outcome: Outcome | None) -> None:
        """Free the attempt's slot, and wake the producer if that can matter."""
        job = attempt.job
        job_id = job.id
        if self.running.get(job_id) is attempt:
            del self.running[job_id]
        self._by_type[job.type] -= 1
        self.ahead.ended(time.monotonic() - attempt.started)
        if self._should_wake(attempt, outcome):
            self.wake()

    def _ended(self, attempt: Attempt, outcome: Outcome | None) -> None:
        """Free the slot and record how the attempt ended."""
        self._release(attempt, outcome)
        job = attempt.job
        if outcome is not None:
            if outcome.status in ("pending", "waiting"):
                due = time.monotonic() + outcome.delay
                self._retry_due = due if self._retry_due is None else min(self._retry_due, due)
            self.completer.add(outcome)
            self.stats[outcome.status] += 1
            if self._observing:
                self.observer.job_ended(job, outcome.status, time.monotonic() - attempt.started)
                if attempt.failure is not None:
                    self.observer.job_raised(job, attempt.failure, outcome.status)
            log_outcome(attempt, outcome)
        else:
            self.stats["lost"] += 1
            attempt.ctx.log.warning(
                "job %s attempt %s abandoned: this worker lost its lease",
                job.id,
                job.attempts,
                extra={"event": "lease_lost"},
            )

    def _should_wake(self, attempt: Attempt, outcome: Outcome | None) -> bool:
        """Whether a finished job should wake the producer. Not when the last claim found the
        queue empty: that would cost a claim and a due-time query per job on a quiet queue;
        nor, while jobs claimed ahead still wait, before enough slots are free to be worth
        a claim."""
        if self._burst or self._stopping or outcome is None:
            return True
        if outcome.status in ("pending", "waiting"):
            return True  # a retry is scheduled: the producer must rethink its sleep
        limit = attempt.handler.concurrency
        if limit is not None and self._by_type[attempt.job.type] + 1 >= limit:
            return True  # a type at its own limit got a slot back
        return self._maybe_more and self._free_total() >= self.ahead.claim_at

    def _free_total(self) -> int:
        """Jobs this worker may still claim: its free slots, plus those it may claim ahead."""
        return self.settings.concurrency + self.ahead.jobs - len(self.running)

    # -- stopping ------------------------------------------------------------------------

    async def _drain(self) -> None:
        if not self.running:
            return
        log.info(
            "stopping: waiting up to %.0fs for %d running jobs",
            self.settings.shutdown_timeout,
            len(self.running),
            extra={"event": "draining"},
        )
        with anyio.move_on_after(self.settings.shutdown_timeout):
            while self.running and not self._stop_now.is_set():
                self._wake = anyio.Event()
                await self._wake.wait()
        self._hand_back()

    def hand_back_stale(self) -> None:
        """Hand back the jobs claimed ahead that waited over WAITING_LIMIT for a slot, and
        claim none ahead until jobs end again and show how long they take."""
        cutoff = time.monotonic() - WAITING_LIMIT
        stale = self._queue.take_where(lambda attempt: attempt.started < cutoff)
        if stale:
            self.ahead.off()
            self._hand_back_unstarted(
                stale, f"jobs claimed ahead that waited over {WAITING_LIMIT:g}s for a slot"
            )

    def _hand_back_unstarted(self, attempts: list[Attempt], what: str) -> None:
        """Hand back attempts taken from the queue before they started (their attempt does
        not count)."""
        if attempts:
            log.info(
                "handing back %d %s", len(attempts), what, extra={"event": "hand_back_waiting"}
            )
        for attempt in attempts:
            attempt.stop("shutdown")
            self._ended(attempt, settle(self, attempt))

    def _hand_back(self) -> None:
        if self.running:
            log.warning(
                "handing back %d unfinished jobs", len(self.running), extra={"event": "hand_back"}
            )
        # After a memory stop, running jobs are suspects: their attempt counts, so a job
        # that leaks every time ends failed instead of restarting workers forever.
        reason = "memory" if self.exit_code == EXIT_MEMORY else "shutdown"
        for attempt in list(self.running.values()):
            attempt.stop(reason)

    def check_memory(self) -> None:
        limit = self.settings.max_memory
        if not limit or self.memory_probe is None:
            return
        rss = self.memory_probe()
        if rss > limit and not self._stopping:
            log.warning(
                "memory %d MB is over the %d MB limit: draining and exiting with code %d",
                rss >> 20,
                limit >> 20,
                EXIT_MEMORY,
                extra={"event": "memory_limit"},
            )
            self.exit_code = EXIT_MEMORY
            self.stop()

    # -- notifications -------------------------------------------------------------------

    async def _listen_loop(self) -> None:
        while True:
            try:
                await self.backend.listen(self._on_wakeup)
            except DatabaseError as exc:
                self.outage.failed("listening for notifications", exc)
            await anyio.sleep(self.outage.delay())

    def _on_wakeup(self, wakeup: Wakeup) -> None:
        if wakeup.cancel_job_id is None:
            self.wake()
            return
        attempt = self.running.get(wakeup.cancel_job_id)
        if attempt is not None:
            attempt.ctx.cancel_requested = True
            attempt.stop("cancel")
