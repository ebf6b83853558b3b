"""The contract suite runs every test against each backend: PostgreSQL and SQLite."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import psycopg
import pytest

import jobrunner
from jobrunner import Runner
from jobrunner._schema import migrate

ENGINES = ["postgres"]
if importlib.util.find_spec("jobrunner._sqlite") is not None:
    ENGINES.append("sqlite")


@attrs.define
class Engine:
    """One backend under test, and the engine-specific helpers the tests need."""

    name: str
    backend: jobrunner.Backend
    url: str
    settings: dict[str, Any]
    _expire: Callable[[], Awaitable[None]]
    _sql: Callable[[str, tuple[Any, ...]], Awaitable[list[tuple[Any, ...]]]]

    async def expire_leases(self) -> None:
        """Make every running job's lease look expired (as if its worker died)."""
        await self._expire()

    async def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run raw SQL against the job table (`{job}` is replaced by its name)."""
        return await self._sql(query, params)

    def runner(self, **kwargs: Any) -> Runner:
        options = {**self.settings, **kwargs}
        options.setdefault("poll_interval", 0.2)
        options.setdefault("completion_interval", 0.005)
        return Runner(self.url, env={}, **options)


async def _postgres(pg_url: str, schema: str) -> AsyncIterator[Engine]:
    from jobrunner._postgres import PostgresBackend

    backend = PostgresBackend(pg_url, schema=schema)
    await backend.open()
    await migrate(backend)
    table = f'"{schema}".job'

    async def sql(query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            cur = await conn.execute(query.replace("{job}", table).replace("?", "%s"), params)
            return await cur.fetchall() if cur.description else []

    async def expire() -> None:
        await sql(
            "UPDATE {job} SET locked_until = now() - interval '1 second' WHERE status = 'running'",
            (),
        )

    yield Engine(
        name="postgres",
        backend=backend,
        url=pg_url,
        settings={"schema": schema},
        expire=expire,
        sql=sql,
    )
    await backend.aclose()


async def _sqlite(path: Path) -> AsyncIterator[Engine]:
    import sqlite3

    from jobrunner._sqlite import SQLiteBackend

    backend = SQLiteBackend(path)
    await backend.open()
    await migrate(backend)

    async def sql(query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        try:
            return conn.execute(query.replace("{job}", "job"), params).fetchall()
        finally:
            conn.close()

    async def expire() -> None:
        await sql(
            "UPDATE {job} SET locked_until = locked_until - 3600 WHERE status = 'running'", ()
        )

    yield Engine(
        name="sqlite",
        backend=backend,
        url=f"sqlite:///{path}",
        settings={},
        expire=expire,
        sql=sql,
    )
    await backend.aclose()


@pytest.fixture(params=ENGINES)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Engine]:
    if request.param == "postgres":
        pg_url = request.getfixturevalue("pg_url")
        schema = request.getfixturevalue("pg_schema")
        async for engine in _postgres(pg_url, schema):
            yield engine
    else:
        async for engine in _sqlite(tmp_path / "jobs.db"):
            yield engine


@pytest.fixture
def backend(engine: Engine) -> jobrunner.Backend:
    return engine.backend
