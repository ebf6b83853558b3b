"""Run one job attempt and turn how it ended into an Outcome."""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_process
import anyio.to_thread
import attrs

from ._backend import Outcome
from ._context import JobContext
from ._errors import (
    JobrunnerError,
    LeaseLost,
    PayloadError,
    PermanentFailure,
    Retry,
    WaitForChildren,
    sole_exception,
)
from ._job import Job, UnreadableJSON, encode_json
from ._plugin import Handler
from ._secrets import redact

if TYPE_CHECKING:
    from ._worker import Worker

log = logging.getLogger("jobrunner.worker")

MAX_ERROR_CHARS = 4000


@attrs.define(eq=False)
class Attempt:
    """A job attempt in progress on this worker."""

    job: Job
    handler: Handler
    ctx: JobContext
    # The cancel scope of the executor task while it runs this attempt's handler. Executors
    # keep one scope across many jobs (a scope per job costs more than a no-op job), so only
    # the executor currently running this attempt can be cancelled, and only while it does.
    scope: anyio.CancelScope | None = None
    stop_reason: str | None = None  # "cancel", "lost", "shutdown", "memory"
    failure: BaseException | None = None
    started: float = attrs.field(factory=time.monotonic)

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        if self.scope is not None:
            self.scope.cancel()


class MemoryLimitExceeded(RuntimeError):
    """The worker passed --max-memory while the job ran."""


def error_text(exc: BaseException) -> str:
    """`Type: message`, without secrets, bounded in size."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = redact(text.replace("\x00", "\\0").encode("utf-8", "backslashreplace").decode())
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 40] + f"… [{len(text) - MAX_ERROR_CHARS + 40} chars cut]"
    return text


async def run_attempt(worker: Worker, attempt: Attempt) -> Outcome | None:
    """Run the handler; return the outcome to record, or None when the lease was lost.

    The caller runs this inside a cancel scope it has put in `attempt.scope`: stopping the
    attempt cancels that scope, and the cancellation propagates out of here; the caller then
    asks `settle(worker, attempt)` for the outcome. An attempt stopped before it started
    never calls its handler."""
    job, handler = attempt.job, attempt.handler
    result: Any = None
    failure: BaseException | None = None
    if attempt.stop_reason is None:
        try:
            if isinstance(job.payload, UnreadableJSON):
                raise PayloadError(f"payload is not usable JSON: {job.payload}")
            if handler.timeout:
                with anyio.fail_after(handler.timeout):
                    result = await _call(handler, attempt.ctx)
            else:
                result = await _call(handler, attempt.ctx)
        except TimeoutError:
            failure = TimeoutError(
                f"{job.type} did not finish within its {handler.timeout:g}s timeout"
            )
        except Exception as exc:
            failure = sole_exception(exc)
    return settle(worker, attempt, result, failure)


def settle(
    worker: Worker, attempt: Attempt, result: Any = None, failure: BaseException | None = None
) -> Outcome | None:
    """The outcome of an attempt from what its handler returned or raised."""
    job = attempt.job
    if result is None and failure is None and attempt.stop_reason is None:
        return Outcome(id=job.id, attempt=job.attempts, status="completed")  # the common case
    if attempt.stop_reason is not None or isinstance(failure, LeaseLost | WaitForChildren):
        stopped = _stopped(worker, attempt, failure)
        if not isinstance(stopped, BaseException):
            return stopped
        failure = stopped
    if failure is None:
        if result is None:  # the common case of a handler with nothing to say
            return Outcome(id=job.id, attempt=job.attempts, status="completed")
        try:
            text = encode_json(result, what="result", max_bytes=worker.max_result_bytes)
        except PayloadError as exc:
            failure = PermanentFailure(str(exc))
        else:
            return Outcome(id=job.id, attempt=job.attempts, status="completed", result_json=text)
    return failed(worker, attempt, failure)


def _stopped(
    worker: Worker, attempt: Attempt, failure: BaseException | None
) -> Outcome | BaseException | None:
    """The outcome of an attempt that was stopped or parked, or the failure to record."""
    job = attempt.job
    if attempt.stop_reason == "lost" or isinstance(failure, LeaseLost):
        return None
    if attempt.stop_reason == "cancel":
        return Outcome(
            id=job.id, attempt=job.attempts, status="cancelled", error="cancelled on request"
        )
    if isinstance(failure, WaitForChildren):
        return Outcome(id=job.id, attempt=job.attempts, status="waiting", delay=failure.recheck)
    if attempt.stop_reason == "shutdown":
        return Outcome(id=job.id, attempt=job.attempts, status="released", error=None)
    limit = worker.settings.max_memory or 0
    return MemoryLimitExceeded(
        f"the worker passed its memory limit ({limit >> 20} MB) while this job ran; "
        "it was stopped and the attempt counted"
    )


async def _call(handler: Handler, ctx: JobContext) -> Any:
    if handler.run_in == "thread":
        return await anyio.to_thread.run_sync(handler.func, ctx, abandon_on_cancel=True)
    if handler.run_in == "process":
        return await anyio.to_process.run_sync(handler.func, ctx.payload, cancellable=True)
    return await handler.func(ctx)


def failed(worker: Worker, attempt: Attempt, exc: BaseException) -> Outcome:
    job, handler = attempt.job, attempt.handler
    error = error_text(exc)
    permanent = isinstance(exc, PermanentFailure | PayloadError)
    if not isinstance(exc, JobrunnerError):
        attempt.failure = exc  # unexpected: its traceback goes to the log
    if not permanent and job.attempts < (job.max_attempts or handler.max_attempts):
        delay = exc.delay if isinstance(exc, Retry) and exc.delay is not None else None
        if delay is None:
            delay = handler.retry.delay(job.attempts, worker.rand)
        if not math.isfinite(delay) or delay < 0:
            delay = 0.0
        return Outcome(id=job.id, attempt=job.attempts, status="pending", error=error, delay=delay)
    return Outcome(id=job.id, attempt=job.attempts, status="failed", error=error)
