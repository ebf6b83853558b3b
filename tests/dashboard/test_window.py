"""The finished-jobs window: which minutes each read asks for, and what it keeps."""

from __future__ import annotations

from jobrunner import JobStatus
from jobrunner._browse import FinishedCount, Overview
from jobrunner.dashboard._window import FIRST, MINUTES, ROW_BUDGET, SETTLE, FinishedWindow

T0 = 1_800_000_000.0  # a minute boundary (divisible by 60)
HOUR_START = T0 - 60 * (MINUTES - 1)
DONE, FAILED = JobStatus.COMPLETED, JobStatus.FAILED


class Table:
    """Finished jobs by minute, answering reads the way the backend does: everything since
    `since`, and the newest whole older minutes holding about ROW_BUDGET jobs (one at least)."""

    def __init__(self, per_minute: dict[float, int]) -> None:
        self.per_minute = per_minute

    def read(self, window: FinishedWindow, now: float):
        since, older = plan = window.plan(now)
        minutes = [m for m in self.per_minute if m >= since]
        older_from = None
        if older is not None:
            older_from, seen = older[1] - 60, 0
            while older_from >= older[0]:
                seen += self.per_minute.get(older_from, 0)
                if seen > ROW_BUDGET and older_from < older[1] - 60:
                    older_from += 60
                    break
                older_from -= 60
            older_from = max(older_from, older[0])
            minutes += [m for m in self.per_minute if older_from <= m < older[1]]
        rows = tuple(
            FinishedCount(minute=m, type="t", queue="q", status=DONE, count=self.per_minute[m])
            for m in minutes
        )
        window.update(Overview(now=now, finished=rows, older_from=older_from), plan)
        return plan


def test_a_fresh_window_reads_the_newest_minutes_first_then_the_rest_of_the_hour():
    table = Table({T0 - 600: 7, T0: 2})
    window = FinishedWindow()
    first = table.read(window, T0 + 5)
    assert first == (T0 - 60 * (FIRST - 1), None)
    assert window.filled(T0 + 5) == FIRST
    second = table.read(window, T0 + 6)
    assert second == (T0 - 60, (HOUR_START, T0 - 60 * (FIRST - 1)))
    # Few jobs in the hour: all of it in one read.
    assert window.filled(T0 + 6) == MINUTES
    assert window.totals() == {("t", "q", DONE): 9}
    assert table.read(window, T0 + 7) == (T0 - 60, None)  # complete: unsettled minutes only


def test_a_busy_hour_fills_in_by_about_the_row_budget_per_read():
    per_minute = ROW_BUDGET // 4
    table = Table({T0 - 60 * n: per_minute for n in range(MINUTES)})
    window = FinishedWindow()
    table.read(window, T0 + 1)
    reads, filled = 1, window.filled(T0 + 1)
    while filled < MINUTES:
        table.read(window, T0 + 1)
        assert 1 <= window.filled(T0 + 1) - filled <= 4  # minutes of older jobs per read
        reads, filled = reads + 1, window.filled(T0 + 1)
    assert reads == 1 + (MINUTES - FIRST + 3) // 4
    assert window.totals() == {("t", "q", DONE): per_minute * MINUTES}


def test_a_minute_busier_than_the_budget_is_read_whole():
    table = Table({T0 - 600: ROW_BUDGET * 3, T0 - 660: 1})
    window = FinishedWindow()
    for _ in range(80):
        table.read(window, T0 + 1)
    assert window.filled(T0 + 1) == MINUTES
    assert window.totals() == {("t", "q", DONE): ROW_BUDGET * 3 + 1}


def test_only_unsettled_minutes_are_read_again():
    table = Table({T0 - 60: 5})
    window = FinishedWindow()
    table.read(window, T0 + 2)
    table.read(window, T0 + 3)  # the rest of the hour
    table.per_minute[T0 - 60] = 6  # one more committed late in the minute before
    table.read(window, T0 + 4)
    assert window.totals() == {("t", "q", DONE): 6}
    table.read(window, T0 + SETTLE + 1)  # the minute before is over for SETTLE seconds now
    assert window.plan(T0 + SETTLE + 2) == (T0, None)


def test_minutes_older_than_the_hour_drop_out():
    table = Table({HOUR_START: 4, T0: 1})
    window = FinishedWindow()
    table.read(window, T0 + 1)
    table.read(window, T0 + 2)
    later = T0 + 120 + SETTLE
    table.read(window, later)
    assert window.totals() == {("t", "q", DONE): 1}
    minutes = window.minutes(later)
    assert len(minutes) == MINUTES and minutes[-1][0] == T0 + 120
    assert dict(minutes)[T0] == {DONE: 1}


def test_minutes_sum_statuses_across_types_and_queues():
    window = FinishedWindow()
    plan = window.plan(T0 + 1)
    rows = (
        FinishedCount(minute=T0, type="a", queue="q", status=DONE, count=2),
        FinishedCount(minute=T0, type="b", queue="r", status=DONE, count=3),
        FinishedCount(minute=T0, type="b", queue="r", status=FAILED, count=1),
    )
    window.update(Overview(now=T0 + 1, finished=rows), plan)
    assert dict(window.minutes(T0 + 1))[T0] == {DONE: 5, FAILED: 1}


def test_reset_reads_the_hour_again():
    table = Table({T0: 1})
    window = FinishedWindow()
    table.read(window, T0 + 1)
    window.reset()
    assert window.plan(T0 + 2) == (T0 - 60 * (FIRST - 1), None)
    assert window.totals() == {}
