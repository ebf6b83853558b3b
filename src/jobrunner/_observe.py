"""Observers: what metrics, Sentry and the like are told about a worker's work."""

from __future__ import annotations

from collections.abc import Sequence

from ._backend import Rescued
from ._job import Job
from ._status import OutcomeKind


class Observer:
    """Told about what the worker does; metrics subclass it. Every method is optional."""

    def job_started(self, job: Job) -> None: ...

    def job_ended(self, job: Job, kind: OutcomeKind, duration: float) -> None: ...

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

    def job_ended(self, job: Job, kind: OutcomeKind, duration: float) -> None:
        for o in self.observers:
            o.job_ended(job, kind, duration)

    def jobs_rescued(self, rescued: Sequence[Rescued]) -> None:
        for o in self.observers:
            o.jobs_rescued(rescued)

    def loop_error(self, doing: str) -> None:
        for o in self.observers:
            o.loop_error(doing)

    def job_raised(self, job: Job, exc: BaseException, kind: OutcomeKind) -> None:
        for o in self.observers:
            o.job_raised(job, exc, kind)
