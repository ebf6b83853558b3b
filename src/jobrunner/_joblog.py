"""One log line per job event, built only when the level is enabled (the hot path logs nothing)."""

from __future__ import annotations

import logging
import time

from ._backend import Outcome
from ._execute import Attempt

job_log = logging.getLogger("jobrunner.job")


def log_outcome(attempt: Attempt, outcome: Outcome) -> None:
    if outcome.status == "completed" and not job_log.isEnabledFor(logging.INFO):
        return  # the hot path: no log line, no logger built
    logger = attempt.ctx.log
    took = time.monotonic() - attempt.started
    job = attempt.job
    exc = attempt.failure
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    if outcome.status == "completed":
        logger.info(
            "job %s %s completed in %.3fs",
            job.id,
            job.type,
            took,
            extra={"event": "completed", "duration": took},
        )
    elif outcome.status == "pending":
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
    elif outcome.status == "failed":
        logger.error(
            "job %s %s failed after %s attempts: %s",
            job.id,
            job.type,
            job.attempts,
            outcome.error,
            exc_info=exc_info,
            extra={"event": "failed", "duration": took},
        )
    elif outcome.status == "cancelled":
        logger.info("job %s %s cancelled", job.id, job.type, extra={"event": "cancelled"})
    elif outcome.status == "waiting":
        logger.info(
            "job %s %s waiting for its child jobs", job.id, job.type, extra={"event": "waiting"}
        )
    else:
        logger.info("job %s %s handed back", job.id, job.type, extra={"event": "handed_back"})
