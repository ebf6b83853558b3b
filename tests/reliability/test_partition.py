"""Dropped connections: a worker cut off from PostgreSQL past its lease loses its jobs to
another worker, and when it comes back its late completions are refused by the fencing.

Worker A reaches the database through a FaultyProxy (its side effects go direct, so its
handlers can finish while it is cut off); worker B connects directly.
"""

from __future__ import annotations

import re

import pytest
from rel_proxy import FaultyProxy
from rel_support import migrate, sql, start_worker, statuses, wait_until, worker_env

JOBS = 10
ARGS = ("--concurrency", "10", "--poll-interval", "1", "--error-retry-delay", "1")


def _running_in(url: str, schema: str, pid: int) -> int:
    rows = sql(
        url,
        f'SELECT count(*) FROM "{schema}".job WHERE status = %s AND locked_by LIKE %s',
        ["running", f"%:{pid}:%"],
    )
    return int(rows[0][0])


def _rejected(err: str) -> int:
    return sum(int(n) for n in re.findall(r"(\d+) outcomes rejected", err))


@pytest.mark.parametrize("fault", ["stall", "refuse"])
def test_a_cut_off_worker_loses_its_jobs_and_its_late_results_are_refused(
    cluster, cluster_schema, site, logs, fault
):
    url = cluster.url()
    env = worker_env(site, url, cluster_schema, CHAOS_LEASE="2")
    migrate(env)
    sql(url, f'CREATE TABLE "{cluster_schema}".side (job_id bigint, attempt int, pid int)')
    sql(
        url,
        f'INSERT INTO "{cluster_schema}".job (type, payload) '
        "SELECT 'chaos.work', '{\"ms\": 3000}' FROM generate_series(1, %s)",
        [JOBS],
    )
    with FaultyProxy("127.0.0.1", cluster.port) as proxy:
        a = start_worker({**env, "DATABASE_URL": proxy.url_for(url)}, logs, "a", *ARGS)
        wait_until(lambda: _running_in(url, cluster_schema, a.pid) == JOBS, 30, "A to claim all")
        proxy.stall() if fault == "stall" else proxy.refuse()
        b = start_worker(env, logs, "b", *ARGS)
        wait_until(
            lambda: statuses(url, cluster_schema) == {"completed": JOBS},
            timeout=60,
            what="B to rescue and finish every job",
        )
        wait_until(
            lambda: sql(url, f'SELECT count(*) FROM "{cluster_schema}".side') == [(2 * JOBS,)],
            timeout=30,
            what="A's handlers to finish too, while cut off",
        )
        proxy.resume()
        wait_until(lambda: _rejected(a.stderr()) == JOBS, 30, "A's late outcomes to be refused")
        codes = [a.stop(), b.stop()]
    rows = sql(url, f'SELECT status, attempts, result FROM "{cluster_schema}".job')
    assert codes == [0, 0], (a.stderr(), b.stderr())
    assert rows == [("completed", 2, {"pid": b.pid, "attempt": 2})] * JOBS, "B's results stand"
    assert b.stderr().count("lease expired; now pending") == JOBS
    assert "lost its lease" not in b.stderr()
    if fault == "refuse":
        err = a.stderr()
        assert err.count("database unavailable") == 1, err
        assert err.count("database reachable again") == 1, err
