"""The dashboard's reads (and the bulk forms of its actions) on SQLite.

A part of `SQLiteBackend` kept in its own module: the backend inherits `DashboardReads`,
whose methods use only what `Engine` below names. Reads run in autocommit, writes in one
`BEGIN IMMEDIATE` transaction each, like the rest of the backend.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from .._browse import (
    EVERY_ID,
    JobPage,
    JobQuery,
    Overview,
    overview_from_rows,
    page_from_rows,
    page_window,
)
from .._job import Job
from ._rows import job_from_row, rows

T = TypeVar("T")


class Engine(Protocol):
    """What the dashboard's part of the backend uses of it."""

    clock: Callable[[], float]

    def _exec(self, conn: sqlite3.Connection, name: str, **params: Any) -> sqlite3.Cursor: ...

    async def _fetch(self, name: str, **params: Any) -> list[dict[str, Any]]: ...

    async def _write(self, fn: Callable[[sqlite3.Connection, float], T]) -> T: ...


def _filters(query: JobQuery) -> dict[str, Any]:
    return {
        "statuses": json.dumps([s.value for s in query.statuses]) if query.statuses else None,
        "type": query.type,
        "queue": query.queue,
        "user_id": query.user_id,
        "parent_id": query.parent_id,
        "error": query.error_contains or None,
    }


def _max_id(query: JobQuery) -> int:
    return query.max_id if query.max_id is not None else EVERY_ID


class DashboardReads:
    """The `Backend` protocol's dashboard block, for `SQLiteBackend`."""

    __slots__ = ()

    async def dashboard_overview(
        self: Engine,
        *,
        since: float,
        older: tuple[float, float] | None = None,
        budget: int = 20_000,
    ) -> Overview:
        low, high = older if older is not None else (None, None)
        found = await self._fetch(
            "dashboard_overview",
            now=self.clock(),
            since=since,
            older_from=low,
            older_to=high,
            budget=budget,
        )
        return overview_from_rows(found)

    async def job_browse(self: Engine, query: JobQuery) -> JobPage:
        [bounds] = await self._fetch("job_id_range")
        if bounds["high"] is None:
            return JobPage(jobs=(), next_before_id=None)
        before, low = page_window(query, bounds["low"], bounds["high"])
        found = await self._fetch(
            "job_browse", **_filters(query), before=before, low=low, limit=query.limit + 1
        )
        jobs = [job_from_row(r) for r in found]
        return page_from_rows(jobs, query=query, low=low, lowest=bounds["low"])

    async def job_count_matching(self: Engine, query: JobQuery, *, cap: int) -> int:
        [row] = await self._fetch(
            "job_count_matching", **_filters(query), max_id=_max_id(query), cap=cap + 1
        )
        return int(row["count"])

    async def job_ids_matching(self: Engine, query: JobQuery) -> list[int]:
        found = await self._fetch(
            "job_ids_matching", **_filters(query), max_id=_max_id(query), limit=query.limit
        )
        return [r["id"] for r in found]

    async def job_family(self: Engine, job_id: int, *, limit: int = 500) -> list[Job]:
        found = await self._fetch("job_family", id=job_id, limit=limit + 1)
        return [job_from_row(r) for r in found]

    async def job_retry_many(self: Engine, ids: Sequence[int]) -> list[int]:
        return await _ids(self, "job_retry_many", ids)

    async def job_cancel_many(self: Engine, ids: Sequence[int]) -> list[Job]:
        if not ids:
            return []
        text = json.dumps(list(ids))
        found = await self._write(
            lambda conn, now: rows(self._exec(conn, "job_cancel_many", ids=text, now=now))
        )
        return sorted((job_from_row(r) for r in found), key=lambda job: job.id)

    async def job_run_now_many(self: Engine, ids: Sequence[int]) -> list[int]:
        return await _ids(self, "job_run_now_many", ids)

    async def job_delete_many(self: Engine, ids: Sequence[int]) -> list[int]:
        return await _ids(self, "job_delete_many", ids)


async def _ids(engine: Engine, name: str, ids: Sequence[int]) -> list[int]:
    if not ids:
        return []
    text = json.dumps(list(ids))
    found = await engine._write(
        lambda conn, now: [r[0] for r in engine._exec(conn, name, ids=text, now=now)]
    )
    return sorted(found)
