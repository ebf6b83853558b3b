"""The schedule policy (pure): when ticks fall, what a due schedule enqueues, what is refused."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest

from jobrunner import ConfigurationError, Plugin, Schedule
from jobrunner._budgets import Budget, check_amounts
from jobrunner._schedules import LATE, decide

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_every_keeps_its_rhythm_from_the_last_tick():
    s = Schedule(name="s", type="t", every=60, next_run_at=at("2026-01-01 00:00:00"))
    assert s.tick_after(at("2026-01-01 00:00:30")) == at("2026-01-01 00:01:00")
    assert s.tick_after(at("2026-01-01 00:05:10")) == at("2026-01-01 00:06:00")
    fresh = Schedule(name="s", type="t", every=10)
    assert fresh.tick_after(at("2026-01-01 00:00:03")) == at("2026-01-01 00:00:13")


def test_cron_ticks_in_its_time_zone_across_daylight_saving():
    s = Schedule(name="s", type="t", cron="30 2 * * *", tz="Europe/Berlin")
    # 2:30 local is 1:30 UTC in winter and 0:30 UTC in summer.
    assert s.tick_after(at("2026-01-10 12:00:00")) == at("2026-01-11 01:30:00")
    assert s.tick_after(at("2026-07-10 12:00:00")) == at("2026-07-11 00:30:00")
    # On 29 March 2026 the clocks jump from 2:00 to 3:00: cronsim runs the skipped 2:30 at 3:00.
    assert s.tick_after(at("2026-03-28 12:00:00")) == at("2026-03-29 01:00:00")
    utc = Schedule(name="u", type="t", cron="0 3 * * *")
    assert utc.tick_after(at("2026-01-10 03:00:00")) == at("2026-01-11 03:00:00")


def test_a_due_tick_is_enqueued_and_the_next_one_is_ahead():
    s = Schedule(name="s", type="t", every=60, next_run_at=at("2026-01-01 00:01:00"))
    tick = decide(s, at("2026-01-01 00:01:00.002"))
    assert tick.enqueue == at("2026-01-01 00:01:00")
    assert tick.next_run_at == at("2026-01-01 00:02:00")
    assert s.key(tick.enqueue) == "schedule:s:2026-01-01T00:01:00+00:00"


def test_a_new_schedule_waits_for_its_first_tick():
    tick = decide(Schedule(name="s", type="t", cron="0 * * * *"), at("2026-01-01 10:20:00"))
    assert tick.enqueue is None and tick.next_run_at == at("2026-01-01 11:00:00")


@pytest.mark.parametrize(("missed", "runs"), [("once", True), ("skip", False)])
def test_ticks_missed_while_no_worker_ran(missed, runs):
    s = Schedule(name="s", type="t", every=60, missed=missed, next_run_at=at("2026-01-01 00:00:00"))
    now = at("2026-01-01 00:00:00") + dt.timedelta(seconds=LATE + 600)
    tick = decide(s, now)
    assert (tick.enqueue is not None) is runs  # one job at most, not eleven
    assert now < tick.next_run_at <= now + dt.timedelta(seconds=60)
    on_time = decide(s, at("2026-01-01 00:00:30"))  # late, but not missed: runs either way
    assert on_time.enqueue == at("2026-01-01 00:00:00")


def test_ticks_a_busy_worker_reaches_late_each_still_get_their_job():
    """A 1 s schedule whose scheduler comes round 2.5 s late (a loaded or restarting worker):
    not missed, so the ticks in between follow one round after the other, none left out."""
    s = Schedule(name="s", type="t", every=1, next_run_at=at("2026-01-01 00:00:00"))
    now = at("2026-01-01 00:00:02.500")
    enqueued = []
    while s.next_run_at <= now:
        tick = decide(s, now)
        enqueued.append(tick.enqueue)
        s = attrs.evolve(s, next_run_at=tick.next_run_at)
    assert enqueued == [at(f"2026-01-01 00:00:0{n}") for n in range(3)]
    assert s.next_run_at == at("2026-01-01 00:00:03")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cron": "0 3 * * *", "every": 60}, "exactly one of cron or every"),
        ({}, "exactly one of cron or every"),
        ({"cron": "61 * * * *"}, "not a cron expression"),
        ({"every": 0}, "every must be positive"),
        ({"every": 60, "tz": "Mars/Olympus"}, "unknown time zone"),
        ({"every": 60, "missed": "twice"}, "missed is once or skip"),
    ],
)
def test_bad_schedules_are_refused_with_the_reason(fields, message):
    with pytest.raises(ConfigurationError, match=message):
        Schedule(name="s", type="t", **fields)


def test_a_plugin_declares_schedules_once_each():
    plugin = Plugin("p")
    s = plugin.schedule("nightly", cron="0 3 * * *", type="p.report", payload={"x": 1})
    assert plugin.schedules == {"nightly": s} and s.payload == {"x": 1}
    assert plugin.schedule("often", every="10m", type="p.x").every == 600
    with pytest.raises(ConfigurationError, match="declared twice"):
        plugin.schedule("nightly", every="1h", type="p.report")


def test_usage_amounts_and_budgets_are_checked():
    assert check_amounts({"tokens": 3, "cost_usd": 0.25}) == {"tokens": 3.0, "cost_usd": 0.25}
    for bad in ({"tokens": "3"}, {"tokens": -1}, {"tokens": float("nan")}, {"tokens": True}):
        with pytest.raises(ConfigurationError):
            check_amounts(bad)
    with pytest.raises(ConfigurationError, match="daily or monthly"):
        Budget(user_id="u", unit="tokens", period="weekly", amount=1)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="0 or more"):
        Budget(user_id="u", unit="tokens", period="daily", amount=-1)
