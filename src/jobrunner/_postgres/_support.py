"""Helpers of the PostgreSQL backend that hold no state."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import Any, LiteralString

import psycopg
from psycopg import sql
from psycopg.types.json import set_json_loads

from .._backend import Wakeup
from .._job import NewJob, encode_json_array, safe_json_loads

# Columns whose type jobrunner relies on (information_schema spelling).
COLUMN_TYPES = {
    "id": "bigint",
    "status": "text",
    "priority": "integer",
    "payload": "jsonb",
    "result": "jsonb",
    "checkpoint": "jsonb",
    "attempts": "integer",
    "run_at": "timestamp with time zone",
    "locked_until": "timestamp with time zone",
}


def _render(text: str, names: dict[str, sql.Composable]) -> LiteralString:
    """A named block with its identifiers filled in: still a literal of the package's own,
    never text from outside."""
    return sql.SQL(text).format(**names).as_string()


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    # A payload written by SQL may be nested too deeply for json.loads: decode it into a
    # marker (the job then fails) rather than letting the worker crash on every claim.
    set_json_loads(safe_json_loads, conn)


def _parse_wakeup(payload: str) -> Wakeup:
    if payload == "schedules":
        return Wakeup(schedules=True)
    if payload.startswith("cancel:"):
        try:
            return Wakeup(cancel_job_id=int(payload[7:]))
        except ValueError:
            pass
    return Wakeup()


def _insert_many_params(jobs: Sequence[NewJob], max_payload_bytes: int) -> dict[str, Any]:
    """The parameters of `job_insert_many`: each column as one value or an empty array when
    every job has the same (or no) value, else as an array."""
    payloads = list(map(attrgetter("payload"), jobs))
    params: dict[str, Any] = {
        "payloads": encode_json_array(payloads, what="payload", max_bytes=max_payload_bytes)
    }
    for column, key in (("type", "types"), ("queue", "queues"), ("priority", "priorities")):
        values = list(map(attrgetter(column), jobs))
        same = values.count(values[0]) == len(values)
        params[column] = values[0] if same else None
        params[key] = [] if same else values
    for column, key in (
        ("user_id", "user_ids"),
        ("parent_id", "parent_ids"),
        ("max_attempts", "max_attempts"),
        ("run_at", "run_ats"),
        ("delay", "delays"),
        ("traceparent", "traceparents"),
    ):
        values = list(map(attrgetter(column), jobs))
        params[key] = [] if values.count(None) == len(values) else values
    return params


def _int_array(values: Iterable[int]) -> str:
    """A PostgreSQL array literal of integers: one C-speed join instead of binding each."""
    return "{" + ",".join(map(str, values)) + "}"


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
