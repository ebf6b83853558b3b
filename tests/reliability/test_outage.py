"""A database restart, and an outage, in the middle of a run (on the suite's private cluster).

Workers must survive (no exit, no restart loop), log the outage once rather than once per
poll, say when the database is back, resume, and lose nothing.
"""

from __future__ import annotations

import time

import pytest
from rel_support import migrate, sql, start_worker, statuses, wait_until, worker_env

JOBS = 300


def _count(text: str, needle: str) -> int:
    return sum(needle in line for line in text.splitlines())


def _worker_lines(text: str) -> list[str]:
    """The worker's own warnings, apart from those about single jobs and the stop signal:
    what an operator sees of the outage."""
    seen = []
    for line in text.splitlines():
        if not line[:4].isdigit() or (" WARNING " not in line and " ERROR " not in line):
            continue
        if "jobrunner.job:" in line or "stopping gracefully" in line or "lease expired" in line:
            continue
        if " psycopg.pool: " in line:  # see test_an_outage_is_reported_once_with_its_cause
            continue
        seen.append(line)
    shown = []
    for line in seen:
        shown += [key for key in ("database unavailable", "reachable again") if key in line]
    return shown if len(shown) == len(seen) else seen


@pytest.mark.parametrize(
    "downtime",
    [
        pytest.param(0.0, id="restart"),
        pytest.param(5.0, id="outage-5s"),
        pytest.param(30.0, id="outage-30s", marks=pytest.mark.slow),
    ],
)
def test_workers_ride_out_a_database_outage(cluster, cluster_schema, site, logs, downtime):
    url = cluster.url()
    env = worker_env(site, url, cluster_schema, CHAOS_LEASE="10")
    migrate(env)
    sql(url, f'CREATE TABLE "{cluster_schema}".side (job_id bigint, attempt int, pid int)')
    sql(
        url,
        f'INSERT INTO "{cluster_schema}".job (type, payload) '
        "SELECT 'chaos.work', json_build_object('ms', 100 + (i * 37) %% 300) "
        "FROM generate_series(1, %s) AS i",
        [JOBS],
    )
    args = ("--concurrency", "10", "--poll-interval", "1", "--error-retry-delay", "2")
    workers = [start_worker(env, logs, f"w{n}", *args) for n in range(2)]
    wait_until(
        lambda: statuses(url, cluster_schema).get("completed", 0) >= JOBS // 5,
        timeout=60,
        what="the run to be under way",
    )
    cluster.stop()
    time.sleep(downtime)  # the outage itself
    cluster.start()
    wait_until(
        lambda: statuses(url, cluster_schema) == {"completed": JOBS},
        timeout=120,
        what="every job to complete after the outage",
        interval=0.25,
    )
    for worker in workers:
        assert worker.alive(), worker.stderr()
    codes = [worker.stop() for worker in workers]
    side = sql(url, f'SELECT count(DISTINCT job_id) FROM "{cluster_schema}".side')
    assert side == [(JOBS,)], "every job's side effect is there"
    for worker, code in zip(workers, codes, strict=True):
        err = worker.stderr()
        assert code == 0, err
        down, back = _count(err, "database unavailable"), _count(err, "reachable again")
        if downtime:
            assert (down, back) == (1, 1), err
        else:  # a quick restart may go unnoticed by a worker; if noticed, it is logged once
            assert down == back <= 1, err
        assert _count(err, "stopping gracefully") == 1
        assert _worker_lines(err) == ["database unavailable", "reachable again"][: 2 * down], err


def test_an_outage_is_reported_once_with_its_cause(cluster, cluster_schema, site, logs):
    url = cluster.url(user="jr_secret", password="not-the-password")
    env = worker_env(site, url, cluster_schema)
    worker = start_worker(env, logs, "w", "--error-retry-delay", "1")
    wait_until(lambda: _count(worker.stderr(), "unavailable") >= 1, 30, "the outage report")
    time.sleep(3)  # several reconnection attempts: none of them may add a line
    worker.stop(timeout=30)
    lines = [line for line in worker.stderr().splitlines() if line[:4].isdigit()]
    complaints = [line for line in lines if "stopping gracefully" not in line]
    assert len(complaints) == 1, complaints
    assert 'password authentication failed for user "jr_secret"' in complaints[0]
