"""The SQLite backend refuses what it cannot use, and says why in words a person can act on."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobrunner import (
    ConfigurationError,
    DatabaseError,
    JobFilter,
    NewJob,
    QueryError,
    Runner,
    SchemaError,
)
from jobrunner._schema import check_schema, migrate
from jobrunner._sqlite import SQLiteBackend

pytestmark = pytest.mark.anyio


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory nobody may create files in (root ignores modes, so it is made immutable)."""
    path = tmp_path / "ro"
    path.mkdir()
    sqlite3.connect(path / "existing.db").execute("CREATE TABLE t (x)").connection.close()
    if os.geteuid() != 0:
        path.chmod(0o555)
        yield path
        path.chmod(0o755)
        return
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot make a read-only directory as root: {made.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


async def opened(path: Path, **kwargs: object) -> SQLiteBackend:
    backend = SQLiteBackend(path, **kwargs)  # type: ignore[arg-type]
    await backend.open()
    return backend


async def test_missing_directory(tmp_path: Path):
    path = tmp_path / "no" / "such" / "dir" / "jobs.db"
    with pytest.raises(ConfigurationError, match=r"directory .*dir does not exist"):
        await opened(path)
    assert not (tmp_path / "no").exists()


async def test_read_only_directory_for_a_new_and_an_existing_file(read_only_dir: Path):
    for name in ("new.db", "existing.db"):
        with pytest.raises(ConfigurationError, match=r"is read-only.*-wal and .*-shm"):
            await opened(read_only_dir / name)


async def test_a_file_that_is_not_a_sqlite_database(tmp_path: Path):
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 10)
    with pytest.raises(ConfigurationError, match="not a SQLite database"):
        await opened(path)
    assert path.read_text().startswith("these are my notes")


async def test_a_directory_given_as_the_file(tmp_path: Path):
    with pytest.raises(ConfigurationError, match="it is a directory"):
        await opened(tmp_path)


async def test_another_applications_database_is_left_alone(tmp_path: Path):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    backend = await opened(path)
    try:
        with pytest.raises(SchemaError, match=r"not a jobrunner database.*\(orders, users\)"):
            await migrate(backend)
        with pytest.raises(SchemaError, match="not a jobrunner database"):
            await check_schema(backend)
    finally:
        await backend.aclose()
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"users", "orders"}


async def test_sharing_another_applications_database_on_purpose(tmp_path: Path):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    backend = await opened(path, allow_other_tables=True)
    try:
        assert await migrate(backend) == ["0001_initial", "0002_workers", "0003_traceparent"]
        await check_schema(backend)
        # Enqueue inside the application's own transaction, on its own connection.
        app = sqlite3.connect(path)
        with app:
            app.execute("INSERT INTO users (name) VALUES ('ada')")
            [job_id] = await backend.job_insert_many([NewJob(type="t")], connection=app)
        app.close()
        assert (await backend.job_get(job_id)).status == "pending"
    finally:
        await backend.aclose()


async def test_an_empty_file_is_not_set_up_until_migrated(tmp_path: Path):
    path = tmp_path / "jobs.db"
    path.touch()
    backend = await opened(path)
    try:
        with pytest.raises(SchemaError, match="not set up; run `jobrunner migrate`"):
            await check_schema(backend)
        await migrate(backend)
        await check_schema(backend)
    finally:
        await backend.aclose()


async def migrated(path: Path) -> SQLiteBackend:
    backend = await opened(path)
    await migrate(backend)
    return backend


async def test_a_schema_newer_than_this_jobrunner_is_refused(tmp_path: Path):
    backend = await migrated(tmp_path / "jobs.db")
    try:
        with sqlite3.connect(tmp_path / "jobs.db") as conn:
            conn.execute(
                "INSERT INTO job_migrations (version, name, jobrunner_version, applied_at) "
                "VALUES (99, 'future', '9.4.0', 0)"
            )
        for step in (check_schema, migrate):
            with pytest.raises(SchemaError, match=r"version 99.*upgrade jobrunner to 9\.4\.0"):
                await step(backend)
    finally:
        await backend.aclose()


async def test_a_schema_behind_this_jobrunner_asks_for_a_migration(tmp_path: Path):
    backend = await migrated(tmp_path / "jobs.db")
    try:
        with sqlite3.connect(tmp_path / "jobs.db") as conn:
            conn.execute("DELETE FROM job_migrations WHERE version > 1")
        with pytest.raises(SchemaError, match="at schema version 1.*run `jobrunner migrate`"):
            await check_schema(backend)
    finally:
        await backend.aclose()


async def test_a_table_altered_by_hand_is_refused(tmp_path: Path):
    backend = await migrated(tmp_path / "jobs.db")
    try:
        with sqlite3.connect(tmp_path / "jobs.db") as conn:
            conn.execute("ALTER TABLE job DROP COLUMN progress_message")
        with pytest.raises(SchemaError, match=r"lacks columns \['progress_message'\]"):
            await check_schema(backend)
    finally:
        await backend.aclose()


async def test_a_dropped_job_table_is_reported(tmp_path: Path):
    backend = await migrated(tmp_path / "jobs.db")
    try:
        with sqlite3.connect(tmp_path / "jobs.db") as conn:
            conn.execute("DROP TABLE job")
        with pytest.raises(
            SchemaError, match="migrations are recorded but the job table is missing"
        ):
            await check_schema(backend)
        with pytest.raises(SchemaError, match="no such table.*run `jobrunner migrate`"):
            await backend.job_get(1)
    finally:
        await backend.aclose()


@pytest.mark.parametrize(
    ("job", "reason"),
    [
        (NewJob(type="t", max_attempts=0), "CHECK constraint failed: max_attempts"),
        (NewJob(type="t", priority=2**31), "CHECK constraint failed: priority"),
        (NewJob(type="t", priority=2**70), "too large"),
    ],
)
async def test_a_job_the_database_refuses_is_a_query_error(tmp_path: Path, job, reason):
    backend = await migrated(tmp_path / "jobs.db")
    try:
        with pytest.raises(QueryError, match=reason) as caught:
            await backend.job_insert_many([NewJob(type="t"), job])
        assert not caught.value.transient  # the worker loop must not retry it
        assert await backend.job_list(JobFilter()) == []  # the whole batch was rolled back
    finally:
        await backend.aclose()


async def test_a_lock_held_too_long_is_a_database_error(tmp_path: Path):
    path = tmp_path / "jobs.db"
    await (await migrated(path)).aclose()
    backend = SQLiteBackend(path, busy_timeout=0.05)
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(DatabaseError, match="stayed locked"):
            await backend.job_insert_many([NewJob(type="t")])
        blocker.execute("ROLLBACK")
        assert len(await backend.job_insert_many([NewJob(type="t")])) == 1
    finally:
        blocker.close()
        await backend.aclose()


async def test_a_runner_reports_the_problem_before_starting(tmp_path: Path):
    runner = Runner(f"sqlite:///{tmp_path}/missing/jobs.db", env={}, worker=False)
    with pytest.raises(ConfigurationError, match="missing does not exist"):
        async with runner:
            pass
