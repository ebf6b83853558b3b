"""What the dashboard reads from a backend: counts for the overview, pages of jobs, a job's
family. Values only; the statements live in each backend's `queries.sql` (its dashboard part).

Everything here is read so that its cost does not grow with the finished rows the table holds:
pending and running jobs are counted through their partial indexes, finished jobs only within
the few minutes asked for, through the index on `finished_at`, and a page of jobs never reads
more than `JobQuery.window` ids below where it starts.
"""

from __future__ import annotations

from typing import Any

import attrs

from ._job import Job
from ._status import JobStatus


@attrs.frozen(kw_only=True)
class ActiveCount:
    """Pending or running jobs of one type in one queue."""

    type: str
    queue: str
    status: JobStatus
    count: int
    oldest_pending_seconds: float | None = None  # of the runnable pending ones


@attrs.frozen(kw_only=True)
class FinishedCount:
    """Jobs of one type and queue that reached a final status within one minute."""

    minute: float  # epoch seconds of the minute's start
    type: str
    queue: str
    status: JobStatus
    count: int


@attrs.frozen(kw_only=True)
class Overview:
    """One read of the overview's live counts, with the database's clock (epoch seconds)."""

    now: float
    active: tuple[ActiveCount, ...] = ()
    finished: tuple[FinishedCount, ...] = ()
    older_from: float | None = None  # where the read of older minutes stopped (if asked)


@attrs.frozen(kw_only=True)
class JobQuery:
    """Which jobs to list, newest first. `before_id` is where a page starts (exclusive; None:
    the newest job); a page reads at most `window` ids below it, so a filter that matches few
    rows answers as fast as one that matches many, and says where it stopped."""

    statuses: tuple[JobStatus, ...] = ()  # empty: any status
    type: str | None = None
    queue: str | None = None
    user_id: str | None = None
    parent_id: int | None = None
    error_contains: str | None = None  # case-insensitive
    before_id: int | None = None
    max_id: int | None = None  # inclusive upper bound (a bulk action's snapshot)
    limit: int = 50
    window: int = 200_000


@attrs.frozen(kw_only=True)
class JobPage:
    """A page of jobs (without payload, result and checkpoint). `next_before_id` is where the
    next page starts, None when no older job is left; a page may hold fewer than `limit` jobs
    and still have a next one, when its window ran out first (`searched_to_id` says where)."""

    jobs: tuple[Job, ...]
    next_before_id: int | None
    searched_to_id: int | None = None


def overview_from_rows(rows: list[dict[str, Any]]) -> Overview:
    """An Overview from the rows of `dashboard_overview`."""
    [clock] = [r for r in rows if r["part"] == "clock"]
    active = tuple(
        ActiveCount(
            type=r["type"],
            queue=r["queue"],
            status=JobStatus(r["status"]),
            count=int(r["count"]),
            oldest_pending_seconds=None if r["value"] is None else float(r["value"]),
        )
        for r in rows
        if r["part"] == "active"
    )
    finished = tuple(
        FinishedCount(
            minute=float(r["minute"]),
            type=r["type"],
            queue=r["queue"],
            status=JobStatus(r["status"]),
            count=int(r["count"]),
        )
        for r in rows
        if r["part"] == "finished"
    )
    older = clock["minute"]
    return Overview(
        now=float(clock["value"]),
        active=active,
        finished=finished,
        older_from=None if older is None else float(older),
    )


#: A bound on ids that every id is within (bigint's largest).
EVERY_ID = (1 << 63) - 1


def page_window(query: JobQuery, lowest: int, highest: int) -> tuple[int, int]:
    """The ids a page reads, [low, before), given the table's lowest and highest ids."""
    before = query.before_id if query.before_id is not None else highest + 1
    if query.max_id is not None:
        before = min(before, query.max_id + 1)
    return before, max(before - query.window, lowest)


def page_from_rows(jobs: list[Job], *, query: JobQuery, low: int, lowest: int) -> JobPage:
    """The page a window's rows make (read with `limit + 1`): `limit` jobs, and where the next
    page starts: after the last one shown when the window held more, else at the window's low
    end, unless no job lies below it."""
    if len(jobs) > query.limit:
        shown = jobs[: query.limit]
        return JobPage(jobs=tuple(shown), next_before_id=shown[-1].id)
    if low > lowest:
        return JobPage(jobs=tuple(jobs), next_before_id=low, searched_to_id=low)
    return JobPage(jobs=tuple(jobs), next_before_id=None)
