"""The PostgreSQL backend's guards against connections that stop answering: TCP keepalives
unless the URL says otherwise, a bounded statement whose connection is abandoned (and
replaced) when no answer comes in time, and a statement timeout a worker takes from its
leases."""

from __future__ import annotations

import time

import pytest

from jobrunner import DatabaseError
from jobrunner._postgres import PostgresBackend
from jobrunner._postgres._pool import TCP_DEFAULTS, tcp_defaults
from jobrunner._worker import statement_timeout_for


def test_tcp_settings_are_added_unless_the_url_names_them():
    assert tcp_defaults("postgresql://u@db.example/app") == TCP_DEFAULTS
    given = tcp_defaults("postgresql://u@db.example/app?keepalives_idle=60&tcp_user_timeout=0")
    assert "keepalives_idle" not in given and "tcp_user_timeout" not in given
    assert given["keepalives_interval"] == TCP_DEFAULTS["keepalives_interval"]
    assert tcp_defaults("postgresql:///app?host=/run/postgresql") == {}  # a Unix socket


@pytest.mark.parametrize(
    ("leases", "seconds"),
    [({"a": 30.0}, 10.0), ({"a": 30.0, "b": 3.0}, 5.0), ({"a": 3600.0}, 30.0), ({}, 10.0)],
)
def test_a_worker_bounds_statements_by_a_third_of_its_shortest_lease(leases, seconds):
    assert statement_timeout_for(leases) == seconds


@pytest.mark.anyio
async def test_a_statement_without_an_answer_in_time_gives_up_its_connection(pg_url):
    backend = PostgresBackend(pg_url, pool_size=2)
    backend.statement_timeout = 0.5
    await backend.open()
    try:

        async def slow(conn):
            await conn.execute("SELECT pg_sleep(5)")

        started = time.monotonic()
        with pytest.raises(DatabaseError, match=r"did not answer within 0\.5s"):
            await backend._pool.run(slow)
        assert time.monotonic() - started < 3

        # The pool carries on with a fresh connection; unbounded work may take its time.
        async def one(conn):
            cur = await conn.execute("SELECT pg_sleep(0.7), 1")
            return (await cur.fetchone())[1]

        assert await backend._pool.run(one, bounded=False) == 1
    finally:
        await backend.aclose()


@pytest.mark.anyio
async def test_a_live_listener_proves_itself_and_delivers_wakeups(pg_url, caplog):
    import anyio
    import psycopg

    from jobrunner._postgres._listen import Listener

    woken: list[object] = []
    connections = 0

    async def connect(url):
        nonlocal connections
        connections += 1
        return await psycopg.AsyncConnection.connect(url, autocommit=True)

    listener = Listener(connect=connect, url=pg_url, channel="jr_test_live", check=0.2, answer=2)
    with anyio.move_on_after(1.5):
        async with anyio.create_task_group() as group:
            group.start_soon(listener.run, woken.append)
            await anyio.sleep(0.5)
            async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
                await conn.execute("NOTIFY jr_test_live")
    assert connections == 1, "several proofs of life, one connection"
    assert len(woken) == 2, "the wake-up on connecting and the notification, not the proofs"
    assert "LISTEN connection" not in caplog.text
