"""A rolling upgrade: workers of the previous release keep draining the queue while the new
release's `jobrunner migrate` runs and new workers start beside them; then the old ones are
stopped one by one. No job fails, none is lost or run twice, and a web app's plain INSERTs
go on throughout.

"The previous release" is the commit just before a migration was added on the main line,
exported with `git archive` and put first on the old workers' PYTHONPATH (it shares the
installed dependencies). Two upgrades: across the last migration (keys, usage, schedules)
and across three (limits, traceparent, keys), where old workers know nothing of limits or
turns and their inserts rely on the turn trigger.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest
from rel_support import (
    WorkerProc,
    export_release,
    jr,
    release_before,
    skip_or_fail,
    sql,
    start_worker,
    statuses,
    wait_until,
    with_release,
    worker_env,
)

JOBS = 600  # enqueued before the upgrade; the feed adds more during it
ARGS = ("--concurrency", "8", "--poll-interval", "1")


class Feed:
    """A web app's plain INSERTs, one every 10 ms from a thread, with their latencies."""

    def __init__(self, url: str, schema: str) -> None:
        self.url, self.schema = url, schema
        self.inserted = 0
        self.errors: list[str] = []
        self.slowest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        query = (
            f'INSERT INTO "{self.schema}".job (type, payload) '
            "VALUES ('chaos.work', '{\"ms\": 30}')"
        )
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    conn.execute(query)
                    self.inserted += 1
                except psycopg.Error as exc:
                    self.errors.append(str(exc))
                self.slowest = max(self.slowest, time.monotonic() - started)
                time.sleep(0.01)

    def __enter__(self) -> Feed:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _version(url: str, schema: str) -> int:
    return sql(url, f'SELECT max(version) FROM "{schema}".job_migrations')[0][0]


def _ran_since(url: str, schema: str, pids: list[int], since: object) -> int:
    rows = sql(
        url,
        f'SELECT count(*) FROM "{schema}".side WHERE pid = ANY(%s) AND at > %s',
        [pids, since],
    )
    return rows[0][0]


def _clean(worker: WorkerProc) -> None:
    err = worker.stderr()
    assert "Traceback" not in err, err[-3000:]
    assert " ERROR " not in err and "error:" not in err, err[-3000:]


@pytest.mark.parametrize(
    "migration",
    [
        pytest.param("0005_keys_usage_schedules.sql", id="across-0005"),
        pytest.param("0003_limits.sql", id="across-0003-0005"),
    ],
)
def test_a_rolling_upgrade_fails_loses_and_repeats_nothing(
    pg_url, pg_schema, site, logs, tmp_path: Path, migration, capsys
):
    commit = release_before(migration)
    if commit is None:
        skip_or_fail(f"no git history to build the release before {migration} from")
    assert commit is not None
    old_src = export_release(commit, tmp_path / "previous")
    new_env = worker_env(site, pg_url, pg_schema, CHAOS_LEASE="10")
    old_env = with_release(new_env, old_src)
    done = jr(old_env, "migrate")
    assert done.returncode == 0, done.stderr
    before = _version(pg_url, pg_schema)
    assert before == int(migration[:4]) - 1, "the previous release made its own schema"
    sql(
        pg_url,
        f'CREATE TABLE "{pg_schema}".side '
        "(job_id bigint, attempt int, pid int, at timestamptz DEFAULT clock_timestamp())",
    )
    sql(
        pg_url,
        f'INSERT INTO "{pg_schema}".job (type, payload) '
        "SELECT 'chaos.work', json_build_object('ms', 20 + i %% 60) FROM generate_series(1, %s) i",
        [JOBS],
    )
    old = [start_worker(old_env, logs, f"old{i}", *ARGS) for i in range(2)]
    new: list[WorkerProc] = []
    try:
        wait_until(lambda: statuses(pg_url, pg_schema).get("completed", 0) >= 100, 60, "old runs")
        with Feed(pg_url, pg_schema) as feed:
            started = time.monotonic()
            done = jr(new_env, "migrate")
            took = time.monotonic() - started
            assert done.returncode == 0, done.stderr
            assert _version(pg_url, pg_schema) > before
            migrated_at = sql(pg_url, "SELECT clock_timestamp()")[0][0]
            new = [start_worker(new_env, logs, f"new{i}", *ARGS) for i in range(2)]
            old_pids, new_pids = [w.pid for w in old], [w.pid for w in new]
            wait_until(
                lambda: (
                    _ran_since(pg_url, pg_schema, old_pids, migrated_at) >= 20
                    and _ran_since(pg_url, pg_schema, new_pids, migrated_at) >= 20
                ),
                60,
                "old and new workers side by side on the new schema",
            )
            for worker in old:  # one at a time, as a rollout does
                worker.term()  # it has run jobs: long past start-up
                assert worker.wait(timeout=60) == 0, worker.stderr()[-3000:]
                time.sleep(0.5)
        old_after = _ran_since(pg_url, pg_schema, old_pids, migrated_at)
        total = JOBS + feed.inserted
        wait_until(
            lambda: statuses(pg_url, pg_schema) == {"completed": total}, 90, "the queue to drain"
        )
    finally:
        for worker in old + new:
            if worker.alive():
                worker.term()
        for worker in old + new:
            worker.wait(timeout=60)
    for worker in old + new:
        _clean(worker)
        assert worker.proc.returncode == 0
    assert feed.errors == [], feed.errors[:3]
    side = sql(pg_url, f'SELECT job_id, count(*) FROM "{pg_schema}".side GROUP BY job_id')
    assert len(side) == total, "every job ran"
    assert all(n == 1 for _, n in side), "no job ran twice"
    attempts = sql(pg_url, f'SELECT DISTINCT attempts FROM "{pg_schema}".job')
    assert attempts == [(1,)], "no job failed an attempt or was rescued"
    figures = {
        "previous": commit[:7],
        "schema": f"{before} -> {_version(pg_url, pg_schema)}",
        "jobs": total,
        "fed during upgrade": feed.inserted,
        "old runs after migrate": old_after,
        "migrate seconds": round(took, 2),
        "slowest plain insert ms": round(feed.slowest * 1000, 1),
    }
    with capsys.disabled():
        print(f"\nrolling upgrade: {figures}")
