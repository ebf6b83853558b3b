"""The PostgreSQL backend's management operations: cluster-wide limits and pauses, usage and
budgets, schedules (a mixin of `PostgresBackend`, which provides `_fetch` and `_pool`)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, LiteralString

from .._budgets import Budget, BudgetHold, UsageEntry, UsageTotal
from .._job import NewJob, encode_json
from .._limits import LimitState, TypeLimits, limit_state, set_params
from .._schedules import Schedule, Tick, schedule_from_row
from ._pool import Connection, Pool


class Controls:
    _pool: Pool
    _queries: dict[str, LiteralString]

    # Provided by PostgresBackend.
    async def _fetch(self, name: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def _insert_keyed(self, conn: Any, params: dict[str, Any]) -> int:
        raise NotImplementedError

    # -- cluster-wide limits and pauses --------------------------------------------------

    async def limits_declare(self, defaults: Mapping[str, TypeLimits]) -> None:
        declared = {t: lim for t, lim in defaults.items() if lim.any}
        rates = [lim.rate for lim in declared.values()]
        await self._fetch(
            "limits_declare",
            {
                "types": list(declared),
                "concurrency": [lim.concurrency for lim in declared.values()],
                "per_user": [lim.per_user for lim in declared.values()],
                "rate_count": [r.count if r else None for r in rates],
                "rate_seconds": [r.seconds if r else None for r in rates],
                "plain": [t for t, lim in defaults.items() if not lim.any],
            },
        )

    async def limits_set(
        self, job_type: str, limits: TypeLimits, *, fair: bool | None = None
    ) -> None:
        await self._fetch("limits_set", set_params(job_type, limits, fair))

    async def limits_clear(self, job_type: str) -> None:
        await self._fetch("limits_clear", {"type": job_type})
        await self._fetch("limits_forget_empty", {"type": job_type})

    async def limits_list(self) -> list[LimitState]:
        return [limit_state(row) for row in await self._fetch("limits_list")]

    async def pause(
        self, *, types: Sequence[str] = (), queues: Sequence[str] = (), reason: str | None = None
    ) -> None:
        if types:
            await self._fetch("type_pause", {"types": list(types), "reason": reason})
        if queues:
            await self._fetch("queue_pause", {"queues": list(queues), "reason": reason})

    async def resume(self, *, types: Sequence[str] = (), queues: Sequence[str] = ()) -> None:
        if types:
            await self._fetch("type_resume", {"types": list(types)})
        if queues:
            await self._fetch("queue_resume", {"queues": list(queues)})

    async def paused_queues(self) -> dict[str, str | None]:
        return {r["queue"]: r["reason"] for r in await self._fetch("queue_pauses_list")}

    # -- usage and budgets ---------------------------------------------------------------

    async def usage_add(self, entries: Sequence[UsageEntry]) -> None:
        rows = [
            {"job_id": e.job_id, "user_id": e.user_id, "unit": unit, "amount": amount}
            for e in entries
            for unit, amount in e.amounts.items()
        ]
        if rows:
            await self._fetch("usage_add", {"entries": json.dumps(rows)})

    async def usage_totals(self, *, user_id: str | None = None, days: int = 31) -> list[UsageTotal]:
        rows = await self._fetch("usage_totals", {"user_id": user_id, "days": days})
        return [UsageTotal(**r) for r in rows]

    async def budget_set(self, budget: Budget) -> None:
        await self._fetch(
            "budget_set",
            {
                "user_id": budget.user_id or "",
                "unit": budget.unit,
                "period": budget.period,
                "amount": budget.amount,
                "types": list(budget.types) if budget.types is not None else None,
            },
        )

    async def budget_remove(self, *, user_id: str | None, unit: str, period: str) -> bool:
        params = {"user_id": user_id or "", "unit": unit, "period": period}
        return bool(await self._fetch("budget_remove", params))

    async def budgets_list(self) -> list[Budget]:
        return [
            Budget(
                user_id=r["user_id"] or None,
                unit=r["unit"],
                period=r["period"],
                amount=r["amount"],
                types=tuple(r["types"]) if r["types"] is not None else None,
                spent=float(r["spent"]) if r["spent"] is not None else None,
            )
            for r in await self._fetch("budgets_list")
        ]

    async def budget_holds(self, *, user_id: str | None = None) -> list[BudgetHold]:
        return [
            BudgetHold(
                user_id=r["user_id"],
                unit=r["unit"],
                period=r["period"],
                amount=r["amount"],
                spent=float(r["spent"]),
                types=tuple(r["types"]) if r["types"] is not None else None,
                by_default=r["by_default"],
            )
            for r in await self._fetch("budget_holds", {"user_id": user_id})
        ]

    # -- schedules -----------------------------------------------------------------------

    async def schedules_declare(self, origin: str, schedules: Sequence[Schedule]) -> None:
        rows = [
            {
                "name": s.name,
                "type": s.type,
                "payload": s.payload,
                "queue": s.queue,
                "priority": s.priority,
                "cron": s.cron,
                "every": s.every,
                "tz": s.tz,
                "missed": s.missed,
            }
            for s in schedules
        ]
        await self._fetch("schedules_declare", {"origin": origin, "schedules": json.dumps(rows)})
        await self._fetch(
            "schedules_forget", {"origin": origin, "names": [s.name for s in schedules]}
        )

    async def schedule_add(self, schedule: Schedule) -> bool:
        found = await self._fetch(
            "schedule_add",
            {
                "name": schedule.name,
                "type": schedule.type,
                "payload": encode_json(schedule.payload, what="payload", max_bytes=1 << 20),
                "queue": schedule.queue,
                "priority": schedule.priority,
                "cron": schedule.cron,
                "every": schedule.every,
                "tz": schedule.tz,
                "missed": schedule.missed,
            },
        )
        return bool(found)

    async def schedule_remove(self, name: str) -> bool:
        return bool(await self._fetch("schedule_remove", {"name": name}))

    async def schedule_pause(self, name: str, *, paused: bool) -> bool:
        return bool(await self._fetch("schedule_pause", {"name": name, "paused": paused}))

    async def schedules_list(self) -> list[Schedule]:
        return [schedule_from_row(r) for r in await self._fetch("schedules_list")]

    async def schedules_run(
        self, decide: Callable[[Schedule, dt.datetime], Tick], *, max_payload_bytes: int
    ) -> tuple[int, float | None]:
        async def run(conn: Connection) -> tuple[int, float | None]:
            enqueued = 0
            async with conn.transaction():
                cur = conn.cursor(row_factory=_dict_rows)
                await cur.execute(self._queries["schedules_due"])
                for row in await cur.fetchall():
                    schedule = schedule_from_row(row)
                    tick = decide(schedule, row["db_now"])
                    job_id = None
                    if tick.enqueue is not None:
                        job = NewJob(
                            type=schedule.type,
                            payload=schedule.payload,
                            queue=schedule.queue,
                            priority=schedule.priority,
                            key=schedule.key(tick.enqueue),
                        )
                        job_id = await self._insert_keyed(
                            conn, job.insert_values(max_payload_bytes)
                        )
                        enqueued += 1
                    await conn.execute(
                        self._queries["schedule_ticked"],
                        {
                            "name": schedule.name,
                            "next_run_at": tick.next_run_at,
                            "ran_at": tick.enqueue,
                            "job_id": job_id,
                        },
                    )
                cur = await conn.execute(self._queries["schedules_next"])
                [(seconds,)] = await cur.fetchall()
            return enqueued, None if seconds is None else float(seconds)

        return await self._pool.run(run)


def _dict_rows(cursor: Any) -> Callable[[Sequence[Any]], dict[str, Any]]:
    from psycopg.rows import dict_row

    return dict_row(cursor)
