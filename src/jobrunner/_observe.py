"""Observers: what metrics, Sentry and the like are told about a worker's work."""

from __future__ import annotations

from collections.abc import Sequence

from ._backend import Rescued
from ._job import Job


class Observer:
    """Told about what the worker does; metrics subclass it. Every method is optional."""

    def job_started(self, job: Job) -> None: ...

    def job_ended(self, job: Job, status: str, duration: float) -> None: ...

    def jobs_rescued(self, rescued: Sequence[Rescued]) -> None: ...

    def loop_error(self, doing: str) -> None: ...

    def job_raised(self, job: Job, exc: BaseException, status: str) -> None:
        """A handler raised an unexpected exception; `status` says what the job became."""


class Observers(Observer):
    """Several observers as one."""

    def __init__(self, observers: Sequence[Observer]) -> None:
        self.observers = list(observers)

    def job_started(self, job: Job) -> None:
        for o in self.observers:
            o.job_started(job)

    def job_ended(self, job: Job, status: str, duration: float) -> None:
        for o in self.observers:
            o.job_ended(job, status, duration)

    def jobs_rescued(self, rescued: Sequence[Rescued]) -> None:
        for o in self.observers:
            o.jobs_rescued(rescued)

    def loop_error(self, doing: str) -> None:
        for o in self.observers:
            o.loop_error(doing)

    def job_raised(self, job: Job, exc: BaseException, status: str) -> None:
        for o in self.observers:
            o.job_raised(job, exc, status)
