"""The dashboard's reads (and the bulk forms of its actions) on PostgreSQL.

A part of `PostgresBackend` kept in its own module: the backend inherits `DashboardReads`,
whose methods use only the backend's pool and statements (`Engine` below says which). Every
statement here is planned for its actual parameters (never prepared): their filters are
optional, and a generic plan for "type = $1 OR $1 IS NULL" would not use an index.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, LiteralString, Protocol

from psycopg.rows import dict_row

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
from ._pool import Connection, Pool


class Engine(Protocol):
    """What the dashboard's part of the backend uses of it."""

    _pool: Pool
    _queries: dict[str, LiteralString]


async def _rows(
    engine: Engine, name: str, params: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    query = engine._queries[name]

    async def fetch(conn: Connection) -> list[dict[str, Any]]:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(query, params, prepare=False)
        return await cur.fetchall() if cur.description else []

    return await engine._pool.run(fetch)


def _filters(query: JobQuery) -> dict[str, Any]:
    return {
        "statuses": [s.value for s in query.statuses] or None,
        "type": query.type,
        "queue": query.queue,
        "user_id": query.user_id,
        "parent_id": query.parent_id,
        "error": query.error_contains or None,
    }


class DashboardReads:
    """The `Backend` protocol's dashboard block, for `PostgresBackend`."""

    __slots__ = ()

    async def dashboard_overview(
        self: Engine,
        *,
        since: float,
        older: tuple[float, float] | None = None,
        budget: int = 20_000,
    ) -> Overview:
        low, high = older if older is not None else (None, None)
        params = {"since": since, "older_from": low, "older_to": high, "budget": budget}
        return overview_from_rows(await _rows(self, "dashboard_overview", params))

    async def job_browse(self: Engine, query: JobQuery) -> JobPage:
        [bounds] = await _rows(self, "job_id_range")
        if bounds["high"] is None:
            return JobPage(jobs=(), next_before_id=None)
        before, low = page_window(query, bounds["low"], bounds["high"])
        params = {**_filters(query), "before": before, "low": low, "limit": query.limit + 1}
        jobs = [Job.from_row(r) for r in await _rows(self, "job_browse", params)]
        return page_from_rows(jobs, query=query, low=low, lowest=bounds["low"])

    async def job_count_matching(self: Engine, query: JobQuery, *, cap: int) -> int:
        params = {**_filters(query), "max_id": _max_id(query), "cap": cap + 1}
        [row] = await _rows(self, "job_count_matching", params)
        return int(row["count"])

    async def job_ids_matching(self: Engine, query: JobQuery) -> list[int]:
        params = {**_filters(query), "max_id": _max_id(query), "limit": query.limit}
        return [r["id"] for r in await _rows(self, "job_ids_matching", params)]

    async def job_family(self: Engine, job_id: int, *, limit: int = 500) -> list[Job]:
        rows = await _rows(self, "job_family", {"id": job_id, "limit": limit + 1})
        return [Job.from_row(r) for r in rows]

    async def job_retry_many(self: Engine, ids: Sequence[int]) -> list[int]:
        return await _ids(self, "job_retry_many", ids)

    async def job_cancel_many(self: Engine, ids: Sequence[int]) -> list[Job]:
        if not ids:
            return []
        found = await _rows(self, "job_cancel_many", {"ids": list(ids)})
        return sorted((Job.from_row(r) for r in found), key=lambda job: job.id)

    async def job_run_now_many(self: Engine, ids: Sequence[int]) -> list[int]:
        return await _ids(self, "job_run_now_many", ids)

    async def job_delete_many(self: Engine, ids: Sequence[int]) -> list[int]:
        return await _ids(self, "job_delete_many", ids)


def _max_id(query: JobQuery) -> int:
    return query.max_id if query.max_id is not None else EVERY_ID


async def _ids(engine: Engine, name: str, ids: Sequence[int]) -> list[int]:
    if not ids:
        return []
    return sorted(r["id"] for r in await _rows(engine, name, {"ids": list(ids)}))
