"""Database helpers: per-library databases, server facts, stats counters, bulk rows."""

from __future__ import annotations

from collections.abc import Mapping

import psycopg
from psycopg import sql

HOST = "127.0.0.1"
PORT = 5432
USER = "postgres"
PREFIX = "bench_"


def dsn(database: str) -> str:
    """Connection string for ``database`` on the benchmark server."""
    return f"postgresql://{USER}@{HOST}:{PORT}/{database}"


def admin_dsn() -> str:
    return dsn("postgres")


def database_for(library: str) -> str:
    return f"{PREFIX}{library}"


def recreate_database(name: str) -> str:
    """Drop and create ``name`` (only ``bench_*`` names), returning its DSN."""
    if not name.startswith(PREFIX):
        raise ValueError(f"refusing to recreate {name!r}: only {PREFIX}* databases")
    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        ident = sql.Identifier(name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
    return dsn(name)


def drop_database(name: str) -> None:
    if not name.startswith(PREFIX):
        raise ValueError(f"refusing to drop {name!r}: only {PREFIX}* databases")
    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def server_version() -> str:
    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        row = conn.execute("SELECT version()").fetchone()
    assert row is not None
    return str(row[0])


async def committed_transactions(database: str) -> int:
    """``xact_commit`` of ``database``, read from another database so we don't add to it."""
    async with await psycopg.AsyncConnection.connect(admin_dsn(), autocommit=True) as conn:
        # A fresh connection per sample: no stats snapshot is reused between samples.
        cur = await conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (database,)
        )
        row = await cur.fetchone()
    if row is None:
        raise LookupError(f"no pg_stat_database row for {database!r}")
    return int(row[0])


async def insert_generated_rows(
    conninfo: str,
    table: str,
    columns: Mapping[str, str],
    count: int,
    *,
    chunk: int = 200_000,
) -> None:
    """Insert ``count`` rows server-side with ``generate_series``, committing per chunk.

    ``columns`` maps a column name to a trusted SQL expression that may use ``g.i``
    (1…count), e.g. ``{"status": "'succeeded'", "finished_at": "now() - g.i * interval '1 s'"}``.
    ``table`` may be schema-qualified (``"jobrunner.jobs"``). Fast: about 1 M rows in a few
    seconds, which is how the "1,000,000 finished jobs" scenario builds its backlog.
    """
    names = sql.SQL(", ").join(sql.Identifier(name) for name in columns)
    exprs = sql.SQL(", ").join(sql.SQL(expr) for expr in columns.values())  # type: ignore[arg-type]
    target = sql.Identifier(*table.split("."))
    query = sql.SQL(
        "INSERT INTO {} ({}) SELECT {} FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g(i)"
    ).format(target, names, exprs)
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        for lo in range(1, count + 1, chunk):
            await conn.execute(query, {"lo": lo, "hi": min(lo + chunk - 1, count)})
