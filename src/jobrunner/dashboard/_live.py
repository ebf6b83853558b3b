"""What the live parts of the dashboard show, read at most once per interval for all tabs.

Every open tab polls about once a second; the reads behind a poll are shared: the first
request after an interval reads (one statement for the overview's counts, three every few
seconds for workers, limits and pauses, three every half minute for schedules and budgets,
one per watched job), the others wait for it or take what it read. However many tabs are
open, the database sees the same few statements.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from .._backend import WorkerInfo
from .._budgets import Budget, BudgetHold
from .._job import Job
from .._limits import LimitState
from .._schedules import Schedule
from .._status import JobStatus
from ._window import MINUTES, ROW_BUDGET, FinishedWindow

if TYPE_CHECKING:
    from .._runner import Runner

LIVE_SECONDS = 1.0
CLUSTER_SECONDS = 5.0
PLANS_SECONDS = 30.0  # schedules and budgets: changed by hand, and ticking in minutes
STALE_WINDOW = 600.0  # a window not refreshed for this long is read whole again


@attrs.frozen(kw_only=True)
class Line:
    """One type in one queue: jobs pending and running now, and finished in the window."""

    type: str
    queue: str
    counts: dict[JobStatus, int]
    oldest_pending_seconds: float | None = None

    def n(self, status: str) -> int:
        """Jobs of `status` (a status word, as templates write it)."""
        return self.counts.get(JobStatus(status), 0)


@attrs.frozen(kw_only=True)
class Board:
    """The overview's live counts."""

    now: float  # the database's clock, epoch seconds
    lines: list[Line]
    total: Line
    minutes: list[tuple[float, dict[JobStatus, int]]]
    filled: int = MINUTES  # minutes of the hour loaded so far (a fresh dashboard fills in)


@attrs.frozen(kw_only=True)
class Cluster:
    """Workers, limits and pauses (they change every few seconds at most)."""

    workers: list[WorkerInfo]
    limits: list[LimitState]
    paused_queues: dict[str, str | None]

    def paused_types(self, now: Any) -> set[str]:
        return {s.type for s in self.limits if s.paused_now(now)}

    def pauses(self, now: Any) -> list[LimitState]:
        """The types paused now: by hand, or by back-pressure until some time."""
        return [s for s in self.limits if s.paused_now(now)]


@attrs.frozen(kw_only=True)
class Plans:
    """Schedules and budgets, and whom budgets hold back now (they change by hand, and their
    times move in minutes: read every half minute)."""

    schedules: list[Schedule]
    budgets: list[Budget]
    holds: list[BudgetHold]

    def held_by(self, budget: Budget) -> list[BudgetHold]:
        """The users `budget` holds back now."""
        return [
            h
            for h in self.holds
            if (h.unit, h.period) == (budget.unit, budget.period)
            and (
                h.by_default
                if budget.user_id is None
                else not h.by_default and h.user_id == budget.user_id
            )
        ]


@attrs.define
class _Cached:
    """One shared read: its value, when it was read, and the lock that keeps it single."""

    seconds: float
    value: Any = None
    at: float | None = None
    lock: anyio.Lock = attrs.field(factory=anyio.Lock)

    def fresh(self, now: float) -> bool:
        return self.at is not None and now - self.at < self.seconds

    async def get(self, now: Callable[[], float], read: Callable[[], Awaitable[Any]]) -> Any:
        if self.fresh(now()):
            return self.value
        async with self.lock:
            if not self.fresh(now()):  # another request may have read it meanwhile
                self.value = await read()
                self.at = now()
            return self.value


