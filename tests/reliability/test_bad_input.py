"""Bad input refused at the door: by PostgreSQL for rows written by SQL, by the enqueue API
for jobs written through jobrunner. Each case asserts the error a person reads and that the
table is exactly as before (one canary job, untouched).

Jobs that get in and are then run by a worker are in test_bad_jobs.py; a job table altered
by hand is at the end of this module.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import psycopg
import pytest
from rel_support import jr, sql, worker_env

from jobrunner import PayloadError, QueryError, Runner

CANARY = ("bad.echo", {"canary": True}, "pending", 0)


@pytest.fixture(scope="module")
def schema(pg_url: str) -> Iterator[str]:
    """A migrated schema holding one canary job, shared by the refusal cases."""
    name = f"bad_{uuid.uuid4().hex[:10]}"
    env = worker_env(None, pg_url, name)
    assert jr(env, "migrate").returncode == 0
    sql(
        pg_url,
        f'INSERT INTO "{name}".job (type, payload) VALUES (%s, %s)',
        [CANARY[0], psycopg.types.json.Jsonb(CANARY[1])],
    )
    yield name
    sql(pg_url, f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _table(url: str, schema: str) -> list[tuple[Any, ...]]:
    return sql(url, f'SELECT type, payload, status, attempts FROM "{schema}".job ORDER BY id')


@pytest.fixture(autouse=True)
def _reset(pg_url: str, schema: str) -> Iterator[None]:
    """Whatever a failed case let in is removed, so one failure does not cascade."""
    yield
    sql(
        pg_url,
        f'DELETE FROM "{schema}".job WHERE payload <> %s',
        [psycopg.types.json.Jsonb(CANARY[1])],
    )


def _untouched(url: str, schema: str) -> None:
    assert _table(url, schema) == [CANARY], "the table is exactly as before"


# -- rows written by SQL: PostgreSQL refuses them ------------------------------------------


@attrs.frozen
class SqlCase:
    id: str
    columns: str
    values: tuple[Any, ...]
    error: str


SQL_CASES = [
    SqlCase(
        "json-truncated",
        "type, payload",
        ("bad.echo", '{"a": '),
        "invalid input syntax for type json",
    ),
    SqlCase(
        "json-unquoted-key",
        "type, payload",
        ("bad.echo", "{a: 1}"),
        "invalid input syntax for type json",
    ),
    SqlCase(
        "json-trailing-garbage",
        "type, payload",
        ("bad.echo", "{} x"),
        "invalid input syntax for type json",
    ),
    SqlCase(
        "json-nan",
        "type, payload",
        ("bad.echo", '{"x": NaN}'),
        "invalid input syntax for type json",
    ),
    SqlCase(
        "json-single-quotes",
        "type, payload",
        ("bad.echo", "{'a': 1}"),
        "invalid input syntax for type json",
    ),
    SqlCase(
        "json-nul-escape",
        "type, payload",
        ("bad.echo", '{"x": "\\u0000"}'),
        "unsupported Unicode escape sequence",
    ),
    SqlCase(
        "json-lone-surrogate-escape",
        "type, payload",
        ("bad.echo", '{"x": "\\ud800"}'),
        "Unicode low surrogate must follow a high surrogate",
    ),
    SqlCase(
        "text-nul-byte", "type, user_id", ("bad.echo", "a\x00b"), "cannot contain NUL (0x00) bytes"
    ),
    SqlCase(
        "max-attempts-zero",
        "type, max_attempts",
        ("bad.echo", 0),
        'violates check constraint "job_max_attempts_check"',
    ),
    SqlCase(
        "max-attempts-negative",
        "type, max_attempts",
        ("bad.echo", -5),
        'violates check constraint "job_max_attempts_check"',
    ),
    SqlCase("type-empty", "type", ("",), 'violates check constraint "job_type_check"'),
    SqlCase("type-null", "type", (None,), 'null value in column "type"'),
    SqlCase("payload-null", "type, payload", ("bad.echo", None), 'null value in column "payload"'),
    SqlCase(
        "status-unknown",
        "type, status",
        ("bad.echo", "done"),
        'violates check constraint "job_status_check"',
    ),
    SqlCase("priority-overflow", "type, priority", ("bad.echo", 2**31), "integer out of range"),
    SqlCase(
        "attempts-negative",
        "type, attempts",
        ("bad.echo", -1),
        'violates check constraint "job_attempts_check"',
    ),
    SqlCase(
        "progress-over-one",
        "type, progress",
        ("bad.echo", 1.5),
        'violates check constraint "job_progress_check"',
    ),
    SqlCase(
        "run-at-not-a-time",
        "type, run_at",
        ("bad.echo", "next tuesday-ish"),
        "invalid input syntax for type timestamp with time zone",
    ),
]


@pytest.mark.parametrize("case", SQL_CASES, ids=lambda c: c.id)
def test_postgres_refuses_bad_rows(pg_url, schema, case: SqlCase):
    marks = ", ".join(["%s"] * len(case.values))
    with pytest.raises(psycopg.Error) as caught:
        sql(pg_url, f'INSERT INTO "{schema}".job ({case.columns}) VALUES ({marks})', case.values)
    assert case.error in str(caught.value)
    _untouched(pg_url, schema)


def test_invalid_utf8_bytes_are_refused_by_the_database(pg_url, schema):
    with pytest.raises(psycopg.Error) as caught:
        sql(
            pg_url,
            f'INSERT INTO "{schema}".job (type, payload) VALUES (%s, '
            "jsonb_build_object('text', convert_from('\\xc328'::bytea, 'UTF8')))",
            ["bad.echo"],
        )
    assert 'invalid byte sequence for encoding "UTF8": 0xc3 0x28' in str(caught.value)
    _untouched(pg_url, schema)


# -- jobs written through the enqueue API: jobrunner refuses them --------------------------


@attrs.frozen
class ApiCase:
    id: str
    kwargs: dict[str, Any]
    error: type[Exception]
    message: str
    bug: str | None = None


def _params(cases: list[ApiCase]) -> list[Any]:
    return [
        pytest.param(
            c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=c.bug)] if c.bug else []
        )
        for c in cases
    ]


MB = 1 << 20
API_CASES = [
    ApiCase(
        "payload-oversized",
        {"payload": {"x": "y" * MB}},
        PayloadError,
        f"payload is {MB + 8} bytes, over the limit of {MB} bytes",
    ),
    ApiCase(
        "payload-set",
        {"payload": {"s": {1, 2}}},
        PayloadError,
        "payload is not JSON-serialisable: Object of type set",
    ),
    ApiCase(
        "payload-object",
        {"payload": object()},
        PayloadError,
        "payload is not JSON-serialisable: Object of type object",
    ),
    ApiCase(
        "payload-bytes",
        {"payload": b"raw"},
        PayloadError,
        "payload is not JSON-serialisable: Object of type bytes",
    ),
    ApiCase(
        "payload-nan",
        {"payload": {"x": float("nan")}},
        PayloadError,
        "Out of range float values are not JSON compliant",
    ),
    ApiCase(
        "payload-infinity",
        {"payload": [float("inf")]},
        PayloadError,
        "Out of range float values are not JSON compliant",
    ),
    ApiCase(
        "payload-nul",
        {"payload": {"x": "a\x00b"}},
        PayloadError,
        "payload contains a NUL character",
    ),
    ApiCase(
        "payload-lone-surrogate",
        {"payload": {"x": "\udcff"}},
        PayloadError,
        "payload contains invalid Unicode",
    ),
    ApiCase(
        "payload-surrogate-key",
        {"payload": {"\ud800": 1}},
        PayloadError,
        "payload contains invalid Unicode",
    ),
    ApiCase(
        "max-attempts-zero",
        {"max_attempts": 0},
        QueryError,
        'violates check constraint "job_max_attempts_check"',
    ),
    ApiCase("priority-overflow", {"priority": 2**31}, QueryError, "integer out of range"),
    ApiCase("priority-huge", {"priority": 10**30}, QueryError, "PostgreSQL refused"),
    ApiCase("user-id-nul", {"user_id": "a\x00b"}, PayloadError, "user_id contains a NUL character"),
    ApiCase("queue-nul", {"queue": "q\x00"}, PayloadError, "queue contains a NUL character"),
    ApiCase("delay-infinite", {"delay": float("inf")}, QueryError, "interval out of range"),
    ApiCase("delay-nan", {"delay": float("nan")}, QueryError, "PostgreSQL refused"),
]


@pytest.mark.parametrize("case", _params(API_CASES))
@pytest.mark.anyio
async def test_enqueue_refuses_bad_jobs(pg_url, schema, case: ApiCase):
    async with Runner(pg_url, schema=schema, worker=False, env={}) as runner:
        kwargs = {"payload": {}, **case.kwargs}
        with pytest.raises(case.error) as caught:
            await runner.enqueue("bad.echo", **kwargs)
    assert case.message in str(caught.value)
    _untouched(pg_url, schema)


@pytest.mark.parametrize(
    ("field", "value"),
    [("user_id", "lone \udcff"), ("queue", "\ud800q"), ("type", "bad.\udcff")],
)
@pytest.mark.anyio
async def test_enqueue_refuses_invalid_unicode_in_text_fields(pg_url, schema, field, value):
    async with Runner(pg_url, schema=schema, worker=False, env={}) as runner:
        kwargs: dict[str, Any] = {"type": "bad.echo", "payload": {}, field: value}
        with pytest.raises((PayloadError, QueryError)) as caught:
            await runner.enqueue(**kwargs)
    assert "Unicode" in str(caught.value) or "surrogate" in str(caught.value)
    _untouched(pg_url, schema)


@pytest.mark.anyio
async def test_enqueue_refuses_an_empty_type(pg_url, schema):
    async with Runner(pg_url, schema=schema, worker=False, env={}) as runner:
        with pytest.raises(ValueError, match="Length of 'type' must be >= 1"):
            await runner.enqueue("")
    _untouched(pg_url, schema)


@pytest.mark.anyio
async def test_absurd_but_valid_run_at_values_are_accepted(pg_url, schema):
    """Absurd but valid times are accepted: year 1 runs now, year 9999 waits (visible)."""
    async with Runner(pg_url, schema=schema, worker=False, env={}) as runner:
        early = await runner.enqueue("bad.echo", run_at=dt.datetime(1, 1, 2, tzinfo=dt.UTC))
        late = await runner.enqueue("bad.echo", run_at=dt.datetime(9999, 12, 31, tzinfo=dt.UTC))
        jobs = [await runner.get_job(early), await runner.get_job(late)]
    assert [(j.status, j.run_at.year) for j in jobs] == [("pending", 1), ("pending", 9999)]
    sql(pg_url, f'DELETE FROM "{schema}".job WHERE id = ANY(%s)', [[early, late]])
    _untouched(pg_url, schema)
