"""The SQLite backend's management operations: cluster-wide limits and pauses, usage and
budgets, schedules (a mixin of `SQLiteBackend`, which provides `_exec`, `_write`, `_db`)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from .._backend import Wakeup
from .._budgets import Budget, BudgetHold, UsageEntry, UsageTotal
from .._job import NewJob, encode_json
from .._limits import LimitState, TypeLimits
from .._schedules import Schedule, Tick, schedule_from_row
from . import _limits as limits
from ._rows import rows, utc
from ._thread import ThreadedConnection
from ._wakeup import deliver

T = TypeVar("T")


class Controls:
    _db: ThreadedConnection
    _key: str

    # Provided by SQLiteBackend.
    def _exec(self, conn: sqlite3.Connection, block: str, /, **params: Any) -> sqlite3.Cursor:
        raise NotImplementedError

    async def _write(self, fn: Callable[[sqlite3.Connection, float], T]) -> T:
        raise NotImplementedError

    def _insert(
        self, conn: sqlite3.Connection, params: list[dict[str, Any]], now: float
    ) -> list[int]:
        raise NotImplementedError

    # -- cluster-wide limits and pauses --------------------------------------------------

    async def limits_declare(self, defaults: Mapping[str, TypeLimits]) -> None:
        await self._write(lambda conn, now: limits.declare(conn, self._exec, defaults, now))

    async def limits_set(
        self, job_type: str, limits_: TypeLimits, *, fair: bool | None = None
    ) -> None:
        await self._write(
            lambda conn, now: limits.set_limits(conn, self._exec, job_type, limits_, fair, now)
        )

    async def limits_clear(self, job_type: str) -> None:
        def clear(conn: sqlite3.Connection, now: float) -> None:
            self._exec(conn, "limits_clear", type=job_type, now=now)
            self._exec(conn, "limits_forget_empty", type=job_type)

        await self._write(clear)
        deliver(self._key, Wakeup())

    async def limits_list(self) -> list[LimitState]:
        return await self._db.run(lambda conn: limits.listed(conn, self._exec))

    async def pause(
        self, *, types: Sequence[str] = (), queues: Sequence[str] = (), reason: str | None = None
    ) -> None:
        def pause(conn: sqlite3.Connection, now: float) -> None:
            for job_type in types:
                self._exec(conn, "type_pause", type=job_type, reason=reason, now=now)
            for queue in queues:
                self._exec(conn, "queue_pause", queue=queue, reason=reason, now=now)

        await self._write(pause)

    async def resume(self, *, types: Sequence[str] = (), queues: Sequence[str] = ()) -> None:
        def resume(conn: sqlite3.Connection, now: float) -> None:
            self._exec(conn, "type_resume", types=json.dumps(list(types)), now=now)
            self._exec(conn, "queue_resume", queues=json.dumps(list(queues)))
            self._exec(conn, "wakeup_jobs")

        await self._write(resume)
        deliver(self._key, Wakeup())

    async def paused_queues(self) -> dict[str, str | None]:
        return await self._db.run(lambda conn: limits.paused_queues(conn, self._exec))

    # -- usage and budgets ---------------------------------------------------------------

    async def usage_add(self, entries: Sequence[UsageEntry]) -> None:
        if not entries:
            return

        def add(conn: sqlite3.Connection, now: float) -> None:
            day = dt.datetime.fromtimestamp(now, dt.UTC).date().isoformat()
            for entry in entries:
                [(text,)] = self._exec(conn, "job_usage_get", id=entry.job_id).fetchall() or [
                    (None,)
                ]
                usage = json.loads(text) if text else {}
                for unit, amount in entry.amounts.items():
                    usage[unit] = usage.get(unit, 0.0) + amount
                    if entry.user_id is not None:
                        self._exec(
                            conn,
                            "usage_add",
                            user_id=entry.user_id,
                            day=day,
                            unit=unit,
                            amount=amount,
                        )
                self._exec(conn, "job_usage_set", id=entry.job_id, usage=json.dumps(usage))

        await self._write(add)

    async def usage_totals(self, *, user_id: str | None = None, days: int = 31) -> list[UsageTotal]:
        def read(conn: sqlite3.Connection) -> list[UsageTotal]:
            today = dt.datetime.now(dt.UTC).date()
            since = (today - dt.timedelta(days=days - 1)).isoformat()
            found = rows(self._exec(conn, "usage_totals", user_id=user_id, since=since))
            return [UsageTotal(**r) for r in found]

        return await self._db.run(read)

    async def budget_set(self, budget: Budget) -> None:
        types = json.dumps(list(budget.types)) if budget.types is not None else None
        await self._write(
            lambda conn, now: self._exec(
                conn,
                "budget_set",
                user_id=budget.user_id or "",
                unit=budget.unit,
                period=budget.period,
                amount=budget.amount,
                types=types,
                now=now,
            )
        )
        deliver(self._key, Wakeup())

    async def budget_remove(self, *, user_id: str | None, unit: str, period: str) -> bool:
        found = await self._write(
            lambda conn, _: self._exec(
                conn, "budget_remove", user_id=user_id or "", unit=unit, period=period
            ).fetchall()
        )
        deliver(self._key, Wakeup())
        return bool(found)

    async def budgets_list(self) -> list[Budget]:
        found = await self._db.run(lambda conn: rows(self._exec(conn, "budgets_list")))
        return [
            Budget(
                user_id=r["user_id"] or None,
                unit=r["unit"],
                period=r["period"],
                amount=r["amount"],
                types=tuple(json.loads(r["types"])) if r["types"] is not None else None,
                spent=float(r["spent"]) if r["spent"] is not None else None,
            )
            for r in found
        ]

    async def budget_holds(self, *, user_id: str | None = None) -> list[BudgetHold]:
        found = await self._db.run(
            lambda conn: rows(self._exec(conn, "budget_holds", user_id=user_id))
        )
        return [
            BudgetHold(
                user_id=r["user_id"],
                unit=r["unit"],
                period=r["period"],
                amount=r["amount"],
                spent=float(r["spent"]),
                types=tuple(json.loads(r["types"])) if r["types"] is not None else None,
                by_default=bool(r["by_default"]),
            )
            for r in found
        ]

    # -- schedules -----------------------------------------------------------------------

    async def schedules_declare(self, origin: str, schedules: Sequence[Schedule]) -> None:
        def declare(conn: sqlite3.Connection, now: float) -> None:
            for s in schedules:
                self._exec(conn, "schedule_declare", **_schedule_params(s), origin=origin, now=now)
            self._exec(
                conn,
                "schedules_forget",
                origin=origin,
                names=json.dumps([s.name for s in schedules]),
            )

        await self._write(declare)

    async def schedule_add(self, schedule: Schedule) -> bool:
        found = await self._write(
            lambda conn, _: self._exec(
                conn, "schedule_add", **_schedule_params(schedule)
            ).fetchall()
        )
        if found:
            deliver(self._key, Wakeup(schedules=True))
        return bool(found)

    async def schedule_remove(self, name: str) -> bool:
        return bool(
            await self._write(
                lambda conn, _: self._exec(conn, "schedule_remove", name=name).fetchall()
            )
        )

    async def schedule_pause(self, name: str, *, paused: bool) -> bool:
        found = await self._write(
            lambda conn, now: self._exec(
                conn, "schedule_pause", name=name, paused=paused, now=now
            ).fetchall()
        )
        if found:
            deliver(self._key, Wakeup(schedules=True))
        return bool(found)

    async def schedules_list(self) -> list[Schedule]:
        found = await self._db.run(lambda conn: rows(self._exec(conn, "schedules_list")))
        return [schedule_from_row(_schedule_row(r)) for r in found]

    async def schedules_run(
        self, decide: Callable[[Schedule, dt.datetime], Tick], *, max_payload_bytes: int
    ) -> tuple[int, float | None]:
        def run(conn: sqlite3.Connection, now: float) -> tuple[int, float | None]:
            enqueued = 0
            moment = utc(now)
            for row in rows(self._exec(conn, "schedules_due", now=now)):
                schedule = schedule_from_row(_schedule_row(row))
                tick = decide(schedule, moment)
                job_id = None
                if tick.enqueue is not None:
                    job = NewJob(
                        type=schedule.type,
                        payload=schedule.payload,
                        queue=schedule.queue,
                        priority=schedule.priority,
                        key=schedule.key(tick.enqueue),
                    )
                    [job_id] = self._insert(conn, [_insert_params(job, max_payload_bytes)], now)
                    enqueued += 1
                self._exec(
                    conn,
                    "schedule_ticked",
                    name=schedule.name,
                    next_run_at=tick.next_run_at.timestamp(),
                    ran_at=tick.enqueue.timestamp() if tick.enqueue else None,
                    job_id=job_id,
                )
            [(seconds,)] = self._exec(conn, "schedules_next", now=now).fetchall()
            return enqueued, seconds

        found = await self._write(run)
        if found[0]:
            deliver(self._key, Wakeup())
        return found


def _insert_params(job: NewJob, max_payload_bytes: int) -> dict[str, Any]:
    from ._rows import insert_params

    return insert_params(job, max_payload_bytes)


def _schedule_params(s: Schedule) -> dict[str, Any]:
    return {
        "name": s.name,
        "type": s.type,
        "payload": encode_json(s.payload, what="payload", max_bytes=1 << 20),
        "queue": s.queue,
        "priority": s.priority,
        "cron": s.cron,
        "every": s.every,
        "tz": s.tz,
        "missed": s.missed,
    }


def _schedule_row(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["payload"] = json.loads(row["payload"])
    for name in ("next_run_at", "last_run_at"):
        out[name] = utc(row[name]) if row[name] is not None else None
    return out
