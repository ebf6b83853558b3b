"""Periodic jobs: a schedule enqueues one job per tick, however many workers run.

Schedules live in the database (declared by plugins, or added with `jobrunner schedules add`).
Every worker runs a `Scheduler`; one of them takes each due schedule under a row lock, in one
transaction that enqueues the tick's job (its idempotency key names the tick) and moves the
schedule's next tick on, so a tick is enqueued once, and not again after a crash or a
restart. Times come from the database's clock, never a worker's. A tick missed while no
worker ran is enqueued once when one starts (`missed="once"`, the default) or skipped
(`missed="skip"`). Cron expressions are read by cronsim, in the schedule's time zone.
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from collections.abc import Mapping
from typing import Any, Literal

import attrs
from cronsim import CronSim, CronSimError

from ._errors import ConfigurationError
from ._job import DEFAULT_QUEUE

Missed = Literal["once", "skip"]
#: A tick this late is "missed" (a worker was not running), for `missed="skip"`.
LATE = 60.0


def _zone(name: str) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"unknown time zone {name!r} (use e.g. UTC, Asia/Shanghai)"
        ) from None


@attrs.frozen(kw_only=True)
class Schedule:
    """Enqueue a job of `type` every `every` seconds, or at each time `cron` names."""

    name: str
    type: str
    payload: Any = attrs.field(factory=dict)
    queue: str = DEFAULT_QUEUE
    priority: int = 0
    cron: str | None = None
    every: float | None = None
    tz: str = "UTC"
    missed: Missed = "once"
    paused: bool = False
    origin: str = "cli"
    next_run_at: dt.datetime | None = None
    last_run_at: dt.datetime | None = None
    last_job_id: int | None = None

    def __attrs_post_init__(self) -> None:
        if not self.name:
            raise ConfigurationError("a schedule needs a name")
        if not self.type:
            raise ConfigurationError(f"schedule {self.name!r} needs a job type")
        if (self.cron is None) == (self.every is None):
            raise ConfigurationError(f"schedule {self.name!r}: give exactly one of cron or every")
        if self.every is not None and not (math.isfinite(self.every) and self.every > 0):
            raise ConfigurationError(f"schedule {self.name!r}: every must be positive")
        if self.cron is not None:
            try:
                CronSim(self.cron, dt.datetime.now(dt.UTC))
            except CronSimError as exc:
                raise ConfigurationError(
                    f"schedule {self.name!r}: not a cron expression: {self.cron!r} ({exc})"
                ) from None
        if self.missed not in ("once", "skip"):
            raise ConfigurationError(f"schedule {self.name!r}: missed is once or skip")
        _zone(self.tz)

    @property
    def when(self) -> str:
        """How it repeats, as the CLI shows it."""
        if self.cron is not None:
            return f"cron {self.cron}" + (f" ({self.tz})" if self.tz != "UTC" else "")
        assert self.every is not None
        return f"every {self.every:g}s"

    def tick_after(self, moment: dt.datetime) -> dt.datetime:
        """The first tick strictly after `moment` (ticks of `every` are counted from the
        schedule's last tick, so they keep their rhythm)."""
        if self.every is not None:
            anchor = self.next_run_at or moment
            if anchor > moment:
                return anchor
            steps = math.floor((moment - anchor).total_seconds() / self.every) + 1
            return anchor + dt.timedelta(seconds=steps * self.every)
        assert self.cron is not None
        local = moment.astimezone(_zone(self.tz))
        return next(CronSim(self.cron, local)).astimezone(dt.UTC)

    def next_due(self, now: dt.datetime) -> dt.datetime | None:
        """When its next tick is due (None while paused): as a worker stored it, or, for a
        schedule no worker has looked at yet, the first tick after `now`."""
        if self.paused:
            return None
        return self.next_run_at or self.tick_after(now)

    def key(self, tick: dt.datetime) -> str:
        """The idempotency key of the tick's job."""
        return f"schedule:{self.name}:{tick.astimezone(dt.UTC).isoformat()}"


@attrs.frozen(kw_only=True)
class Tick:
    """What one due schedule does now: maybe enqueue its tick's job, and its next tick."""

    name: str
    enqueue: dt.datetime | None  # the tick whose job to enqueue, None: none now
    next_run_at: dt.datetime


def decide(schedule: Schedule, now: dt.datetime) -> Tick:
    """The policy for a schedule that is due (or new): pure, so tests call it directly."""
    if schedule.next_run_at is None:  # new: its first tick is the next one
        return Tick(name=schedule.name, enqueue=None, next_run_at=schedule.tick_after(now))
    tick = schedule.next_run_at
    late = (now - tick).total_seconds() > LATE
    # Ticks missed while no worker ran: one job (for the first of them), or none with "skip".
    enqueue = None if (late and schedule.missed == "skip") else tick
    # A tick only somewhat overdue (a busy or restarting worker) is not missed: the next one
    # follows it, so each tick still gets its job, one round after the other.
    return Tick(
        name=schedule.name,
        enqueue=enqueue,
        next_run_at=schedule.tick_after(now if late else tick),
    )


def schedule_from_row(row: Mapping[str, Any]) -> Schedule:
    """A schedules-table row (times already aware datetimes, payload decoded)."""
    return Schedule(
        name=row["name"],
        type=row["type"],
        payload=row["payload"],
        queue=row["queue"],
        priority=row["priority"],
        cron=row["cron"],
        every=row["every"],
        tz=row["tz"],
        missed=row["missed"],
        paused=bool(row["paused"]),
        origin=row["origin"],
        next_run_at=row["next_run_at"],
        last_run_at=row["last_run_at"],
        last_job_id=row["last_job_id"],
    )
