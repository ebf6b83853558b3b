"""The worker: owns the state of one worker process and wires its parts together.

    Producer ──claims──▶ Dispatcher ──▶ executors (one per slot) ──run_attempt──▶ Outcome
        ▲                                      │                                   │
        └──────── wake-ups (notifications, ended attempts, the completer) ◀──── Completer
    services: LeaseKeeper, ProgressWriter, Rescuer, Heartbeat, UsageWriter, Pruner,
              Declaration, Scheduler (each with run_once)

One anyio task group holds the producer, the completer, the services and the listener; a
second one holds the executors. Nothing below this module imports it: each part is built
here with exactly what it uses.
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
import attrs

from ._ahead import ClaimAhead
from ._attempt import Attempt, SettlePolicy, StopReason, settle
from ._backend import Backend, Outcome, Wakeup, WorkerInfo
from ._completer import Completer
from ._context import JobContext, JobServices
from ._dispatch import Dispatcher
from ._errors import DatabaseError
from ._execute import run_attempt
from ._job import Job, NewJob
from ._joblog import log_claimed, log_lost, log_outcome
from ._ledger import Ledger
from ._observe import Observer
from ._outage import Outage
from ._plugin import Handler
from ._producer import Producer, RunState
from ._schedules import Schedule
from ._services import (
    Declaration,
    Heartbeat,
    LeaseKeeper,
    MemoryGuard,
    ProgressWriter,
    Pruner,
    Rescuer,
    Scheduler,
    Service,
    UsageWriter,
    run_service,
    shortest,
)
from ._settings import Settings
from ._status import FINAL_OUTCOMES, OutcomeKind
from ._version import __version__

log = logging.getLogger("jobrunner.worker")

EXIT_MEMORY = 75  # EX_TEMPFAIL: the supervisor should restart us
# A job claimed ahead that waited this long for a slot goes back to the queue: the jobs turned
# out slower than the claim-ahead estimate, and another worker may be idle.
WAITING_LIMIT = 1.0


async def _later(delay: float, service: Service) -> None:
    """Run `service` from its next round on (its first already ran)."""
    await anyio.sleep(delay)
    await run_service(service)


def statement_timeout_for(leases: Mapping[str, float]) -> float:
    """A third of the shortest lease (a renewal that gets no answer is abandoned in time to
    try again before the lease runs out), kept between 5 s (a busy server is not a dead one)
    and 30 s."""
    return min(max(shortest(leases) / 3, 5.0), 30.0)


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
    schedules: Mapping[str, Sequence[Schedule]] = attrs.field(factory=dict)  # by origin
    started_at: float = attrs.field(factory=time.time, init=False)
    exit_code: int = attrs.field(default=0, init=False)
    stats: Counter[str] = attrs.field(factory=Counter, init=False)  # attempts by outcome
    ledger: Ledger = attrs.field(factory=Ledger, init=False)
    outage: Outage = attrs.field(init=False)
    completer: Completer = attrs.field(init=False)
    ahead: ClaimAhead = attrs.field(init=False)  # how far beyond its slots it may claim
    producer: Producer = attrs.field(init=False)
    _state: RunState = attrs.field(factory=RunState, init=False)
    _running: bool = attrs.field(default=False, init=False)
    _queue: Dispatcher[Attempt] = attrs.field(factory=Dispatcher, init=False)
    _stop_now: anyio.Event = attrs.field(factory=anyio.Event, init=False)
    _observing: bool = attrs.field(default=False, init=False)
    _services: JobServices = attrs.field(init=False)
    _policy: SettlePolicy = attrs.field(init=False)
    _memory: MemoryGuard = attrs.field(init=False)
    _heartbeat: Heartbeat = attrs.field(init=False)
    _declaration: Declaration = attrs.field(init=False)
    _usage: UsageWriter = attrs.field(init=False)
    _scheduler: Scheduler = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        settings = self.settings
        if settings.statement_timeout is not None:
            self.backend.statement_timeout = settings.statement_timeout
        elif self.backend.statement_timeout is None:
            self.backend.statement_timeout = statement_timeout_for(
                {h.type: h.lease for h in self.handlers.values()}
            )
        self._observing = type(self.observer) is not Observer  # skip no-op calls per job
        self.outage = Outage(
            max_delay=settings.error_retry_delay, on_failure=self.observer.loop_error
        )
        self.ahead = ClaimAhead(settings.concurrency, settings.claim_ahead)
        self.completer = Completer(
            backend=self.backend,
            worker_id=self.id,
            outage=self.outage,
            batch_size=settings.completion_batch,
            interval=settings.completion_interval,
            on_flushed=lambda left: self.producer.flushed(left),
            busy=lambda: bool(self.ledger),
        )
        self.producer = Producer(
            backend=self.backend,
            worker_id=self.id,
            handlers=self.handlers,
            ledger=self.ledger,
            ahead=self.ahead,
            completer=self.completer,
            queue=self._queue,
            outage=self.outage,
            state=self._state,
            start=self._start,
            concurrency=settings.concurrency,
            claim_batch=settings.claim_batch,
            poll_interval=settings.poll_interval or self.backend.default_poll_interval,
            queues=settings.queues,
            after_round=lambda: self._memory.check(),
        )
        self._usage = UsageWriter(backend=self.backend, outage=self.outage)
        self.producer.before_claim = self._usage.flush
        self.completer.before_write = self._usage.flush
        self._scheduler = Scheduler(
            backend=self.backend, outage=self.outage, max_payload_bytes=settings.max_payload_bytes
        )
        self._services = JobServices(
            worker_id=self.id,
            backend=self.backend,
            enqueue_many=self.enqueue_many,
            resources=self.resources,
            max_result_bytes=settings.max_result_bytes,
            record_usage=self._usage.add,
        )
        self._policy = SettlePolicy(
            max_result_bytes=settings.max_result_bytes,
            max_memory=settings.max_memory,
            rand=self.rand,
        )
        self._memory = MemoryGuard(
            limit=settings.max_memory, probe=self.memory_probe, exceeded=self._memory_exceeded
        )
        self._heartbeat = Heartbeat(backend=self.backend, outage=self.outage, info=self.info)
        self._declaration = Declaration(
            backend=self.backend,
            outage=self.outage,
            defaults={h.type: h.limits for h in self.handlers.values()},
            schedules=self.schedules,
        )

    # -- what others may read ------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """True once `stop()` was called (or the memory limit was passed)."""
        return self._state.stopping

    @property
    def running(self) -> int:
        """Attempts held now: running, or claimed ahead and waiting for a slot."""
        return len(self.ledger)

    def info(self) -> WorkerInfo:
        """The worker as its heartbeat row describes it."""
        host, pid, _ = self.id.rsplit(":", 2)
        return WorkerInfo(
            id=self.id,
            host=host,
            pid=int(pid),
            version=__version__,
            job_types=tuple(self.handlers),
            concurrency=self.settings.concurrency,
            running=len(self.ledger),
            processed=sum(self.stats[kind] for kind in FINAL_OUTCOMES | {OutcomeKind.RETRIED}),
        )

    # -- control -------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop claiming; running jobs get `shutdown_timeout` to finish. A second call stops now."""
        if self._state.stopping:
            self._stop_now.set()
        self._state.stopping = True
        self.ahead.off()
        self._hand_back_unstarted(self._queue.take_all(), "claimed jobs that had not started")
        self.producer.wake()

    def wake(self) -> None:
        self.producer.wake()

    async def enqueue_many(self, jobs: Sequence[NewJob]) -> list[int]:
        ids = await self.backend.job_insert_many(
            jobs, max_payload_bytes=self.settings.max_payload_bytes
        )
        self.producer.wake()  # same-process enqueue: no need to wait for a notification
        return ids

    # -- main loop -----------------------------------------------------------------------

    async def run(self, *, burst: bool = False) -> int:
        """Work until stopped (with `burst`: until nothing is runnable). Returns the exit code."""
        if self._running:
            # Two loops over one ledger and one completer would end each other's jobs.
            raise RuntimeError(f"worker {self.id} is already running")
        self._running = True
        try:
            return await self._run(burst)
        finally:
            self._running = False

    async def _run(self, burst: bool) -> int:
        self._state.burst = burst
        log.info(
            "worker %s started: %d job types, concurrency %d, %s",
            self.id,
            len(self.handlers),
            self.settings.concurrency,
            "listening for notifications" if self.settings.listen else "polling only",
            extra={"event": "worker_started"},
        )
        # Before the first claim: a limit declared by a handler holds from the start.
        again = await self._declaration.run_once()
        async with anyio.create_task_group() as services:
            services.start_soon(self.completer.run)
            services.start_soon(_later, again, self._declaration)
            services.start_soon(self._scheduler.run)  # its own loop: a poke cuts its wait
            for service in self._maintenance():
                services.start_soon(run_service, service)
            services.start_soon(self._every_second)
            if self.settings.listen:
                services.start_soon(self._listen_loop)
            async with anyio.create_task_group() as pool:
                # A fixed pool of executor tasks, one per slot: far cheaper per job than
                # spawning a task for each.
                for _ in range(self.settings.concurrency):
                    pool.start_soon(self._executor)
                try:
                    await self.producer.run()
                    await self._drain()
                finally:
                    self._queue.close()
            services.cancel_scope.cancel()
        await self.completer.drain(anyio.current_time() + 10)
        await self._usage.run_once()  # what the last jobs spent
        await self._heartbeat.remove()
        # Ready to run again (`await runner.run(burst=True)` once more, as tests do).
        self._queue.reopen()
        self._state.stopping = False
        log.info("worker %s stopped", self.id, extra={"event": "worker_stopped"})
        return self.exit_code

    def _maintenance(self) -> list[Service]:
        leases = {h.type: h.lease for h in self.handlers.values()}
        found: list[Service] = [
            LeaseKeeper(
                backend=self.backend,
                worker_id=self.id,
                outage=self.outage,
                ledger=self.ledger,
                unwritten=lambda: self.completer.pending,
                leases=leases,
                stats=self.stats,
            ),
            ProgressWriter(
                backend=self.backend, worker_id=self.id, outage=self.outage, ledger=self.ledger
            ),
            Rescuer(
                backend=self.backend,
                outage=self.outage,
                observer=self.observer,
                stats=self.stats,
                wake=self.producer.wake,
                leases=leases,
                rand=self.rand,
            ),
            self._heartbeat,
            self._usage,
        ]
        if self.settings.retention:
            found.append(
                Pruner(
                    backend=self.backend,
                    outage=self.outage,
                    retention=self.settings.retention,
                    rand=self.rand,
                )
            )
        return found

    async def _every_second(self) -> None:
        """Check memory (also while every slot is busy and nothing is claimed) and hand back
        jobs claimed ahead that waited too long for a slot."""
        while True:
            await anyio.sleep(1.0)
            self._memory.check()
            self._hand_back_stale()

    async def _executor(self) -> None:
        """Run attempts one after another inside one cancel scope, renewed only after an
        attempt was stopped (a scope per job would cost more than a no-op job)."""
        while True:
            attempt: Attempt | None = None
            with anyio.CancelScope() as scope:
                while not scope.cancel_called:
                    attempt = await self._queue.get()
                    if attempt is None:
                        return
                    await self._run_one(attempt, scope)
                    attempt = None
            if attempt is not None:  # stopped mid-run: the cancellation ended its handler
                self._ended(attempt, settle(attempt, self._policy))

    def _start(self, job: Job) -> Attempt:
        """Hold a claimed job as an attempt (it waits in the dispatcher for an executor)."""
        attempt = Attempt(
            job=job,
            handler=self.handlers[job.type],
            ctx=JobContext(job=job, services=self._services),
        )
        stale = self.ledger.add(attempt)
        if stale is not None:  # we lost this job's lease earlier and now claimed it again
            stale.stop(StopReason.LOST)
        if self._observing:
            self.observer.job_started(job)
        log_claimed(attempt)
        return attempt

    async def _run_one(self, attempt: Attempt, scope: anyio.CancelScope) -> None:
        if attempt.job.cancel_requested:
            attempt.stop(StopReason.CANCEL)
        attempt.started = time.monotonic()  # a job claimed ahead may have waited for its slot
        attempt.scope = scope
        if self._observing:
            self.observer.job_running(attempt.job)
        try:
            outcome = await run_attempt(attempt, self._policy)
        except BaseException:
            attempt.scope = None
            if not scope.cancel_called:  # cancelled from outside: the worker is going away
                self._release(attempt, None)
            raise
        attempt.scope = None
        self._ended(attempt, outcome)

    def _release(self, attempt: Attempt, outcome: Outcome | None) -> None:
        """Free the attempt's slot, and tell the producer."""
        self.ledger.remove(attempt)
        self.ahead.ended(time.monotonic() - attempt.started)
        self.producer.ended(attempt, outcome)

    def _ended(self, attempt: Attempt, outcome: Outcome | None) -> None:
        """Free the slot and record how the attempt ended."""
        self._release(attempt, outcome)
        if outcome is None:
            self.stats["lost"] += 1
            log_lost(attempt)
            if self._observing:
                self.observer.job_lost(attempt.job)
            return
        self.completer.add(outcome)
        self.stats[outcome.kind] += 1
        if self._observing:
            job = attempt.job
            if attempt.failure is not None:
                self.observer.job_raised(job, attempt.failure, outcome.kind)
            self.observer.job_ended(job, outcome.kind, time.monotonic() - attempt.started)
        log_outcome(attempt, outcome)

    # -- stopping ------------------------------------------------------------------------

    async def _drain(self) -> None:
        if not self.ledger:
            return
        log.info(
            "stopping: waiting up to %.0fs for %d running jobs",
            self.settings.shutdown_timeout,
            len(self.ledger),
            extra={"event": "draining"},
        )
        with anyio.move_on_after(self.settings.shutdown_timeout):
            while self.ledger and not self._stop_now.is_set():
                await self.producer.wait_for_change()
        self._hand_back()

    def _hand_back_stale(self) -> None:
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
            attempt.stop(StopReason.SHUTDOWN)
            self._ended(attempt, settle(attempt, self._policy))

    def _hand_back(self) -> None:
        if self.ledger:
            log.warning(
                "handing back %d unfinished jobs", len(self.ledger), extra={"event": "hand_back"}
            )
        # After a memory stop, running jobs are suspects: their attempt counts, so a job
        # that leaks every time ends failed instead of restarting workers forever.
        reason = StopReason.MEMORY if self.exit_code == EXIT_MEMORY else StopReason.SHUTDOWN
        for attempt in self.ledger:
            attempt.stop(reason)

    def _memory_exceeded(self, rss: int) -> None:
        if self._state.stopping:
            return
        limit = self.settings.max_memory or 0
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
        if wakeup.schedules:
            self._scheduler.poke()
            return
        if wakeup.cancel_job_id is None:
            self.producer.wake()
            return
        attempt = self.ledger.get(wakeup.cancel_job_id)
        if attempt is not None:
            attempt.ctx.cancel_requested = True
            attempt.stop(StopReason.CANCEL)
