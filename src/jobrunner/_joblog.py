"""The worker's log lines about jobs, one per event, built only when their level is on.

A busy worker writes one of these per job, so they skip what the `ctx.log` adapter costs: the
record is made once, with the job's fields set on it directly (what `extra=` would set).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from types import TracebackType
from typing import Any

from ._attempt import Attempt
from ._backend import Outcome
from ._job import Job
from ._status import OutcomeKind

job_log = logging.getLogger("jobrunner.job")
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

# Per level, a record's attributes as `logging.LogRecord` set them for this process: a job line
# copies them and sets only what differs per line (about a third of what making a record costs).
_templates: dict[tuple[int, int], tuple[dict[str, Any], float, float]] = {}


def _template(level: int) -> tuple[dict[str, Any], float, float]:
    key = (os.getpid(), level)  # after a fork: the child's own process fields
    found = _templates.get(key)
    if found is None:
        record = logging.LogRecord(job_log.name, level, "", 0, "", (), None)
        found = _templates[key] = (dict(record.__dict__), record.created, record.relativeCreated)
    return found


def _record(level: int, msg: str, args: tuple[Any, ...], exc_info: ExcInfo | None) -> Any:
    """What `job_log.makeRecord` returns, made from the level's template; a record factory of
    the application's own (`logging.setLogRecordFactory`) is honoured."""
    if logging.getLogRecordFactory() is not logging.LogRecord:
        return job_log.makeRecord(job_log.name, level, "", 0, msg, args, exc_info)
    fields, created0, relative0 = _template(level)
    record = logging.LogRecord.__new__(logging.LogRecord)
    values = record.__dict__
    values.update(fields)
    created = time.time()
    values["created"] = created
    values["msecs"] = int((created - int(created)) * 1000) + 0.0
    values["relativeCreated"] = relative0 + (created - created0) * 1000
    values["msg"] = msg
    values["args"] = args
    values["exc_info"] = exc_info
    if fields["thread"] is not None:
        values["thread"] = threading.get_ident()
        values["threadName"] = threading.current_thread().name
    if "taskName" in fields:  # Python 3.12+: the asyncio task's name, as LogRecord finds it
        values["taskName"] = _task_name()
    return record


def _task_name() -> str | None:
    asyncio = sys.modules.get("asyncio")
    if asyncio is None or not getattr(logging, "logAsyncioTasks", True):
        return None
    try:
        task = asyncio.current_task()
    except Exception:  # no running loop
        return None
    return task.get_name() if task is not None else None


def _line(
    level: int,
    job: Job,
    msg: str,
    args: tuple[Any, ...],
    exc_info: ExcInfo | None = None,
    **fields: Any,
) -> None:
    if not job_log.isEnabledFor(level):
        return
    record = _record(level, msg, args, exc_info)
    values = record.__dict__
    values["job_id"] = job.id
    values["job_type"] = job.type
    values["attempt"] = job.attempts
    values["user_id"] = job.user_id
    values.update(fields)
    job_log.handle(record)


def log_claimed(attempt: Attempt) -> None:
    """At debug level: at info, the line of how the attempt ended says it all."""
    if not job_log.isEnabledFor(logging.DEBUG):
        return  # the hot path: no arguments read from the job
    job = attempt.job
    _line(
        logging.DEBUG,
        job,
        "job %s %s claimed (attempt %s)",
        (job.id, job.type, job.attempts),
        event="claimed",
    )


def log_outcome(attempt: Attempt, outcome: Outcome) -> None:
    kind = outcome.kind
    if kind is OutcomeKind.COMPLETED and not job_log.isEnabledFor(logging.INFO):
        return  # the hot path with info off
    took = time.monotonic() - attempt.started
    job = attempt.job
    exc = attempt.failure
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    if kind is OutcomeKind.COMPLETED:
        _line(
            logging.INFO,
            job,
            "job %s %s completed in %.3fs",
            (job.id, job.type, took),
            event="completed",
            duration=took,
        )
    elif kind is OutcomeKind.RETRIED:
        _line(
            logging.WARNING,
            job,
            "job %s %s attempt %s failed, retrying in %.1fs: %s",
            (job.id, job.type, job.attempts, outcome.delay, outcome.error),
            exc_info,
            event="retrying",
            duration=took,
            delay=outcome.delay,
        )
    elif kind is OutcomeKind.FAILED:
        _line(
            logging.ERROR,
            job,
            "job %s %s failed after %s attempts: %s",
            (job.id, job.type, job.attempts, outcome.error),
            exc_info,
            event="failed",
            duration=took,
        )
    elif kind is OutcomeKind.CANCELLED:
        _line(logging.INFO, job, "job %s %s cancelled", (job.id, job.type), event="cancelled")
    elif kind is OutcomeKind.RATE_LIMITED:
        _line(
            logging.WARNING,
            job,
            "job %s %s rate limited: %s jobs pause for %.1fs, this one runs again then: %s",
            (job.id, job.type, job.type, outcome.delay, outcome.error),
            event="rate_limited",
            duration=took,
            delay=outcome.delay,
        )
    elif kind is OutcomeKind.WAITING:
        _line(
            logging.INFO,
            job,
            "job %s %s waiting for its child jobs",
            (job.id, job.type),
            event="waiting",
        )
    else:
        _line(logging.INFO, job, "job %s %s handed back", (job.id, job.type), event="handed_back")


def log_lost(attempt: Attempt) -> None:
    job = attempt.job
    _line(
        logging.WARNING,
        job,
        "job %s attempt %s abandoned: this worker lost its lease",
        (job.id, job.attempts),
        event="lease_lost",
    )