@attrs.define
class Snapshots:
    """The live reads, shared by every tab of one dashboard process."""

    runner: Callable[[], Awaitable[Runner]]  # opened on first use
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    live_seconds: float = LIVE_SECONDS
    cluster_seconds: float = CLUSTER_SECONDS
    plans_seconds: float = PLANS_SECONDS
    _window: FinishedWindow = attrs.field(factory=FinishedWindow)
    _window_at: float | None = None
    _skew: float = 0.0  # the database's clock minus ours
    _board: _Cached = attrs.field(init=False)
    _cluster: _Cached = attrs.field(init=False)
    _plans: _Cached = attrs.field(init=False)
    _jobs: dict[int, _Cached] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        self._board = _Cached(self.live_seconds)
        self._cluster = _Cached(self.cluster_seconds)
        self._plans = _Cached(self.plans_seconds)

    def invalidate(self) -> None:
        """After an action: the next poll reads again."""
        self._board.at = self._cluster.at = self._plans.at = None
        for cached in self._jobs.values():
            cached.at = None

    async def board(self) -> Board:
        value: Board = await self._board.get(self.clock, self._read_board)
        return value

    async def last_board(self) -> Board:
        """The last board read, however old (read once if there is none): for what may lag,
        such as the job types the jobs page suggests."""
        if self._board.value is not None:
            value: Board = self._board.value
            return value
        return await self.board()

    async def cluster(self) -> Cluster:
        value: Cluster = await self._cluster.get(self.clock, self._read_cluster)
        return value

    async def plans(self) -> Plans:
        value: Plans = await self._plans.get(self.clock, self._read_plans)
        return value

    async def family(self, job_id: int) -> list[Job]:
        """The job with its ancestors and descendants (no payloads), for its live view."""
        now = self.clock()
        for old in [k for k, c in self._jobs.items() if c.at is not None and now - c.at > 30]:
            del self._jobs[old]
        cached = self._jobs.setdefault(job_id, _Cached(self.live_seconds))
        runner = await self.runner()
        value: list[Job] = await cached.get(self.clock, lambda: runner.backend.job_family(job_id))
        return value

    async def _read_board(self) -> Board:
        runner = await self.runner()
        if self._window_at is not None and self.clock() - self._window_at > STALE_WINDOW:
            self._window.reset()
        plan = self._window.plan(self.wall() + self._skew)
        asked = self.wall()
        since, older = plan
        overview = await runner.backend.dashboard_overview(
            since=since, older=older, budget=ROW_BUDGET
        )
        self._skew = overview.now - asked
        self._window.update(overview, plan)
        self._window_at = self.clock()
        return board_of(overview.active, self._window, overview.now)

    async def _read_cluster(self) -> Cluster:
        runner = await self.runner()
        workers = await runner.backend.worker_list()
        limits = await runner.limits()
        queues = await runner.paused_queues()
        return Cluster(workers=workers, limits=limits, paused_queues=queues)

    async def _read_plans(self) -> Plans:
        runner = await self.runner()
        schedules = await runner.schedules()
        budgets = await runner.budgets()
        holds = await runner.budget_holds()
        return Plans(schedules=schedules, budgets=budgets, holds=holds)


def board_of(active: Any, window: FinishedWindow, now: float) -> Board:
    """The board from the active counts and the finished window."""
    counts: dict[tuple[str, str], dict[JobStatus, int]] = defaultdict(dict)
    oldest: dict[tuple[str, str], float] = {}
    for row in active:
        key = (row.type, row.queue)
        counts[key][row.status] = counts[key].get(row.status, 0) + row.count
        if row.oldest_pending_seconds is not None:
            oldest[key] = max(oldest.get(key, 0.0), row.oldest_pending_seconds)
    for (job_type, queue, status), count in window.totals().items():
        counts[(job_type, queue)][status] = counts[(job_type, queue)].get(status, 0) + count
    lines = [
        Line(type=t, queue=q, counts=dict(c), oldest_pending_seconds=oldest.get((t, q)))
        for (t, q), c in sorted(counts.items())
    ]
    total: dict[JobStatus, int] = defaultdict(int)
    for line in lines:
        for status, count in line.counts.items():
            total[status] += count
    return Board(
        now=now,
        lines=lines,
        total=Line(
            type="",
            queue="",
            counts=dict(total),
            oldest_pending_seconds=max(oldest.values(), default=None),
        ),
        minutes=window.minutes(now),
        filled=window.filled(now),
    )
