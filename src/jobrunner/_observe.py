"""Observers: what metrics, Sentry and the like are told about a worker's work."""

from __future__ import annotations

from collections.abc import Sequence

from ._backend import Rescued
from ._job import Job
from ._status import OutcomeKind


class Observer:
    """Told about what the worker does; metrics, Sentry and tracing subclass it. Every method
    is optional. For one attempt the order is `job_started`, `job_running` (unless it was
    handed back before it started), `job_raised` (an unexpected exception only), then
    `job_ended`, or `job_lost` when the worker lost the job's lease."""

    def job_started(self, job: Job) -> None:
        """The worker claimed the job (it may wait a moment for a free executor)."""

    def job_running(self, job: Job) -> None:
        """The job's handler is about to run, in the task that runs it (a tracer makes its
        span current here); `job_ended` follows in the same task."""

    def job_ended(self, job: Job, kind: OutcomeKind, duration: float) -> None: ...

    def job_lost(self, job: Job) -> None:
        """The worker lost the job's lease while it ran: its outcome is not written (another
        worker may run the job now). Ends the attempt instead of `job_ended`."""

    def jobs_rescued(self, rescued: Sequence[Rescued]) -> None: ...

    def loop_error(self, doing: str) -> None: ...

    def job_raised(self, job: Job, exc: BaseException, kind: OutcomeKind) -> None:
        """A handler raised an unexpected exception; `kind` says how the attempt ended."""


class Observers(Observer):
    """Several observers as one."""

    def __init__(self, observers: Sequence[Observer]) -> None:
        self.observers = list(observers)

    def job_started(self, job: Job) -> None:
        for o in self.observers:
            o.job_started(job)

    def job_running(self, job: Job) -> None:
        for o in self.observers:
            o.job_running(job)

    def job_ended(self, job: Job, kind: OutcomeKind, duration: float) -> None:
        for o in self.observers:
            o.job_ended(job, kind, duration)

    def job_lost(self, job: Job) -> None:
        for o in self.observers:
            o.job_lost(job)

    def jobs_rescued(self, rescued: Sequence[Rescued]) -> None:
        for o in self.observers:
            o.jobs_rescued(rescued)

    def loop_error(self, doing: str) -> None:
        for o in self.observers:
            o.loop_error(doing)

    def job_raised(self, job: Job, exc: BaseException, kind: OutcomeKind) -> None:
        for o in self.observers:
            o.job_raised(job, exc, kind)
