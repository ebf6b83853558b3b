"""Database helpers: per-library databases, server facts, stats counters, bulk rows."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import psycopg
from psycopg import sql

HOST = "127.0.0.1"
PORT = 5432
USER = "postgres"
PREFIX = "bench_"
RUN_LOCK = 0x6A6F6272  # advisory lock key held by a benchmark run ("jobr")


def dsn(database: str) -> str:
    """Connection string for ``database`` on the benchmark server."""
    return f"postgresql://{USER}@{HOST}:{PORT}/{database}"


def admin_dsn() -> str:
    return dsn("postgres")


def database_for(library: str) -> str:
    """``bench_<library>``, hyphens as underscores (``jobrunner-cli`` → ``bench_jobrunner_cli``)."""
    return f"{PREFIX}{library.replace('-', '_')}"


def _bench_identifier(name: str) -> sql.Identifier:
    # Other engineers' databases live on the same server: never touch a non-bench one.
    if not name.startswith(PREFIX):
        raise ValueError(f"refusing to drop {name!r}: only {PREFIX}* databases")
    return sql.Identifier(name)


def drop_database(name: str) -> None:
    """Drop ``name`` (only ``bench_*`` names), closing its connections."""
    ident = _bench_identifier(name)
    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


def recreate_database(name: str) -> str:
    """Drop and create ``name`` (only ``bench_*`` names), returning its DSN."""
    drop_database(name)
    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(_bench_identifier(name)))
    return dsn(name)


@contextmanager
def exclusive_run() -> Iterator[None]:
    """Hold a server-wide advisory lock so that two benchmark runs never overlap.

    Both would recreate the same ``bench_*`` databases and share two cores.
    """
    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (RUN_LOCK,)).fetchone()
        if not (row and row[0]):
            print("another benchmark run is in progress; waiting for it", file=sys.stderr)
            conn.execute("SELECT pg_advisory_lock(%s)", (RUN_LOCK,))
        yield  # the lock goes with the connection


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


async def vacuum_analyze(conninfo: str) -> None:
    """VACUUM ANALYZE the whole database (catalogs too).

    Installing a schema churns the catalogs; without this, an autovacuum worker may come to
    tidy them up in the middle of an idle measurement, and its transactions would count.
    """
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute("VACUUM ANALYZE")


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
