"""The bare-SQL ceiling: a plain table, a partial index, psycopg, and nothing else.

The worker claims a batch with one ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED
LIMIT n) RETURNING`` and completes it with one ``UPDATE``; it runs the jobs one after
another (no concurrency), waits on LISTEN/NOTIFY when the table is empty and polls every
second as a fallback. Run as ``python -m benchmarks.scenarios._sql --dsn … [--batch n]``.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import psycopg
from psycopg.types.json import Jsonb

from benchmarks import _workerkit

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id bigserial PRIMARY KEY,
    status text NOT NULL DEFAULT 'queued',
    payload jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX IF NOT EXISTS jobs_queued ON jobs (id) WHERE status = 'queued';
"""
ENQUEUE_ONE = "WITH j AS (INSERT INTO jobs (payload) VALUES (%s)) SELECT pg_notify('jobs', '')"
CLAIM = """
UPDATE jobs SET status = 'running'
WHERE id IN (
    SELECT id FROM jobs WHERE status = 'queued' ORDER BY id
    FOR UPDATE SKIP LOCKED LIMIT %s
)
RETURNING id, payload
"""
COMPLETE = "UPDATE jobs SET status = 'done', finished_at = now() WHERE id = ANY(%s)"
UNFINISHED = "SELECT count(*) FROM jobs WHERE status <> 'done'"
POLL_SECONDS = 1.0


@attrs.frozen
class SqlEnqueuer:
    conn: psycopg.AsyncConnection[Any]

    async def enqueue(self, payload: dict[str, Any]) -> None:
        await self.conn.execute(ENQUEUE_ONE, (Jsonb(payload),))

    async def enqueue_many(self, count: int) -> None:
        async with self.conn.cursor() as cur, cur.copy("COPY jobs (payload) FROM STDIN") as copy:
            for _ in range(count):
                await copy.write_row(("{}",))
        await self.conn.execute("SELECT pg_notify('jobs', '')")


@attrs.frozen(kw_only=True)
class SqlAdapter:
    name: str = "bare SQL"
    batch: int = 100
    jobs_cap: int | None = None

    async def install(self, dsn: str) -> None:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await conn.execute(SCHEMA)

    @asynccontextmanager
    async def enqueuer(self, dsn: str) -> AsyncIterator[SqlEnqueuer]:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            yield SqlEnqueuer(conn)

    def worker_command(
        self, dsn: str, *, handler: str, expect: int, concurrency: int | None
    ) -> list[str]:
        return [
            *_workerkit.python_module(__name__),
            *("--dsn", dsn, "--handler", handler, "--expect", str(expect)),
            *("--batch", str(self.batch)),
        ]

    async def unfinished(self, dsn: str) -> int:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            cur = await conn.execute(UNFINISHED)
            row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def _serve(args: _workerkit.WorkerArgs, tally: _workerkit.Tally, stop: asyncio.Event) -> None:
    batch = args.batch or 100
    async with (
        await psycopg.AsyncConnection.connect(args.dsn, autocommit=True) as conn,
        await psycopg.AsyncConnection.connect(args.dsn, autocommit=True) as listener,
    ):
        await listener.execute("LISTEN jobs")
        tally.start()
        while not stop.is_set():
            cur = await conn.execute(CLAIM, (batch,), prepare=True)
            rows = await cur.fetchall()
            if not rows:
                # Wake on NOTIFY, or poll again after a second.
                async for _ in listener.notifies(timeout=POLL_SECONDS, stop_after=1):
                    pass
                continue
            for _, payload in rows:
                await tally.handle(payload)
            await conn.execute(COMPLETE, ([row[0] for row in rows],), prepare=True)


async def main() -> None:
    args = _workerkit.parse_args()
    stop = asyncio.Event()
    tally = _workerkit.Tally(args, on_expected=stop.set)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await _serve(args, tally, stop)
    tally.finish()


if __name__ == "__main__":
    asyncio.run(main())
