"""Between SQLite rows (JSON as TEXT, times as REAL epoch seconds) and jobrunner's values."""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any

from .._errors import JobNotFound
from .._job import Job, NewJob, safe_json_loads

_TIMES = ("run_at", "created_at", "started_at", "finished_at", "locked_until")
_JSON = ("payload", "result", "checkpoint", "usage")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def rows(cur: sqlite3.Cursor) -> list[dict[str, Any]]:
    """The cursor's rows as dicts keyed by column name."""
    names = [d[0] for d in cur.description]
    return [dict(zip(names, values, strict=True)) for values in cur.fetchall()]


def job_from_row(row: dict[str, Any]) -> Job:
    """A Job from a row: JSON text parsed, epoch seconds made aware UTC datetimes."""
    for name in _JSON:
        if row.get(name) is not None:
            row[name] = safe_json_loads(row[name])
    for name in _TIMES:
        if row.get(name) is not None:
            row[name] = utc(row[name])
    return Job.from_row(row)


def job_from_doc(doc: dict[str, Any]) -> Job:
    """A Job from an object of `job_get_many`: JSON decoded, times in microseconds."""
    for name in _TIMES:
        if doc[name] is not None:
            doc[name] = utc_us(doc[name])
    return Job.from_row(doc)


def one_job(found: list[dict[str, Any]], job_id: int) -> Job:
    if not found:
        raise JobNotFound(f"no job with id {job_id}")
    return job_from_row(found[0])


def utc(seconds: float) -> dt.datetime:
    """Epoch seconds as an aware UTC datetime, rounded to the microsecond the way SQLite's
    round() does (half away from zero), so it matches `job_get_many`'s integer microseconds."""
    us = seconds * 1_000_000
    return utc_us(int(us + 0.5) if us >= 0 else int(us - 0.5))


def utc_us(microseconds: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=microseconds)


def insert_params(job: NewJob, max_payload_bytes: int) -> dict[str, Any]:
    """The parameters of `job_insert`, with `run_at` as epoch seconds."""
    values = job.insert_values(max_payload_bytes)
    if job.run_at is not None:
        values["run_at"] = job.run_at.timestamp()
    return values
