"""Fixtures for the dashboard's tests: a job store on each backend, the app over it, and a
real browser against `jobrunner dashboard` (module-scoped: one Chromium, one site per module)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import Site, browser, new_page, site_in
from dash_support import Store, _postgres_store, _sqlite_store, access

from jobrunner.dashboard import create_app


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


@pytest.fixture
async def make_app(store: Store) -> AsyncIterator[Callable[..., Any]]:
    """make(**create_app options) -> an app on `store`; each is shut down (its lifespan's end
    closes the runner it opened) after the test."""
    made: list[Any] = []

    def make(**options: Any) -> Any:
        options.setdefault("access", access())
        options.setdefault("plugins", [])
        app = create_app(database_url=store.url, env={}, **{**store.settings, **options})
        made.append(app)
        return app

    yield make
    for app in made:
        async with app.router.lifespan_context(app):
            pass


@pytest.fixture(scope="module")
def chrome() -> Iterator[Any]:
    with browser() as launched:
        yield launched


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with site_in(tmp_path_factory.mktemp("site")) as found:
        yield found


@pytest.fixture
def page(chrome: Any, site: Site) -> Iterator[Any]:
    """A logged-in page on the site; confirmation dialogs are accepted."""
    opened = new_page(chrome, site.url)
    opened.on("dialog", lambda dialog: dialog.accept())
    yield opened
    opened.context.close()
