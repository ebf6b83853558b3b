"""The backend protocol: the operations the runner needs from a database.

PostgreSQL and SQLite implement it (a type checker holds both to it); nothing above this
module knows which one it talks to. Every change to a running job is fenced by (status,
attempt, worker), so a worker that lost its lease can never overwrite the outcome of the
worker that took over. Policy stays above the backends: what to migrate and how to check a
schema (`_schema`), when to wake workers after a management change (`Runner`, the rescuer).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import attrs

from ._browse import JobPage, JobQuery, Overview
from ._budgets import Budget, BudgetHold, UsageEntry, UsageTotal
from ._job import DEFAULT_MAX_PAYLOAD_BYTES, Job, NewJob
from ._limits import LimitState, TypeLimits
from ._schedules import Schedule, Tick
from ._schema import SchemaStore
from ._status import JobStatus, OutcomeKind


@attrs.frozen(kw_only=True)
class Wakeup:
    """A notification: new jobs (`cancel_job_id` None), a cancel request for `cancel_job_id`,
    or a change of schedules."""

    cancel_job_id: int | None = None
    schedules: bool = False


@attrs.frozen(kw_only=True)
class ClaimSlot:
    """How many jobs of one type the worker can take now, and the policy stamped on them."""

    type: str
    free: int
    max_attempts: int
    lease: float


@attrs.frozen(kw_only=True)
class Outcome:
    """How one attempt ended; a job runnable again (`kind.status` pending) runs after `delay`
    seconds."""

    id: int
    attempt: int
    kind: OutcomeKind
    result_json: str | None = None
    error: str | None = None
    delay: float = 0.0


@attrs.frozen(kw_only=True)
class Held:
    """A job attempt a worker holds, for lease extension and progress."""

    id: int
    attempt: int
    lease: float = 30.0
    progress: float | None = None
    message: str | None = None


@attrs.frozen(kw_only=True)
class LeaseReport:
    """Which held jobs are still ours, and which of those were asked to cancel."""

    owned: frozenset[int]
    cancel_requested: frozenset[int]


@attrs.frozen(kw_only=True)
class Rescued:
    """A job whose lease expired, and the status the rescue gave it."""

    id: int
    type: str
    status: JobStatus


@attrs.frozen(kw_only=True)
class TypeStats:
    type: str
    status: JobStatus
    count: int
    oldest_pending_seconds: float | None


@attrs.frozen(kw_only=True)
class WorkerInfo:
    """A worker's heartbeat row."""

    id: str
    host: str
    pid: int
    version: str
    job_types: tuple[str, ...] = ()
    concurrency: int = 0
    running: int = 0
    processed: int = 0
    started_at: dt.datetime | None = None
    seen_seconds_ago: float | None = None


@attrs.frozen(kw_only=True)
class JobFilter:
    status: JobStatus | None = attrs.field(
        default=None, converter=attrs.converters.optional(JobStatus)
    )
    type: str | None = None
    user_id: str | None = None
    parent_id: int | None = None
    limit: int = 50


