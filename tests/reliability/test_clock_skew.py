"""Clock skew: one worker's clock runs 10 minutes ahead, another's 10 minutes behind
(libfaketime, per process; PostgreSQL's clock is right). Time that matters comes from the
database, so: no job is rescued early (leases are renewed and judged by the database's
clock), a lease does expire (a skewed worker killed with -9 has its jobs rescued after about
the lease, measured by the database's clock), and a schedule enqueues one job per tick, on
the tick, however wrong the workers' clocks are.
"""

from __future__ import annotations

import datetime as dt
import itertools
import subprocess
import sys
import time

import pytest
from rel_net import db_seconds, faketime_lib, record
from rel_support import jr, migrate, sql, start_worker, wait_until, worker_env

LEASE = 3.0
EVERY = 2.0  # the schedule's interval
LONG = 3  # leases each long job lasts
SKEWS = {"ahead": "+10m", "behind": "-10m"}
ARGS = ("--concurrency", "4", "--poll-interval", "1")


def _skewed(env: dict[str, str], clock: str) -> dict[str, str]:
    return {
        **env,
        "LD_PRELOAD": str(faketime_lib()),
        "FAKETIME": clock,
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


def _ticks(url: str, schema: str) -> list[dt.datetime]:
    rows = sql(
        url,
        f'SELECT unique_key FROM "{schema}".job WHERE unique_key LIKE %s ORDER BY 1',
        ["schedule:tick:%"],
    )
    return sorted(dt.datetime.fromisoformat(row[0].split(":", 2)[2]) for row in rows)


def _held(url: str, schema: str, pid: int) -> list[int]:
    rows = sql(
        url,
        f"SELECT id FROM \"{schema}\".job WHERE status = 'running' AND locked_by LIKE %s",
        [f"%:{pid}:%"],
    )
    return [row[0] for row in rows]


@pytest.mark.parametrize(
    "window",
    [pytest.param(12.0, id="small"), pytest.param(120.0, id="long", marks=pytest.mark.slow)],
)
def test_skewed_clocks_change_nothing_that_matters(cluster, cluster_schema, site, logs, window):
    url = cluster.url()
    env = worker_env(site, url, cluster_schema, CHAOS_LEASE=str(LEASE))
    for clock, shift in (("+10m", 600), ("-10m", -600)):  # the clocks really are off
        seen = _clock_in(_skewed(env, clock)) - time.time()
        assert abs(seen - shift) < 30, (clock, seen)
    migrate(env)
    sql(url, f'CREATE TABLE "{cluster_schema}".side (job_id bigint, attempt int, pid int)')
    added = jr(env, "schedules", "add", "tick", "--every", f"{EVERY:g}s", "--type", "chaos.work")
    assert added.returncode == 0, added.stderr
    early = _insert(url, cluster_schema, "default", 4, int(LONG * LEASE * 1000))
    workers = {
        name: start_worker(_skewed(env, clock), logs, name, *ARGS, "--queues", f"default,{name}")
        for name, clock in SKEWS.items()
    }
    [(started_db,)] = sql(url, "SELECT now()::text")

    # Phase 1: long jobs outlive several leases on the skewed workers; the schedule ticks.
    wait_until(
        lambda: _since(url, started_db) >= window,
        timeout=window + 30,
        what="the observation window",
        interval=0.5,
    )
    wait_until(lambda: _all_done(url, cluster_schema, early), 60, "the long jobs to complete")
    attempts = sql(url, f'SELECT attempts FROM "{cluster_schema}".job WHERE id = ANY(%s)', [early])
    ticks = _ticks(url, cluster_schema)
    [(now_db,)] = sql(url, "SELECT now()")

    # Phase 2: both skewed workers killed with -9 while they hold jobs; a worker with a right
    # clock started at once rescues them when their leases run out.
    held = {name: _insert(url, cluster_schema, name, 2, 60_000) for name in SKEWS}
    for name, ids in held.items():
        pid = workers[name].pid
        wait_until(
            lambda: set(ids) <= set(_held(url, cluster_schema, pid)),  # noqa: B023
            timeout=30,
            what=f"the worker {name} to hold its jobs",
        )
    for worker in workers.values():
        worker.kill()
    [(killed_db,)] = sql(url, "SELECT now()::text")
    every = [i for ids in held.values() for i in ids]
    sql(
        url,
        f"""UPDATE "{cluster_schema}".job SET payload = '{{"ms": 0}}' WHERE id = ANY(%s)""",
        [every],
    )
    queues = ",".join(["default", *SKEWS])
    rescuer = start_worker(env, logs, "rescuer", *ARGS, "--queues", queues)
    wait_until(lambda: _all_done(url, cluster_schema, every), LEASE + 30, "the rescued jobs")
    rescued = {
        name: [
            float(row[0])
            for row in sql(
                url,
                f'SELECT extract(epoch FROM run_at - %s::timestamptz) FROM "{cluster_schema}".job '
                "WHERE id = ANY(%s)",
                [killed_db, ids],
            )
        ]
        for name, ids in held.items()
    }
    assert rescuer.stop() == 0, rescuer.stderr()

    gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(ticks)}
    record(
        f"clock-skew-{window:g}s",
        skews=SKEWS,
        lease_s=LEASE,
        ticks=len(ticks),
        tick_gaps_s=sorted(gaps),
        rescued_after_kill_s={name: max(times) for name, times in rescued.items()},
    )
    assert attempts == [(1,)] * len(early), "no lease was judged expired early"
    for name, worker in workers.items():
        err = worker.stderr()
        assert "lease expired" not in err and "outcomes rejected" not in err, (name, err)
    assert ticks, "the schedule ticked"
    assert gaps == {EVERY}, f"one job per tick, none skipped: {ticks}"
    assert len(ticks) >= window / EVERY - 2, ticks
    assert ticks[-1] <= now_db, "no tick enqueued early by the clock 10 minutes ahead"
    for name, times in rescued.items():
        # A lease runs out between 2/3 of a lease after the kill (renewed every third of a
        # lease) and one lease after it; the rescuer, just started, looks every half lease.
        for seconds in times:
            assert LEASE * 2 / 3 - 0.5 <= seconds <= LEASE * 1.5 + 3, (name, times)


def _clock_in(env: dict[str, str]) -> float:
    done = subprocess.run(
        [sys.executable, "-c", "import time; print(time.time())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout)


def _since(url: str, moment: str) -> float:
    return db_seconds(url, "SELECT extract(epoch FROM now() - %s::timestamptz)", [moment]) or 0.0


def _all_done(url: str, schema: str, ids: list[int]) -> bool:
    rows = sql(
        url,
        f"SELECT count(*) FROM \"{schema}\".job WHERE id = ANY(%s) AND status = 'completed'",
        [ids],
    )
    return rows == [(len(ids),)]


def _insert(url: str, schema: str, queue: str, count: int, ms: int) -> list[int]:
    rows = sql(
        url,
        f'INSERT INTO "{schema}".job (type, queue, payload) '
        "SELECT 'chaos.work', %s, json_build_object('ms', %s) FROM generate_series(1, %s) "
        "RETURNING id",
        [queue, ms, count],
    )
    return [row[0] for row in rows]
