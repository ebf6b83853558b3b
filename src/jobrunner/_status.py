"""The words for where a job is (`JobStatus`) and for how an attempt ended (`OutcomeKind`).

Each is defined once, with the sets built from it; SQL receives the job status an outcome
leads to, never the outcome's own word.
"""

from __future__ import annotations

import enum


class JobStatus(enum.StrEnum):
    """Where a job is in its life. `pending` → `running` → one of the three final states."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
ACTIVE_STATUSES = frozenset({JobStatus.PENDING, JobStatus.RUNNING})


class OutcomeKind(enum.StrEnum):
    """How one attempt ended, as the worker records it (and metrics count it)."""

    COMPLETED = "completed"
    FAILED = "failed"  # for good: out of attempts, or a permanent failure
    CANCELLED = "cancelled"
    RETRIED = "retried"  # failed; runs again after a delay, and the attempt counts
    RELEASED = "released"  # handed back unfinished (stop, claimed ahead too long): not counted
    WAITING = "waiting"  # parked until its child jobs end: not counted
    RATE_LIMITED = "rate_limited"  # the provider said "too many": pending, type paused

    @property
    def status(self) -> JobStatus:
        """The job's status once this outcome is written."""
        return _STATUS_AFTER[self]

    @property
    def is_final(self) -> bool:
        return self.status.is_final

    @property
    def refunds_attempt(self) -> bool:
        """The attempt does not count against `max_attempts` (and the last error stays)."""
        return self in _REFUNDED


_STATUS_AFTER = {
    OutcomeKind.COMPLETED: JobStatus.COMPLETED,
    OutcomeKind.FAILED: JobStatus.FAILED,
    OutcomeKind.CANCELLED: JobStatus.CANCELLED,
    OutcomeKind.RETRIED: JobStatus.PENDING,
    OutcomeKind.RELEASED: JobStatus.PENDING,
    OutcomeKind.WAITING: JobStatus.PENDING,
    OutcomeKind.RATE_LIMITED: JobStatus.PENDING,
}
_REFUNDED = frozenset({OutcomeKind.RELEASED, OutcomeKind.WAITING, OutcomeKind.RATE_LIMITED})
#: Outcomes after which the job is pending again: it runs later, here or elsewhere.
RUNNABLE_AGAIN = frozenset(k for k in OutcomeKind if k.status is JobStatus.PENDING)
#: Outcomes that schedule the job to run again later (after their delay, or once its children
#: end): the producer must not sleep past that.
RESCHEDULED = frozenset({OutcomeKind.RETRIED, OutcomeKind.WAITING, OutcomeKind.RATE_LIMITED})
#: Outcomes that end a job: they count as processed.
FINAL_OUTCOMES = frozenset(k for k in OutcomeKind if k.is_final)
