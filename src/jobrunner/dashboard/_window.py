"""The last hour of finished jobs, by minute, kept up to date at a bounded cost per read.

Counting every job finished in the last hour once a second would read, every second, as many
rows as the cluster finishes in an hour. A minute's counts stop changing once it is over (and
the last batch of outcomes stamped within it has committed), so each read asks only for the
minutes not settled yet (the current one and, for `SETTLE` seconds, the one before) and, until
the hour is complete, older minutes, newest first: as many whole minutes as hold about
`ROW_BUDGET` jobs (the backend stops there, at least one minute further). A fresh dashboard
starts with the newest `FIRST` minutes; a quiet cluster's hour is complete after its second
read, a very busy one fills in over a few dozen reads, and no read counts much more than
`ROW_BUDGET` finished jobs beyond the unsettled minutes.

A job retried or deleted after its minute settled still counts in that minute: these are counts
of what happened, like the chart they feed.
"""

from __future__ import annotations

from collections import defaultdict

import attrs

from .._browse import Overview
from .._status import JobStatus

MINUTES = 60
SETTLE = 15.0  # seconds after a minute's end before its counts are final
FIRST = 3  # minutes a fresh window reads first
ROW_BUDGET = 20_000  # finished jobs one read of older minutes counts, about

Key = tuple[str, str, JobStatus]  # type, queue, status
Plan = tuple[float, tuple[float, float] | None]  # since, older [from, to)


def minute_of(t: float) -> float:
    return float(int(t // 60) * 60)


@attrs.define
class FinishedWindow:
    """Finished jobs per minute for the last `MINUTES` minutes (the current one included)."""

    _minutes: dict[float, dict[Key, int]] = attrs.field(factory=dict)
    _settled: set[float] = attrs.field(factory=set)
    _oldest: float | None = None  # the oldest minute loaded so far

    def reset(self) -> None:
        """Forget everything: the hour is loaded again, newest minutes first."""
        self._minutes.clear()
        self._settled.clear()
        self._oldest = None

    def plan(self, now: float) -> Plan:
        """What the next read counts: from the first minute not settled yet (the newest
        `FIRST` minutes when nothing is loaded), and the older minutes still missing."""
        if self._oldest is None:
            return minute_of(now) - 60 * (FIRST - 1), None
        first = minute_of(now) - 60 * (MINUTES - 1)
        unsettled = [m for m in self._minutes if m not in self._settled]
        since = min(unsettled) if unsettled else max(self._minutes, default=minute_of(now)) + 60
        older = (first, self._oldest) if self._oldest > first else None
        return since, older

    def update(self, overview: Overview, plan: Plan) -> None:
        """Take the minutes `plan` covered, as `overview` counted them."""
        counted: dict[float, dict[Key, int]] = defaultdict(dict)
        for row in overview.finished:
            counted[row.minute][(row.type, row.queue, row.status)] = row.count
        current = minute_of(overview.now)
        first = current - 60 * (MINUTES - 1)
        since, older = plan
        covered = [(since, current + 60)]
        if older is not None and overview.older_from is not None:
            covered.append((overview.older_from, older[1]))
        for low, high in covered:
            minute = max(minute_of(low), first)
            while minute < high and minute <= current:
                self._minutes[minute] = counted.get(minute, {})
                if minute + 60 + SETTLE <= overview.now:
                    self._settled.add(minute)
                minute += 60
            if self._oldest is None or low < self._oldest:
                self._oldest = max(minute_of(low), first)
        for old in [m for m in self._minutes if m < first]:
            del self._minutes[old]
            self._settled.discard(old)

    def filled(self, now: float) -> int:
        """How many of the window's minutes are loaded (MINUTES once the hour is complete)."""
        first = minute_of(now) - 60 * (MINUTES - 1)
        return sum(1 for m in self._minutes if m >= first)

    def minutes(self, now: float) -> list[tuple[float, dict[JobStatus, int]]]:
        """Every minute of the window ending at `now`, oldest first, with its counts by status."""
        current = minute_of(now)
        out = []
        for n in range(MINUTES - 1, -1, -1):
            minute = current - 60 * n
            by_status: dict[JobStatus, int] = defaultdict(int)
            for (_, _, status), count in self._minutes.get(minute, {}).items():
                by_status[status] += count
            out.append((minute, dict(by_status)))
        return out

    def totals(self) -> dict[Key, int]:
        """Finished jobs of the whole window, by type, queue and status."""
        total: dict[Key, int] = defaultdict(int)
        for counts in self._minutes.values():
            for key, count in counts.items():
                total[key] += count
        return dict(total)
