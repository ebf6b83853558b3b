"""One job attempt on this worker, and how it ends (`settle`: pure, no I/O).

handler returned / raised, or the attempt was stopped
    └─ settle(attempt, policy, result, failure) → Outcome | None (None: the lease was lost)
"""

from __future__ import annotations

import enum
import math
import random
import time
from collections.abc import Callable
from typing import Any

import anyio
import attrs

from ._backend import Outcome
from ._context import JobContext
from ._errors import (
    JobrunnerError,
    LeaseLost,
    PayloadError,
    PermanentFailure,
    RateLimited,
    Retry,
    WaitForChildren,
)
from ._job import Job, encode_json
from ._plugin import Handler
from ._secrets import redact
from ._status import OutcomeKind

MAX_ERROR_CHARS = 4000


class StopReason(enum.Enum):
    """Why the worker stopped an attempt before its handler returned."""

    CANCEL = "cancel"  # someone asked to cancel the job
    LOST = "lost"  # this worker lost the job's lease: another may run it now
    SHUTDOWN = "shutdown"  # the worker stops: the job goes back to the queue, not counted
    MEMORY = "memory"  # the worker passed its memory limit: the attempt counts


@attrs.define(eq=False)
class Attempt:
    """A job attempt held by this worker: claimed, then running, then settled."""

    job: Job
    handler: Handler
    ctx: JobContext
    # The cancel scope of the executor task while it runs this attempt's handler. Executors
    # keep one scope across many jobs (a scope per job costs more than a no-op job), so only
    # the executor currently running this attempt can be cancelled, and only while it does.
    scope: anyio.CancelScope | None = None
    stop_reason: StopReason | None = None
    failure: BaseException | None = None  # an unexpected exception, for the log and observers
    started: float = attrs.field(factory=time.monotonic)  # claimed, then handler started

    def stop(self, reason: StopReason) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        if self.scope is not None:
            self.scope.cancel()


@attrs.frozen(kw_only=True)
class SettlePolicy:
    """What settling needs from the worker's settings."""

    max_result_bytes: int
    max_memory: int | None = None
    rand: Callable[[], float] = attrs.field(default=random.random, repr=False)


class MemoryLimitExceeded(RuntimeError):
    """The worker passed --max-memory while the job ran."""


def error_text(exc: BaseException) -> str:
    """`Type: message`, without secrets, bounded in size."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = redact(text.replace("\x00", "\\0").encode("utf-8", "backslashreplace").decode())
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 40] + f"… [{len(text) - MAX_ERROR_CHARS + 40} chars cut]"
    return text


def settle(
    attempt: Attempt,
    policy: SettlePolicy,
    result: Any = None,
    failure: BaseException | None = None,
) -> Outcome | None:
    """The outcome of an attempt from what its handler returned or raised, or from why it
    was stopped; None when the lease was lost (the outcome belongs to another worker now)."""
    job = attempt.job
    if failure is None and attempt.stop_reason is None:
        if result is None:  # the common case: a handler with nothing to say
            return Outcome(id=job.id, attempt=job.attempts, kind=OutcomeKind.COMPLETED)
        try:
            text = encode_json(result, what="result", max_bytes=policy.max_result_bytes)
        except PayloadError as exc:
            return failed(attempt, PermanentFailure(str(exc)), policy)
        return Outcome(
            id=job.id, attempt=job.attempts, kind=OutcomeKind.COMPLETED, result_json=text
        )
    if attempt.stop_reason is not None or isinstance(
        failure, LeaseLost | WaitForChildren | RateLimited
    ):
        stopped = _stopped(attempt, policy, failure)
        if not isinstance(stopped, BaseException):
            return stopped
        failure = stopped
    assert failure is not None
    return failed(attempt, failure, policy)


def _stopped(
    attempt: Attempt, policy: SettlePolicy, failure: BaseException | None
) -> Outcome | BaseException | None:
    """The outcome of an attempt that was stopped or parked, or the failure to record."""
    job = attempt.job
    reason = attempt.stop_reason
    if reason is StopReason.LOST or isinstance(failure, LeaseLost):
        return None
    if reason is StopReason.CANCEL:
        return Outcome(
            id=job.id,
            attempt=job.attempts,
            kind=OutcomeKind.CANCELLED,
            error="cancelled on request",
        )
    if isinstance(failure, WaitForChildren):
        return Outcome(
            id=job.id, attempt=job.attempts, kind=OutcomeKind.WAITING, delay=failure.recheck
        )
    if isinstance(failure, RateLimited):
        delay = failure.retry_after
        return Outcome(
            id=job.id,
            attempt=job.attempts,
            kind=OutcomeKind.RATE_LIMITED,
            error=error_text(failure),  # the pause's reason
            delay=delay if math.isfinite(delay) and delay > 0 else 1.0,
        )
    if reason is StopReason.SHUTDOWN:
        return Outcome(id=job.id, attempt=job.attempts, kind=OutcomeKind.RELEASED)
    limit = policy.max_memory or 0
    return MemoryLimitExceeded(
        f"the worker passed its memory limit ({limit >> 20} MB) while this job ran; "
        "it was stopped and the attempt counted"
    )


def failed(attempt: Attempt, exc: BaseException, policy: SettlePolicy) -> Outcome:
    """A failed attempt: retried after a backoff while attempts are left and the failure is
    not permanent, else failed for good."""
    job, handler = attempt.job, attempt.handler
    error = error_text(exc)
    permanent = isinstance(exc, PermanentFailure | PayloadError)
    if not isinstance(exc, JobrunnerError):
        attempt.failure = exc  # unexpected: its traceback goes to the log
    if not permanent and job.attempts < (job.max_attempts or handler.max_attempts):
        delay = exc.delay if isinstance(exc, Retry) and exc.delay is not None else None
        if delay is None:
            delay = handler.retry.delay(job.attempts, policy.rand)
        if not math.isfinite(delay) or delay < 0:
            delay = 0.0
        return Outcome(
            id=job.id, attempt=job.attempts, kind=OutcomeKind.RETRIED, error=error, delay=delay
        )
    return Outcome(id=job.id, attempt=job.attempts, kind=OutcomeKind.FAILED, error=error)
