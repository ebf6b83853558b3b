"""Applying migrations on PostgreSQL without holding up the workers that run meanwhile.

Each migration runs in its own transaction, with its record, under the migrators'
transaction-level advisory lock (which also holds behind PgBouncer's transaction pooling, where
a session lock would stay on whichever server connection took it): an upgrade across several
migrations holds each one's locks only for that migration. Migrators running at once may each
apply some of them; each is applied once, in order.
A lock on the job table is waited for at most `LOCK_TIMEOUT` at a time: while an ALTER TABLE
waits for its ACCESS EXCLUSIVE lock, every claim, insert and read of the table queues behind
it, so a migration stuck behind a long transaction (a report, a dump, an idle-in-transaction
session) would stall the whole cluster. It gives way instead, and tries again after a pause,
until `LOCK_DEADLINE`; then it fails naming the sessions in its way.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, LiteralString

import anyio
import psycopg
from psycopg import sql

from .._errors import DatabaseError
from .._schema import Migration
from ._pool import Connection

log = logging.getLogger("jobrunner")
Query = sql.Composed | sql.SQL | LiteralString

#: How long one try waits for a lock before it gives way to the queries queued behind it.
LOCK_TIMEOUT = "500ms"
#: How long `jobrunner migrate` keeps trying before it gives up.
LOCK_DEADLINE = 300.0
#: The pause between tries, in seconds (jittered, so two migrators do not keep colliding).
RETRY_PAUSE = (0.5, 2.0)


async def apply_each(
    conn: Connection,
    *,
    lock_key: int,
    setup: Sequence[Query],
    applied_query: Query,
    record: Callable[[Migration], tuple[Query, Mapping[str, Any]]],
    plan: Callable[[set[int]], list[Migration]],
    table: str,
    deadline: float | None = None,
) -> list[Migration]:
    """Apply what `plan` chooses, one migration (and its `record`) per transaction, after the
    `setup` statements (the schema, the bookkeeping table); returns the migrations applied
    here. `table` (schema-qualified) is named when the locks cannot be had."""
    deadline = LOCK_DEADLINE if deadline is None else deadline
    applied: list[Migration] = []
    give_up = time.monotonic() + deadline
    while True:
        label = "setup"
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key])
                # Timeouts a pool sets for workers' statements must not cut an index build.
                await conn.execute("SET LOCAL statement_timeout = 0")
                await conn.execute(
                    sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT))
                )
                for statement in setup:
                    await conn.execute(statement)
                cur = await conn.execute(applied_query)
                todo = plan({row[0] for row in await cur.fetchall()})
                if not todo:
                    return applied
                migration, label = todo[0], todo[0].label
                await conn.execute(migration.sql)
                query, params = record(migration)
                await conn.execute(query, params)
        except psycopg.errors.LockNotAvailable:
            if time.monotonic() > give_up:
                holders = await _holders(conn, table)
                raise DatabaseError(
                    f"migration {label} could not take its locks on {table} within "
                    f"{deadline:g}s: sessions {holders} held them; end those sessions (or "
                    "their transactions) and run `jobrunner migrate` again"
                ) from None
            log.warning(
                "migration %s waited %s for a lock on %s and gave way to the queries queued "
                "behind it; trying again",
                label,
                LOCK_TIMEOUT,
                table,
                extra={"event": "migration_lock_wait"},
            )
            await anyio.sleep(random.uniform(*RETRY_PAUSE))
            continue
        applied.append(migration)


async def _holders(conn: Connection, table: str) -> list[int]:
    """The other sessions holding a lock on `table`."""
    cur = await conn.execute(
        "SELECT DISTINCT pid FROM pg_locks WHERE granted AND relation = to_regclass(%s) "
        "AND pid <> pg_backend_pid() ORDER BY 1",
        [table],
    )
    return [row[0] for row in await cur.fetchall()]
