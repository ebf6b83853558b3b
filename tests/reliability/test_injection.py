"""SQL injection through every configurable name: schema, table, queue (and user ids).

Identifiers are quoted and values are parameters, so hostile names are just names: the
commands work, the table gets exactly the name asked for, and a canary table survives.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from psycopg import sql as pgsql
from rel_support import jr, sql, worker_env

HOSTILE_QUEUE = "q'); DELETE FROM job; --"
HOSTILE_USER = "u' OR '1'='1"


@pytest.fixture
def canary(pg_url: str) -> Iterator[str]:
    """A schema with one row that any successful injection here would destroy."""
    name = f"canary_{uuid.uuid4().hex[:8]}"
    sql(pg_url, f'CREATE SCHEMA "{name}"')
    sql(pg_url, f'CREATE TABLE "{name}".canary (alive boolean)')
    sql(pg_url, f'INSERT INTO "{name}".canary VALUES (true)')
    yield name
    sql(pg_url, f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _names(kind: str, canary: str, base: str) -> tuple[str, str]:
    """(schema, table) for one kind of hostile configuration."""
    evil_schema = f'{base}"; DROP SCHEMA "{canary}" CASCADE; --'
    evil_table = f'job"; DROP TABLE "{canary}".canary; --\''
    return {
        "schema": (evil_schema, "job"),
        "table": (base, evil_table),
        "both": (evil_schema, evil_table),
        "unicode": (f"{base}_作业队列调度器作业队列调度器", "任务"),
    }[kind]


def _ok(env: dict[str, str], *args: str) -> str:
    done = jr(env, *args)
    assert done.returncode == 0, (args, done.stderr)
    return done.stdout


@pytest.mark.parametrize(
    "kind",
    [
        "both",
        pytest.param("schema", marks=pytest.mark.slow),
        pytest.param("table", marks=pytest.mark.slow),
        "unicode",
    ],
)
def test_hostile_names_are_only_names(pg_url, pg_schema, site, canary, kind):
    schema, table = _names(kind, canary, pg_schema)
    env = worker_env(site, pg_url, schema, JOBRUNNER_TABLE=table)
    try:
        _ok(env, "migrate")
        job_id = _ok(
            env, "enqueue", "diag.noop", "--queue", HOSTILE_QUEUE, "--user-id", HOSTILE_USER
        )
        _ok(env, "run", "--plugin", "diag", "--burst", "--queue", HOSTILE_QUEUE)
        shown = json.loads(_ok(env, "jobs", "show", job_id.strip(), "--json"))
        assert (shown["status"], shown["queue"], shown["user_id"]) == (
            "completed",
            HOSTILE_QUEUE,
            HOSTILE_USER,
        )
        listed = json.loads(_ok(env, "jobs", "list", "--user-id", HOSTILE_USER, "--json"))
        assert [j["id"] for j in listed] == [shown["id"]]
        assert "diag.noop" in _ok(env, "status")
        _ok(env, "workers")
        assert "deleted 1 finished jobs" in _ok(env, "prune", "--older-than", "0s")
        found = sql(
            pg_url,
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND c.relkind = 'r'",
            [schema, table],
        )
        assert found == [(1,)], "the table has exactly the configured name"
        assert sql(pg_url, f'SELECT alive FROM "{canary}".canary') == [(True,)]
    finally:
        if schema != pg_schema:
            sql(
                pg_url,
                pgsql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(pgsql.Identifier(schema)),
            )


def test_a_table_name_too_long_for_postgres_is_refused_clearly(pg_url, pg_schema, site):
    env = worker_env(site, pg_url, pg_schema, JOBRUNNER_TABLE="t" * 63)
    done = jr(env, "migrate")
    assert done.returncode == 2, done.stderr
    assert "too long" in done.stderr