class Backend(SchemaStore, Protocol):
    """A job store. Implementations: `PostgresBackend`, `SQLiteBackend`."""

    #: Seconds a statement may wait for an answer before its connection is abandoned (None:
    #: no bound); a worker sets it from its leases. SQLite, on a local file, ignores it.
    statement_timeout: float | None

    @property
    def description(self) -> str:
        """Where the jobs live, safe to log (no password)."""

    @property
    def default_poll_interval(self) -> float:
        """How often an idle worker polls when no notification arrives."""

    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def job_insert_many(
        self,
        jobs: Sequence[NewJob],
        *,
        connection: Any = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> list[int]:
        """Enqueue jobs (in the caller's transaction when `connection` is given); ids in
        input order."""

    async def job_claim(
        self, *, worker: str, slots: Sequence[ClaimSlot], limit: int, queues: Sequence[str] | None
    ) -> list[Job]:
        """Claim up to `limit` runnable jobs, never more of a type than its slot allows."""

    async def job_finish_many(self, *, worker: str, outcomes: Sequence[Outcome]) -> set[int]:
        """Record outcomes; return the ids that were accepted by the fence."""

    async def job_extend_leases(self, *, worker: str, held: Sequence[Held]) -> LeaseReport:
        """Extend the leases of held jobs."""

    async def job_checkpoint_set(
        self, *, worker: str, job_id: int, attempt: int, key: str, value_json: str
    ) -> bool:
        """Merge one key into a running job's checkpoint; False when the fence refused it."""

    async def job_rescue_expired(self, *, limit: int = 1000) -> list[Rescued]:
        """Return expired running jobs to the queue, or fail them when out of attempts.
        Wakes nobody."""

    async def job_cancel(self, job_id: int) -> Job:
        """Cancel a pending job; mark a running one `cancel_requested`. Wakes nobody."""

    async def job_retry(self, job_id: int) -> Job:
        """Put a finished job back in the queue with fresh attempts. Wakes nobody."""

    async def job_get(self, job_id: int) -> Job: ...

    async def job_list(self, query: JobFilter) -> list[Job]: ...

    async def job_stats(self, *, active_only: bool = False) -> list[TypeStats]:
        """Counts by type and status; `active_only` counts pending and running jobs only."""

    async def job_next_run_in(self, types: Sequence[str]) -> float | None:
        """Seconds until the next pending job of these types is due (≤ 0: due now)."""

    async def job_delete_finished_before(self, *, seconds: float, limit: int = 10_000) -> int: ...

    async def job_progress_many(self, *, worker: str, held: Sequence[Held]) -> None:
        """Store the progress of held jobs (fenced)."""

    async def listen(self, wake: Callable[[Wakeup], None]) -> None:
        """Call `wake` whenever jobs may have become runnable or a cancel was asked; runs until
        cancelled. Raises DatabaseError when notifications are unavailable."""

    async def notify(self, wakeup: Wakeup) -> None:
        """Send a wake-up to every listening worker."""

    async def worker_heartbeat(self, info: WorkerInfo) -> None:
        """Register or refresh a worker's heartbeat."""

    async def worker_remove(self, worker_id: str, *, stale_seconds: float = 86400) -> None:
        """Forget a stopped worker, and any heartbeat older than `stale_seconds`."""

    async def worker_list(self) -> list[WorkerInfo]: ...

    async def job_overdue(self) -> tuple[int, float | None]:
        """(running jobs whose lease expired, seconds the longest-running job has run)."""

    # -- cluster-wide limits and pauses (claims obey them) -------------------------------

    async def limits_declare(self, defaults: Mapping[str, TypeLimits]) -> None:
        """Record the handlers' default limits of a starting worker; a type mapped to empty
        limits loses the defaults an earlier worker declared."""

    async def limits_set(
        self, job_type: str, limits: TypeLimits, *, fair: bool | None = None
    ) -> None:
        """Override the limits given (None: leave as is); `fair=False`: strict FIFO."""

    async def limits_clear(self, job_type: str) -> None:
        """Drop a type's overrides (its defaults apply again); pauses stay."""

    async def limits_list(self) -> list[LimitState]:
        """Every type with limits, a pause or a fairness setting, with its running jobs."""

    async def pause(
        self, *, types: Sequence[str] = (), queues: Sequence[str] = (), reason: str | None = None
    ) -> None:
        """Pause job types and queues cluster-wide (their jobs stay pending)."""

    async def resume(self, *, types: Sequence[str] = (), queues: Sequence[str] = ()) -> None:
        """Lift pauses by hand and back-pressure pauses of types; resume queues."""

    async def paused_queues(self) -> dict[str, str | None]:
        """The paused queues and why."""

    # -- usage and budgets ---------------------------------------------------------------

    async def usage_add(self, entries: Sequence[UsageEntry]) -> None:
        """Add what jobs spent to each job's `usage` and to its user's total for the UTC day.
        Not fenced: what a job spent is spent."""

    async def usage_totals(self, *, user_id: str | None = None, days: int = 31) -> list[UsageTotal]:
        """Users' totals by UTC day and unit, the last `days` days."""

    async def budget_set(self, budget: Budget) -> None:
        """Add or change a budget (a user's, or the default)."""

    async def budget_remove(self, *, user_id: str | None, unit: str, period: str) -> bool:
        """Remove a budget; False when there was none."""

    async def budgets_list(self) -> list[Budget]: ...

    async def budget_holds(self, *, user_id: str | None = None) -> list[BudgetHold]:
        """Who budgets hold back now (one user, or every user with pending jobs)."""

    # -- schedules -----------------------------------------------------------------------

    async def schedules_declare(self, origin: str, schedules: Sequence[Schedule]) -> None:
        """Record a plugin's schedules (`origin` "plugin:<name>"); forget those it dropped."""

    async def schedule_add(self, schedule: Schedule) -> bool:
        """Add a schedule from the CLI; False when the name is taken."""

    async def schedule_remove(self, name: str) -> bool: ...

    async def schedule_pause(self, name: str, *, paused: bool) -> bool: ...

    async def schedules_list(self) -> list[Schedule]: ...

    async def schedules_run(
        self, decide: Callable[[Schedule, dt.datetime], Tick], *, max_payload_bytes: int
    ) -> tuple[int, float | None]:
        """In one transaction, with the database's clock: lock the due schedules (others
        skip them), ask `decide(schedule, now)` what each does, enqueue the ticks' jobs (keyed
        by the tick) and move the schedules on. Returns (jobs enqueued, seconds until the
        next tick of any schedule, None when there is none)."""

    # -- the dashboard's reads -------------------------------------------------------------
    # (and the bulk forms of its actions, fenced by status like the single ones; see `_browse`)

    async def dashboard_overview(
        self, *, since: float, older: tuple[float, float] | None = None, budget: int = 20_000
    ) -> Overview:
        """Pending and running jobs by type and queue, with the oldest runnable pending job's
        age, and jobs finished by minute, type, queue and status: since `since` (epoch
        seconds), and within `older` ([from, to), before `since`) the newest whole minutes that
        hold about `budget` jobs (at least one minute; `Overview.older_from` says where it
        stopped); with the database's clock."""

    async def job_browse(self, query: JobQuery) -> JobPage:
        """A page of jobs matching `query`, newest first, without payload, result and
        checkpoint, read within `query.window` ids below where it starts."""

    async def job_count_matching(self, query: JobQuery, *, cap: int) -> int:
        """How many jobs up to `query.max_id` match `query`, counting at most `cap` + 1."""

    async def job_ids_matching(self, query: JobQuery) -> list[int]:
        """The ids of the newest `query.limit` jobs up to `query.max_id` matching `query`."""

    async def job_family(self, job_id: int, *, limit: int = 500) -> list[Job]:
        """The job, its ancestors and up to `limit` descendants (no payload or result), by id."""

    async def job_retry_many(self, ids: Sequence[int]) -> list[int]:
        """`job_retry` for many: the ids put back in the queue. Wakes nobody."""

    async def job_cancel_many(self, ids: Sequence[int]) -> list[Job]:
        """`job_cancel` for many: the jobs it changed (id, type, status, cancel_requested).
        Wakes nobody."""

    async def job_run_now_many(self, ids: Sequence[int]) -> list[int]:
        """Make pending jobs runnable at once (`run_at` now at the latest): their ids. Wakes
        nobody."""

    async def job_delete_many(self, ids: Sequence[int]) -> list[int]:
        """Delete finished jobs (pending and running ones are left): the ids deleted."""
