"""Bad input that gets in and meets a real worker process: each case ends in an exact state
with a readable error, and the worker survives all of them.

One worker runs the whole table of cases (module fixture); the cases that could bring a
worker down get a worker of their own, in test_worker_survives.py.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from psycopg.types.json import Jsonb
from rel_support import jr, sql, start_worker, wait_until, worker_env

SQL_LOOKING = "'); DROP TABLE job; --"
SQL_TYPE = "bad.sql'); DROP TABLE job; --"
MB = 1 << 20
ANY = object()


@attrs.frozen(kw_only=True)
class RunCase:
    id: str
    type: str
    payload: Any = attrs.field(factory=dict)
    columns: dict[str, Any] = attrs.field(factory=dict)
    status: str
    attempts: int
    error: str | re.Pattern[str] | None = None
    result: Any = ANY


def _cut(text: str) -> re.Pattern[str]:
    return re.compile(re.escape(text) + r".*… \[\d+ chars cut\]", re.S)


CASES = [
    # wrong JSON types for diag handlers
    RunCase(
        id="payload-array",
        type="diag.sleep",
        payload=[1, 2],
        status="failed",
        attempts=1,
        error="PayloadError: diag.sleep payload: Input should be a JSON object (got [1, 2])",
    ),
    RunCase(
        id="payload-string",
        type="diag.sleep",
        payload="soon",
        status="failed",
        attempts=1,
        error='PayloadError: diag.sleep payload: Input should be a JSON object (got "soon")',
    ),
    RunCase(
        id="payload-null",
        type="diag.sleep",
        payload=None,
        status="failed",
        attempts=1,
        error="PayloadError: diag.sleep payload: Input should be a JSON object (got null)",
    ),
    RunCase(
        id="payload-number",
        type="diag.sleep",
        payload=42,
        status="failed",
        attempts=1,
        error="PayloadError: diag.sleep payload: Input should be a JSON object (got 42)",
    ),
    RunCase(
        id="seconds-not-a-number",
        type="diag.sleep",
        payload={"seconds": "abc"},
        status="failed",
        attempts=1,
        error=(
            'PayloadError: diag.sleep payload: seconds: Input should be a valid number (got "abc")'
        ),
    ),
    RunCase(
        id="seconds-negative",
        type="diag.sleep",
        payload={"seconds": -1},
        status="failed",
        attempts=1,
        error=(
            "PayloadError: diag.sleep payload: seconds: Input should be greater than or equal "
            "to 0 (got -1)"
        ),
    ),
    RunCase(
        id="seconds-boolean",
        type="diag.sleep",
        payload={"seconds": True},
        status="failed",
        attempts=1,
        error=(
            "PayloadError: diag.sleep payload: seconds: Input should be a valid number (got true)"
        ),
    ),
    RunCase(
        id="unknown-field",
        type="diag.fail",
        payload={"mesage": "typo", "permanent": "yes"},
        status="failed",
        attempts=1,
        error=(
            "PayloadError: diag.fail payload: permanent: Input should be a valid boolean "
            '(got "yes"); mesage: Extra inputs are not permitted (got "typo")'
        ),
    ),
    # hostile errors raised by handlers
    RunCase(
        id="error-enormous",
        type="bad.raise",
        payload={"kind": "enormous"},
        status="failed",
        attempts=2,
        error=_cut("RuntimeError: EEEE"),
    ),
    RunCase(
        id="error-nul",
        type="bad.raise",
        payload={"kind": "nul"},
        status="failed",
        attempts=2,
        error="RuntimeError: before\\0after",
    ),
    RunCase(
        id="error-sql-looking",
        type="bad.raise",
        payload={"kind": "sql"},
        status="failed",
        attempts=2,
        error=f"RuntimeError: {SQL_LOOKING}",
    ),
    RunCase(
        id="error-empty",
        type="bad.raise",
        payload={"kind": "empty"},
        status="failed",
        attempts=2,
        error="RuntimeError",
    ),
    # hostile results
    RunCase(
        id="result-set",
        type="bad.result",
        payload={"kind": "set"},
        status="failed",
        attempts=1,
        error="PermanentFailure: result is not JSON-serialisable: "
        "Object of type set is not JSON serializable",
    ),
    RunCase(
        id="result-object",
        type="bad.result",
        payload={"kind": "object"},
        status="failed",
        attempts=1,
        error="PermanentFailure: result is not JSON-serialisable: "
        "Object of type object is not JSON serializable",
    ),
    RunCase(
        id="result-bytes",
        type="bad.result",
        payload={"kind": "bytes"},
        status="failed",
        attempts=1,
        error="PermanentFailure: result is not JSON-serialisable: "
        "Object of type bytes is not JSON serializable",
    ),
    RunCase(
        id="result-nan",
        type="bad.result",
        payload={"kind": "nan"},
        status="failed",
        attempts=1,
        error="PermanentFailure: result is not JSON-serialisable: "
        "Out of range float values are not JSON compliant",
    ),
    RunCase(
        id="result-infinity",
        type="bad.result",
        payload={"kind": "inf"},
        status="failed",
        attempts=1,
        error="PermanentFailure: result is not JSON-serialisable: "
        "Out of range float values are not JSON compliant",
    ),
    RunCase(
        id="result-lone-surrogate",
        type="bad.result",
        payload={"kind": "surrogate"},
        status="failed",
        attempts=1,
        error="PermanentFailure: result contains invalid Unicode (lone surrogates)",
    ),
    RunCase(
        id="result-200MB",
        type="bad.result",
        payload={"kind": "huge"},
        status="failed",
        attempts=1,
        error=f"PermanentFailure: result is {200 * MB + 2} bytes, over the limit of {MB} bytes",
    ),
    # unknown types, SQL-looking strings everywhere, absurd priorities and times
    RunCase(id="type-unknown", type="no.such.type", status="pending", attempts=0, result=None),
    RunCase(
        id="type-sql-looking-unknown", type=SQL_LOOKING, status="pending", attempts=0, result=None
    ),
    RunCase(
        id="type-sql-looking-handled",
        type=SQL_TYPE,
        status="completed",
        attempts=1,
        result=SQL_TYPE,
    ),
    RunCase(
        id="sql-looking-fields",
        type="bad.echo",
        payload={SQL_LOOKING: SQL_LOOKING},
        columns={"user_id": SQL_LOOKING, "queue": "default"},
        status="completed",
        attempts=1,
        result={"payload": {SQL_LOOKING: SQL_LOOKING}, "user_id": SQL_LOOKING, "queue": "default"},
    ),
    RunCase(
        id="priority-min",
        type="bad.echo",
        columns={"priority": -(2**31)},
        status="completed",
        attempts=1,
    ),
    RunCase(
        id="priority-max",
        type="bad.echo",
        columns={"priority": 2**31 - 1},
        status="completed",
        attempts=1,
    ),
    RunCase(
        id="run-at-year-1",
        type="bad.echo",
        columns={"run_at": "0001-01-02T00:00:00Z"},
        status="completed",
        attempts=1,
    ),
    RunCase(
        id="run-at-year-9999",
        type="bad.echo",
        columns={"run_at": "9999-12-31T00:00:00Z"},
        status="pending",
        attempts=0,
    ),
    RunCase(
        id="run-at-infinity",
        type="bad.echo",
        columns={"run_at": "infinity"},
        status="pending",
        attempts=0,
    ),
    RunCase(
        id="parent-missing",
        type="bad.echo",
        columns={"parent_id": 10**12},
        status="completed",
        attempts=1,
    ),
    RunCase(
        id="payload-oversized-by-sql",
        type="diag.noop",
        payload={"x": "y" * (2 * MB)},
        status="completed",
        attempts=1,
        result=None,
    ),
    RunCase(
        id="payload-unicode",
        type="bad.echo",
        payload={"名前": "😀 \u200b\u202e"},
        status="completed",
        attempts=1,
        result={"payload": {"名前": "😀 \u200b\u202e"}, "user_id": None, "queue": "default"},
    ),
]


@attrs.frozen
class Ran:
    rows: dict[str, tuple[Any, ...]]
    worker_err: str
    worker_code: int
    status_json: list[dict[str, Any]]


def _insert(url: str, schema: str, case: RunCase) -> int:
    columns = {"type": case.type, "payload": Jsonb(case.payload), **case.columns}
    names = ", ".join(columns)
    marks = ", ".join(["%s"] * len(columns))
    rows = sql(
        url,
        f'INSERT INTO "{schema}".job ({names}) VALUES ({marks}) RETURNING id',
        list(columns.values()),
    )
    return int(rows[0][0])


def _settled(url: str, schema: str, ids: dict[str, int]) -> dict[str, tuple[Any, ...]]:
    rows = sql(url, f'SELECT id, status, attempts, error, result FROM "{schema}".job')
    by_id = {r[0]: r[1:] for r in rows}
    found = {case_id: by_id[job_id] for case_id, job_id in ids.items()}
    want_final = {c.id for c in CASES if c.status != "pending"}
    if any(found[i][0] in ("pending", "running") for i in want_final):
        return {}
    return found


@pytest.fixture(scope="module")
def ran(pg_url: str, site: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ran]:
    """Every case enqueued by SQL, run by one worker until the final ones are final."""
    schema = f"badjobs_{uuid.uuid4().hex[:10]}"
    env = worker_env(site, pg_url, schema)
    assert jr(env, "migrate").returncode == 0
    ids = {case.id: _insert(pg_url, schema, case) for case in CASES}
    logs = tmp_path_factory.mktemp("badjobs")
    worker = start_worker(env, logs, "w", "--concurrency", "8", plugin="relbad,diag")
    try:
        rows = wait_until(lambda: _settled(pg_url, schema, ids), 120, "the cases to settle", 0.25)
        alive = worker.alive()
        code = worker.stop(timeout=30)
        status = jr(env, "status", "--json")
        yield Ran(rows, worker.stderr(), code if alive else -1, json.loads(status.stdout))
    finally:
        if worker.alive():
            worker.kill()
        sql(pg_url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_each_case_ends_in_its_exact_state(ran: Ran, case: RunCase):
    status, attempts, error, result = ran.rows[case.id]
    assert (status, attempts) == (case.status, case.attempts)
    if isinstance(case.error, re.Pattern):
        assert error is not None and case.error.fullmatch(error), error
        assert len(error) <= 4000
    else:
        assert error == case.error
    if case.result is not ANY:
        assert result == case.result


def test_the_worker_survived_every_case(ran: Ran):
    assert ran.worker_code == 0, ran.worker_err
    assert "Unhandled" not in ran.worker_err and "ExceptionGroup" not in ran.worker_err


def test_jobs_of_unknown_types_are_visible_in_status(ran: Ran):
    pending = {(s["type"], s["status"]): s["count"] for s in ran.status_json}
    assert pending[("no.such.type", "pending")] == 1
    assert pending[(SQL_LOOKING, "pending")] == 1
