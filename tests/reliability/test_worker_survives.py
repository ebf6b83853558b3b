"""Hostile values that could bring a worker down: each runs in a worker of its own, next to
five well-behaved jobs, and must end its job with a readable error while the worker and the
other jobs carry on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
from psycopg.types.json import Jsonb
from rel_support import jr, sql, start_worker, wait_until, worker_env


class RawJSON(str):
    """A payload given as JSON text, inserted as is."""


def _insert(url: str, schema: str, job_type: str, payload: Any) -> int:
    value = payload if isinstance(payload, RawJSON) else Jsonb(payload)
    rows = sql(
        url,
        f'INSERT INTO "{schema}".job (type, payload) VALUES (%s, %s::jsonb) RETURNING id',
        [job_type, str(value) if isinstance(value, RawJSON) else value],
    )
    return int(rows[0][0])


@attrs.frozen
class Alone:
    row: tuple[Any, ...]
    others: list[str]
    worker_alive: bool
    err: str


def _run_alone(url: str, schema: str, site: Path, logs: Path, job_type: str, payload: Any) -> Alone:
    """Run one job next to five well-behaved ones, in a worker of its own."""
    env = worker_env(site, url, schema)
    assert jr(env, "migrate").returncode == 0
    job_id = _insert(url, schema, job_type, payload)
    others = [_insert(url, schema, "bad.echo", {}) for _ in range(5)]
    worker = start_worker(env, logs, "w", "--concurrency", "4", plugin="relbad,diag")

    def settled() -> bool:
        rows = sql(
            url,
            f'SELECT count(*) FROM "{schema}".job WHERE status IN (%s, %s)',
            ["pending", "running"],
        )
        return rows[0][0] == 0 or not worker.alive()

    try:
        wait_until(settled, 30, "the jobs to settle", 0.2)
        alive = worker.alive()
        if alive:
            assert worker.stop(timeout=30) == 0, worker.stderr()
    finally:
        if worker.alive():
            worker.kill()
    row = sql(
        url, f'SELECT status, attempts, error, result FROM "{schema}".job WHERE id = %s', [job_id]
    )[0]
    states = sql(url, f'SELECT status FROM "{schema}".job WHERE id = ANY(%s)', [others])
    return Alone(row=row, others=[s for (s,) in states], worker_alive=alive, err=worker.stderr())


def _assert_contained(alone: Alone) -> None:
    assert alone.worker_alive, alone.err[-3000:]
    assert alone.others == ["completed"] * 5, "the other jobs kept flowing"


def test_a_result_with_a_nul_fails_with_a_payload_error(pg_url, pg_schema, site, logs):
    alone = _run_alone(pg_url, pg_schema, site, logs, "bad.result", {"kind": "nul"})
    _assert_contained(alone)
    assert alone.row[:3] == ("failed", 1, "PermanentFailure: result contains a NUL character")


def test_an_error_message_with_a_lone_surrogate_is_stored_readably(pg_url, pg_schema, site, logs):
    alone = _run_alone(pg_url, pg_schema, site, logs, "bad.raise", {"kind": "surrogate"})
    _assert_contained(alone)
    status, attempts, error, _ = alone.row
    assert (status, attempts) == ("failed", 2)
    assert error == "RuntimeError: lone \\udcff surrogate"


def test_a_result_nested_too_deeply_fails_cleanly(pg_url, pg_schema, site, logs):
    alone = _run_alone(pg_url, pg_schema, site, logs, "bad.result", {"kind": "deep"})
    _assert_contained(alone)
    status, attempts, error, _ = alone.row
    assert (status, attempts) == ("failed", 1)
    assert error.startswith("PermanentFailure: result is not JSON-serialisable"), error


@pytest.mark.parametrize("message", ["lone \\udcff surrogate", "nul \\x00 inside"])
def test_a_progress_message_with_bad_text_does_not_hurt(pg_url, pg_schema, site, logs, message):
    alone = _run_alone(pg_url, pg_schema, site, logs, "bad.progress", {"message": message})
    _assert_contained(alone)
    assert alone.row[:2] == ("completed", 1)
    assert "database unavailable" not in alone.err, "bad text is not a database outage"


def test_a_payload_nested_too_deeply_for_python_fails_cleanly(pg_url, pg_schema, site, logs):
    # jsonb takes it; Python's json module gives up near 1,000 levels. Sent as JSON text,
    # since the test itself could not encode it either.
    deep = RawJSON("[" * 5000 + "1" + "]" * 5000)
    alone = _run_alone(pg_url, pg_schema, site, logs, "diag.noop", deep)
    _assert_contained(alone)
    status, attempts, error, _ = alone.row
    assert status == "failed", alone.row[:3]
    assert "nested" in error or "recursion" in error.lower(), error
