"""Migrations: append-only, concurrent-safe, and producing exactly the documented schema."""

from __future__ import annotations

from importlib import resources

import anyio
import psycopg
import pytest
from psycopg import sql

from jobrunner import SchemaError
from jobrunner._postgres import PostgresBackend
from jobrunner._postgres._backend import _render
from jobrunner._schema import check_schema, migrate
from jobrunner._sql import load_migrations

pytestmark = pytest.mark.anyio


def catalog(conn: psycopg.Connection, schema: str) -> dict[str, list]:
    """The shape of a schema, with its name blanked out so two schemas compare equal."""

    def rows(query: str) -> list:
        found = conn.execute(query, {"s": schema}).fetchall()
        shaped = [tuple(str(v).replace(schema, "S") for v in row) for row in found]
        # The bookkeeping table of applied migrations is not part of the job schema.
        return sorted(row for row in shaped if not any("job_migrations" in v for v in row))

    return {
        "columns": rows(
            "SELECT table_name, column_name, data_type, is_nullable, column_default, "
            "is_identity FROM information_schema.columns WHERE table_schema = %(s)s"
        ),
        "indexes": rows("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %(s)s"),
        "constraints": rows(
            "SELECT conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
            "JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = %(s)s"
        ),
        "triggers": rows(
            "SELECT tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c "
            "ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %(s)s AND NOT t.tgisinternal"
        ),
        "functions": rows(
            "SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n "
            "ON n.oid = p.pronamespace WHERE n.nspname = %(s)s"
        ),
    }


async def test_migrations_produce_exactly_the_documented_schema(pg_url, pg_schema, pg_conn):
    migrated = PostgresBackend(pg_url, schema=pg_schema)
    await migrate(migrated)
    await migrated.aclose()
    other = pg_schema + "_doc"
    documented = PostgresBackend(pg_url, schema=other)
    text = resources.files("jobrunner._postgres").joinpath("schema.sql").read_text()
    pg_conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(other)))
    try:
        pg_conn.execute(_render(text, documented._names))
        got, want = catalog(pg_conn, pg_schema), catalog(pg_conn, other)
        assert got["columns"], "the migrated schema has tables"
        for key in got:
            assert got[key] == [tuple(v.replace("S_doc", "S") for v in row) for row in want[key]]
    finally:
        pg_conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(other)))


async def test_migrate_is_idempotent_and_safe_when_run_concurrently(pg_url, pg_schema):
    backends = [PostgresBackend(pg_url, schema=pg_schema) for _ in range(4)]
    results: list[list[str]] = []

    async def run(b: PostgresBackend) -> None:
        results.append(await migrate(b))

    async with anyio.create_task_group() as tg:
        for b in backends:
            tg.start_soon(run, b)
    # Each migration has its own transaction: migrators at once may share the work, but each
    # migration is applied once, in order.
    every = [f"{v:04d}_{n}" for v, n, _ in load_migrations("jobrunner._postgres")]
    assert sorted(label for r in results for label in r) == every
    assert all(r == sorted(r) for r in results)
    assert await migrate(backends[0]) == []
    await check_schema(backends[0])
    for b in backends:
        await b.aclose()


async def test_unmigrated_newer_and_altered_schemas_are_refused(pg_url, pg_schema, pg_conn):
    backend = PostgresBackend(pg_url, schema=pg_schema)
    with pytest.raises(SchemaError, match="jobrunner migrate"):
        await check_schema(backend)
    await migrate(backend)
    pg_conn.execute(
        f'INSERT INTO "{pg_schema}".job_migrations (version, name, jobrunner_version) '
        "VALUES (99, 'future', '9.9.9')"
    )
    with pytest.raises(SchemaError, match=r"version 99 .*9\.9\.9.*upgrade jobrunner"):
        await check_schema(backend)
    pg_conn.execute(f'DELETE FROM "{pg_schema}".job_migrations WHERE version = 99')
    pg_conn.execute(f'ALTER TABLE "{pg_schema}".job DROP COLUMN progress_message')
    with pytest.raises(SchemaError, match="progress_message.*altered by hand"):
        await check_schema(backend)
    await backend.aclose()


async def test_table_and_schema_names_are_quoted(pg_url, pg_conn):
    schema = 'odd"; DROP TABLE x; --'
    backend = PostgresBackend(pg_url, schema=schema, table='jobs"2')
    try:
        await migrate(backend)
        await check_schema(backend)
        from jobrunner import NewJob

        [job_id] = await backend.job_insert_many([NewJob(type="t", payload={"q": "'; --"})])
        assert (await backend.job_get(job_id)).payload == {"q": "'; --"}
    finally:
        await backend.aclose()
        pg_conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
