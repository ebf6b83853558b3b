"""What operators change at run time, from Python: cluster-wide limits and pauses, budgets,
schedules (the `Runner` methods; the CLI and the dashboard use them too)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from ._backend import Backend
from ._budgets import Budget, BudgetHold, Period, UsageTotal
from ._errors import ConfigurationError
from ._job import Job
from ._limits import LimitState, Rate, TypeLimits, pause_text
from ._schedules import Missed, Schedule
from ._settings import parse_duration


class Controls:
    backend: Backend

    def _wake_workers(self) -> None:
        raise NotImplementedError  # provided by Runner

    # -- cluster-wide limits and pauses -------------------------------------------------

    async def set_limits(
        self,
        job_type: str,
        *,
        concurrency: int | None = None,
        per_user: int | None = None,
        rate: str | Rate | None = None,
        fair: bool | None = None,
    ) -> None:
        """Override a type's cluster-wide limits (those given; the others stay): jobs running
        at once (0: none start), per `user_id`, and starts per period (`"60/1m"`); `fair=False`
        claims it in strict FIFO order. Every worker obeys at its next claim."""
        for name, value in (("concurrency", concurrency), ("per_user", per_user)):
            if value is not None and (isinstance(value, bool) or value < 0):
                raise ConfigurationError(f"{name} must be a whole number, 0 or more: {value!r}")
        limits = TypeLimits(
            concurrency=concurrency,
            per_user=per_user,
            rate=Rate.parse(rate) if rate is not None else None,
        )
        await self.backend.limits_set(job_type, limits, fair=fair)
        self._wake_workers()

    async def clear_limits(self, job_type: str) -> None:
        """Drop a type's overrides: its handlers' defaults apply again."""
        await self.backend.limits_clear(job_type)
        self._wake_workers()

    async def limits(self) -> list[LimitState]:
        """Every type with limits or a pause: configured, default and effective values, and
        what runs now."""
        return await self.backend.limits_list()

    async def pause(
        self, *types: str, queues: Sequence[str] = (), reason: str | None = None
    ) -> None:
        """Pause job types and queues cluster-wide, at once: their jobs stay pending."""
        await self.backend.pause(types=types, queues=queues, reason=reason)

    async def resume(self, *types: str, queues: Sequence[str] = ()) -> None:
        """Resume job types (a pause by hand or from back-pressure) and queues."""
        await self.backend.resume(types=types, queues=queues)
        self._wake_workers()

    async def paused_queues(self) -> dict[str, str | None]:
        return await self.backend.paused_queues()

    async def pending_reasons(self, job: Job) -> list[str]:
        """Why a pending job waits, as operators read it (`jobs show`, the dashboard): a run
        time to come, a pause of its type or queue, a limit that is full, a budget its user
        reached. Empty when it waits only for a free worker."""
        if job.status != "pending":
            return []
        now = dt.datetime.now(dt.UTC)
        reasons = []
        if job.run_at is not None and job.run_at > now:
            reasons.append(f"runs at {job.run_at.astimezone(dt.UTC).isoformat()}")
        for state in await self.limits():
            if state.type != job.type:
                continue
            if state.paused_now(now):
                reasons.append(f"type {job.type} is {pause_text(state, now)}")
            limit = state.effective.concurrency
            if limit is not None and state.running >= limit:
                reasons.append(f"type {job.type} runs {state.running} of {limit} at once")
        queues = await self.paused_queues()
        if job.queue in queues:
            reason = queues[job.queue]
            reasons.append(f"queue {job.queue} is paused" + (f" ({reason})" if reason else ""))
        if job.user_id is not None:
            for hold in await self.budget_holds(job.user_id):
                if hold.types is None or job.type in hold.types:
                    reasons.append(hold.reason)
        return reasons

    # -- usage and budgets ---------------------------------------------------------------

    async def set_budget(
        self,
        *,
        user_id: str | None,
        unit: str,
        amount: float,
        period: Period = "daily",
        types: Sequence[str] | None = None,
    ) -> None:
        """At most `amount` of `unit` per UTC day or calendar month for `user_id` (None: the
        default for users without one of their own); its user's jobs of `types` (None: every
        type) are held pending once it is reached. 0 holds them all."""
        await self.backend.budget_set(
            Budget(
                user_id=user_id,
                unit=unit,
                period=period,
                amount=float(amount),
                types=tuple(types) if types else None,
            )
        )
        self._wake_workers()

    async def remove_budget(self, *, user_id: str | None, unit: str, period: Period) -> bool:
        """Delete a budget; False when there is none."""
        removed = await self.backend.budget_remove(user_id=user_id, unit=unit, period=period)
        self._wake_workers()
        return removed

    async def budgets(self) -> list[Budget]:
        return await self.backend.budgets_list()

    async def budget_holds(self, user_id: str | None = None) -> list[BudgetHold]:
        """Who budgets hold back now, and why."""
        return await self.backend.budget_holds(user_id=user_id)

    async def usage(self, user_id: str | None = None, *, days: int = 31) -> list[UsageTotal]:
        """Users' totals by UTC day and unit."""
        return await self.backend.usage_totals(user_id=user_id, days=days)

    # -- schedules -----------------------------------------------------------------------

    async def add_schedule(
        self,
        name: str,
        *,
        type: str,
        cron: str | None = None,
        every: str | float | None = None,
        payload: Any = None,
        queue: str = "default",
        priority: int = 0,
        tz: str = "UTC",
        missed: Missed = "once",
    ) -> Schedule:
        """Store a schedule: one job of `type` per tick (`cron="0 3 * * *"`, or `every="10m"`),
        enqueued once however many workers run."""
        schedule = Schedule(
            name=name,
            type=type,
            payload={} if payload is None else payload,
            queue=queue,
            priority=priority,
            cron=cron,
            every=parse_duration(every) if every is not None else None,
            tz=tz,
            missed=missed,
        )
        if not await self.backend.schedule_add(schedule):
            raise ConfigurationError(f"a schedule named {name!r} exists: remove it first")
        self._wake_workers()
        return schedule

    async def remove_schedule(self, name: str) -> bool:
        """Delete a schedule; False when there is none of that name. (A plugin's schedule
        comes back when a worker with that plugin starts: remove it from the plugin.)"""
        return await self.backend.schedule_remove(name)

    async def pause_schedule(self, name: str, *, paused: bool = True) -> bool:
        """Stop (or, `paused=False`, resume) a schedule's ticks; False when there is none of
        that name. A resumed schedule goes on from its next tick."""
        found = await self.backend.schedule_pause(name, paused=paused)
        self._wake_workers()
        return found

    async def schedules(self) -> list[Schedule]:
        """Every schedule, with its next and last run."""
        return await self.backend.schedules_list()
