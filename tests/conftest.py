"""Shared fixtures: a real PostgreSQL (started if needed), fresh schemas, backends."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from jobrunner._schema import migrate
from jr_support import write_plugin_dist

PG_URL = os.environ.get("JOBRUNNER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def _pg_answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _start_postgres() -> None:
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions:
        return
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
        check=False,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A PostgreSQL URL that answers. Starts the local cluster if needed; with CI=true a
    missing PostgreSQL fails the run instead of skipping."""
    if not _pg_answers(PG_URL):
        _start_postgres()
        for _ in range(30):
            if _pg_answers(PG_URL):
                break
            time.sleep(1)
        else:
            message = f"PostgreSQL does not answer at {PG_URL}"
            if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
                pytest.fail(message + " (CI=true: failing, not skipping)")
            pytest.skip(message)
    return PG_URL


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    """A fresh, empty schema, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def pg_conn(pg_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
async def pg_backend(pg_url: str, pg_schema: str) -> AsyncIterator[object]:
    from jobrunner._postgres import PostgresBackend

    backend = PostgresBackend(pg_url, schema=pg_schema)
    await backend.open()
    await migrate(backend)
    yield backend
    await backend.aclose()


@pytest.fixture
def plugin_env(tmp_path: Path):
    """Returns make(dist, plugin, module, source) -> env for subprocesses that see the plugin."""

    def make(dist: str, plugin: str, module: str, source: str) -> dict[str, str]:
        root = write_plugin_dist(tmp_path / "site", dist, plugin, module, source)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        return env

    return make
