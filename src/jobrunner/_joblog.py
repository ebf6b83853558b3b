"""One log line per job event, built only when the level is enabled."""

from __future__ import annotations

import logging
import time

from ._attempt import Attempt
from ._backend import Outcome
from ._status import OutcomeKind

job_log = logging.getLogger("jobrunner.job")


def log_claimed(attempt: Attempt) -> None:
    if job_log.isEnabledFor(logging.INFO):
        job = attempt.job
        attempt.ctx.log.info(
            "job %s %s claimed (attempt %s)",
            job.id,
            job.type,
            job.attempts,
            extra={"event": "claimed"},
        )


def log_outcome(attempt: Attempt, outcome: Outcome) -> None:
    kind = outcome.kind
    if kind is OutcomeKind.COMPLETED and not job_log.isEnabledFor(logging.INFO):
        return  # the hot path with info off: no log line, no logger built
    logger = attempt.ctx.log
    took = time.monotonic() - attempt.started
    job = attempt.job
    exc = attempt.failure
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    if kind is OutcomeKind.COMPLETED:
        logger.info(
            "job %s %s completed in %.3fs",
            job.id,
            job.type,
            took,
            extra={"event": "completed", "duration": took},
        )
    elif kind is OutcomeKind.RETRIED:
        logger.warning(
            "job %s %s attempt %s failed, retrying in %.1fs: %s",
            job.id,
            job.type,
            job.attempts,
            outcome.delay,
            outcome.error,
            exc_info=exc_info,
            extra={"event": "retrying", "duration": took, "delay": outcome.delay},
        )
    elif kind is OutcomeKind.FAILED:
        logger.error(
            "job %s %s failed after %s attempts: %s",
            job.id,
            job.type,
            job.attempts,
            outcome.error,
            exc_info=exc_info,
            extra={"event": "failed", "duration": took},
        )
    elif kind is OutcomeKind.CANCELLED:
        logger.info("job %s %s cancelled", job.id, job.type, extra={"event": "cancelled"})
    elif kind is OutcomeKind.WAITING:
        logger.info(
            "job %s %s waiting for its child jobs", job.id, job.type, extra={"event": "waiting"}
        )
    else:
        logger.info("job %s %s handed back", job.id, job.type, extra={"event": "handed_back"})


def log_lost(attempt: Attempt) -> None:
    attempt.ctx.log.warning(
        "job %s attempt %s abandoned: this worker lost its lease",
        attempt.job.id,
        attempt.job.attempts,
        extra={"event": "lease_lost"},
    )
