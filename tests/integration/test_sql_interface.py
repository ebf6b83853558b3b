"""The job table as other languages see it: a plain INSERT is an enqueue and wakes a worker."""

from __future__ import annotations

import anyio
import psycopg
import pytest

from jobrunner import JobContext, Plugin, Runner
from jobrunner._postgres import PostgresBackend
from jobrunner._schema import migrate

pytestmark = pytest.mark.anyio


async def test_plain_sql_insert_is_a_valid_enqueue_and_wakes_an_idle_worker(pg_url, pg_schema):
    plugin = Plugin("x")

    @plugin.handler("x.y")
    async def handler(ctx: JobContext):
        return {"a": ctx.payload["a"], "user": ctx.user_id}

    # A poll interval of an hour: only the NOTIFY trigger can wake the worker in time.
    async with Runner(pg_url, schema=pg_schema, plugins=[plugin], poll_interval=3600, env={}) as r:
        await anyio.sleep(0.3)  # let the worker go idle
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            cur = await conn.execute(
                f'INSERT INTO "{pg_schema}".job (type, payload, user_id) '
                "VALUES ('x.y', '{\"a\":1}', 'u1') RETURNING id"
            )
            (job_id,) = await cur.fetchone()
        job = await r.wait_for(job_id, timeout=10)
    assert (job.status, job.result, job.attempts) == ("completed", {"a": 1, "user": "u1"}, 1)


async def test_one_notification_per_statement_not_per_row(pg_url, pg_schema):
    backend = PostgresBackend(pg_url, schema=pg_schema)
    await backend.open()
    await migrate(backend)
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as listener:
        await listener.execute(f'LISTEN "{backend.channel}"')
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            await conn.execute(
                f"INSERT INTO \"{pg_schema}\".job (type) SELECT 'bulk' FROM generate_series(1, 500)"
            )
        notes = [n async for n in listener.notifies(timeout=1.0)]
    await backend.aclose()
    assert len(notes) == 1


async def test_enqueue_inside_the_callers_transaction(pg_url, pg_schema):
    async with Runner(pg_url, schema=pg_schema, worker=False, env={}) as runner:
        async with await psycopg.AsyncConnection.connect(pg_url) as conn:
            async with conn.transaction():
                kept = await runner.enqueue("t.a", {"n": 1}, connection=conn)
            with pytest.raises(ZeroDivisionError):
                async with conn.transaction():
                    await runner.enqueue("t.a", {"n": 2}, connection=conn)
                    1 / 0  # noqa: B018
        jobs = await runner.list_jobs(type="t.a")
    assert [j.id for j in jobs] == [kept]


async def test_user_jobs_query_uses_the_user_index(pg_url, pg_schema, pg_conn):
    async with Runner(pg_url, schema=pg_schema, worker=False, env={}):
        pass
    pg_conn.execute(
        f'INSERT INTO "{pg_schema}".job (type, user_id, status, finished_at) '
        "SELECT 't', 'u' || (i % 1000), 'completed', now() FROM generate_series(1, 20000) i"
    )
    pg_conn.execute(f'ANALYZE "{pg_schema}".job')
    plan = "\n".join(
        row[0]
        for row in pg_conn.execute(
            f"EXPLAIN SELECT * FROM \"{pg_schema}\".job WHERE user_id = 'u7' "
            "AND status = 'completed' ORDER BY created_at DESC LIMIT 20"
        )
    )
    assert "job_user_status_idx" in plan
