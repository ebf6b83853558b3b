"""Chaos with the cluster-wide features in use: three workers on a private cluster run jobs
under a global concurrency and a per-user limit (three users taking turns), a rate, keyed
jobs a web app keeps enqueueing, and a 1 s schedule, while workers are killed with SIGKILL
and the database is restarted under them.

Sampled from the table every few milliseconds and read back at the end:

- the global concurrency and the per-user limit are never exceeded (a killed worker's jobs
  count as running until they are rescued), and no 1 s window holds more starts than the rate
  (the schedule's ticks are jobs of the rate-limited type too);
- no two jobs with one key are ever alive at once, and each tick of the schedule has one job;
- every job ends completed: nothing lost, failed or stuck.
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import psycopg
import pytest
from rel_support import (
    FULL,
    Sampler,
    WorkerProc,
    jr,
    migrate,
    schedule_ticks,
    sql,
    start_worker,
    statuses,
    wait_until,
    worker_env,
)

CONCURRENCY, PER_USER, RATE = 4, 2, 10  # limits.hold: 4 at once, 2 per user; limits.quick: 10/s
KEYS = 12


class KeyedFeed:
    """A web app enqueueing `chaos.work` jobs under KEYS keys, each once every 20 ms, with the
    documented plain-SQL form: a key still held makes the INSERT do nothing."""

    def __init__(self, url: str, schema: str) -> None:
        self.url, self.schema = url, schema
        self.made = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        query = (
            f'INSERT INTO "{self.schema}".job (type, payload, unique_key) '
            "VALUES ('chaos.work', '{\"ms\": 150}', %s) ON CONFLICT (unique_key) "
            "WHERE unique_key IS NOT NULL AND status IN ('pending', 'running') DO NOTHING"
        )
        keys = itertools.cycle(f"k{i}" for i in range(KEYS))
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=2) as conn:
                    while not self._stop.is_set():
                        self.made += conn.execute(query, [next(keys)]).rowcount
                        time.sleep(0.02)
            except psycopg.OperationalError:
                time.sleep(0.1)  # the database is restarting

    def __enter__(self) -> KeyedFeed:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _start(env: dict[str, str], logs: Path, name: str) -> WorkerProc:
    return start_worker(
        env,
        logs,
        name,
        "--plugin",
        "relchaos",
        "--plugin",
        "diag",
        "--concurrency",
        "6",
        "--poll-interval",
        "1",
        "--error-retry-delay",
        "1",
        plugin="rellimits",
    )


def _enqueue(url: str, schema: str) -> int:
    """Held jobs for three users (one heavy), quick jobs under the rate; returns the count."""
    table = f'"{schema}".job'
    for user, n in (("heavy", 40), ("mid", 15), ("light", 5)):
        sql(
            url,
            f"INSERT INTO {table} (type, payload, user_id) "
            "SELECT 'limits.hold', '{\"ms\": 250}', %s FROM generate_series(1, %s)",
            [user, n],
        )
    sql(url, f"INSERT INTO {table} (type) SELECT 'limits.quick' FROM generate_series(1, 40)")
    return 100


def _overlapping_keys(url: str, schema: str) -> list[tuple[str, int, int]]:
    """Pairs of jobs with one key whose lives (created to finished) overlap."""
    return sql(
        url,
        f'SELECT a.unique_key, a.id, b.id FROM "{schema}".job AS a JOIN "{schema}".job AS b '
        "ON a.unique_key = b.unique_key AND a.id < b.id "
        "WHERE a.unique_key LIKE 'k%%' AND b.created_at < a.finished_at",
    )


def _rate_windows(url: str, schema: str) -> int:
    """The most starts of limits.quick in any 1 s window."""
    rows = sql(
        url,
        f"SELECT extract(epoch FROM started_at) FROM \"{schema}\".job WHERE type = 'limits.quick' "
        "ORDER BY started_at",
    )
    starts = [float(r[0]) for r in rows]
    return max(sum(1 for s in starts[i:] if s < start + 1.0) for i, start in enumerate(starts))


def _recovery(url: str, schema: str, since: object) -> float:
    """Seconds from `since` (the database's time) to the first job finished after it."""
    query = f'SELECT min(finished_at) FROM "{schema}".job WHERE finished_at > %s'
    first = wait_until(lambda: sql(url, query, [since])[0][0], 60, "a job after the restart")
    return float((first - since).total_seconds())


@pytest.mark.parametrize(
    "rounds", [pytest.param(1, id="ci"), pytest.param(4, id="full", marks=pytest.mark.slow)]
)
def test_limits_keys_and_schedules_hold_through_kill_9_and_a_database_restart(
    cluster, cluster_schema, site, logs, rounds, capsys
):
    if FULL and rounds == 1:
        pytest.skip("the full profile runs instead")
    url, schema = cluster.url(), cluster_schema
    env = worker_env(site, url, schema, CHAOS_LEASE="2")
    migrate(env)
    sql(url, f'CREATE TABLE "{schema}".side (job_id bigint, attempt int, pid int)')
    for args in (
        ("limits.hold", "--concurrency", str(CONCURRENCY), "--per-user", str(PER_USER)),
        ("limits.quick", "--rate", f"{RATE}/1s"),
    ):
        done = jr(env, "limits", "set", *args)
        assert done.returncode == 0, done.stderr
    # The ticks' jobs may be retried: a tick held by a killed worker runs again once its lease
    # ends (diag.noop, of one attempt, would end failed with LeaseExpired, as documented).
    done = jr(env, "schedules", "add", "tick", "--every", "1s", "--type", "limits.quick")
    assert done.returncode == 0, done.stderr
    workers = [_start(env, logs, f"w{i}") for i in range(3)]
    spawned, kills, recoveries = 3, 0, []
    try:
        with Sampler(url, schema, "limits.hold") as held, KeyedFeed(url, schema) as feed:
            for _ in range(rounds):
                _enqueue(url, schema)
                for step in range(3):
                    time.sleep(1.5)
                    victim = (kills + step) % len(workers)
                    workers[victim].kill()
                    kills += 1
                    workers[victim] = _start(env, logs, f"w{spawned}")
                    spawned += 1
                time.sleep(1.0)
                cluster.restart()  # every session is cut; the workers reconnect by themselves
                restarted = sql(url, "SELECT now()")[0][0]
                recoveries.append(_recovery(url, schema, restarted))
                time.sleep(2.0)
        # The feed has stopped, and so does the schedule: what they left must drain.
        done = jr(env, "schedules", "pause", "tick")
        assert done.returncode == 0, done.stderr
        try:
            wait_until(
                lambda: set(statuses(url, schema)) == {"completed"},
                120,
                "every job to complete",
                0.2,
            )
        except AssertionError:
            left = sql(
                url,
                "SELECT id, type, user_id, status, attempts, run_at - now(), locked_by, error "
                f"FROM \"{schema}\".job WHERE status <> 'completed' ORDER BY id LIMIT 20",
            )
            limits = sql(url, f'SELECT * FROM "{schema}".job_limits')
            raise AssertionError(f"not completed: {left}; limits: {limits}") from None
        for w in workers:
            assert w.alive(), w.stderr()[-3000:]
            w.term()
        for w in workers:
            assert w.wait(timeout=60) == 0, w.stderr()[-3000:]
    finally:
        for w in workers:
            if w.alive():
                w.kill()
    for w in workers:
        # The only tracebacks: a handler's own side-effect connection cut by the restart, its
        # attempt retried (logged with the handler's traceback, as every handler failure is).
        err = w.stderr()
        assert err.count("Traceback") <= err.count(" failed, retrying in "), err[-3000:]
    counts = statuses(url, schema)
    ticks = schedule_ticks(url, schema, "tick")
    times = [t.at for t in ticks]
    duplicated_ticks = len(times) - len(set(times))
    figures = {
        "jobs": sum(counts.values()),
        "kills": kills,
        "database restarts": rounds,
        "keyed jobs": feed.made,
        "ticks": len(ticks),
        "max running / limit": (max(held.counts), CONCURRENCY),
        "max per user / limit": (max(held.per_user), PER_USER),
        "max starts in 1 s / rate": (_rate_windows(url, schema), RATE),
        "recovered after restart s": [round(r, 2) for r in recoveries],
    }
    with capsys.disabled():
        print(f"\nchaos with limits, keys and schedules: {figures}")
    assert counts == {"completed": sum(counts.values())}, counts
    assert max(held.counts) <= CONCURRENCY, figures
    assert max(held.per_user) <= PER_USER, figures
    assert max(held.counts) >= 2, "the limit was used (else it proves nothing)"
    assert _rate_windows(url, schema) <= RATE, figures
    assert _overlapping_keys(url, schema) == []
    assert feed.made > KEYS, "keys were freed and taken again"
    assert duplicated_ticks == 0, times
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert all(g >= 0.999 and abs(g - round(g)) < 0.001 for g in gaps), f"off the 1 s grid: {gaps}"
    assert len(ticks) >= 5
    side = sql(url, f'SELECT count(DISTINCT job_id) FROM "{schema}".side')[0][0]
    assert side == feed.made, "every keyed job left its side effect"
