"""Helpers of the dashboard's tests: job stores on each backend, users, HTTP clients, forms."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import psycopg

from jobrunner import Runner
from jobrunner.dashboard import Access

USER, PASSWORD = "ops", "s3cret-dashboard-pw"
VIEWER, VIEWER_PASSWORD = "viewer", "look-dont-touch-pw"
HOST = "dash.test"


@attrs.define
class Store:
    """A migrated job table on one backend, and raw SQL against it (`{job}` is its name)."""

    name: str
    url: str
    settings: dict[str, Any]
    _sql: Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        return self._sql(query, params)

    def ago(self, seconds: float) -> str:
        """An SQL expression for the time `seconds` ago, in this backend's time type."""
        if self.name == "postgres":
            return f"now() - interval '{float(seconds)} seconds'"
        return f"((julianday('now') - 2440587.5) * 86400.0 - {float(seconds)})"

    def finish(self, ids: list[int], status: str, *, ago: float = 1.0, error: str | None = None):
        """Mark jobs finished `ago` seconds ago with `status` (as a worker would have)."""
        marks = ",".join("?" for _ in ids)
        self.sql(
            f"UPDATE {{job}} SET status = ?, error = ?, attempts = 1,"
            f" finished_at = {self.ago(ago)}, started_at = {self.ago(ago + 1)},"
            f" created_at = {self.ago(ago + 3)}, run_at = {self.ago(ago + 3)}"
            f" WHERE id IN ({marks})",
            status,
            error,
            *ids,
        )

    def start(self, ids: list[int], *, progress: float | None = None, message: str | None = None):
        marks = ",".join("?" for _ in ids)
        self.sql(
            f"UPDATE {{job}} SET status = 'running', attempts = 1, locked_by = 'w:1:x',"
            f" locked_until = {self.ago(-600)}, started_at = {self.ago(1)},"
            f" created_at = {self.ago(4)}, run_at = {self.ago(4)}, progress = ?,"
            f" progress_message = ? WHERE id IN ({marks})",
            progress,
            message,
            *ids,
        )

    def runner(self, **options: Any) -> Runner:
        return Runner(self.url, worker=False, env={}, **{**self.settings, **options})

    def env(self) -> dict[str, str]:
        """Environment variables that point a `jobrunner` process at this store."""
        env = {"DATABASE_URL": self.url}
        if "schema" in self.settings:
            env["JOBRUNNER_SCHEMA"] = self.settings["schema"]
        return env


def _sqlite_store(path: Path) -> Store:
    def sql(query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        try:
            return conn.execute(query.replace("{job}", "job"), params).fetchall()
        finally:
            conn.close()

    return Store(name="sqlite", url=f"sqlite:///{path}", settings={}, sql=sql)


def _postgres_store(url: str, schema: str) -> Store:
    def sql(query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with psycopg.connect(url, autocommit=True) as conn:
            cur = conn.execute(
                query.replace("{job}", f'"{schema}".job').replace("?", "%s"),  # type: ignore[arg-type]
                params,
            )
            return cur.fetchall() if cur.description else []

    return Store(name="postgres", url=url, settings={"schema": schema}, sql=sql)


def access(**overrides: Any) -> Access:
    values: dict[str, Any] = {
        "user": USER,
        "password": PASSWORD,
        "readonly_user": VIEWER,
        "readonly_password": VIEWER_PASSWORD,
    }
    return Access(**{**values, **overrides})


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[Any]:
    """The app with its lifespan running (the way a server runs it)."""
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def client(
    app: Any,
    *,
    auth: tuple[str, str] | None = (USER, PASSWORD),
    peer: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(peer, 40001))
    async with httpx.AsyncClient(
        transport=transport,
        base_url=f"http://{HOST}",
        auth=auth,
        headers=headers or {},
        follow_redirects=False,
    ) as c:
        yield c


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "the page has a form with a CSRF token"
    return found[1]


async def post(c: httpx.AsyncClient, path: str, data: dict[str, Any], **kw: Any) -> httpx.Response:
    """A form POST from one of the dashboard's own pages (its Origin), with the user's token."""
    page = await c.get("/jobs")
    form = {"csrf": csrf_of(page.text), **data}
    headers = {"origin": f"http://{HOST}", **kw.pop("headers", {})}
    return await c.post(path, data=form, headers=headers, **kw)
