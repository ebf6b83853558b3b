"""Fixtures for the dashboard's tests: a job store on each backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from dash_support import Store, _postgres_store, _sqlite_store


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "postgres":
        found = _postgres_store(
            request.getfixturevalue("pg_url"), request.getfixturevalue("pg_schema")
        )
    else:
        found = _sqlite_store(tmp_path / "jobs.db")
    async with found.runner(auto_migrate=True):
        pass
    return found


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> Store:
    found = _sqlite_store(tmp_path / "jobs.db")
    async with found.runner(auto_migrate=True):
        pass
    return found
