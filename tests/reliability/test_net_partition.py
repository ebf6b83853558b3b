"""A real partition: worker A's host loses its link (`ip link set eth0 down` inside its
network namespace: no reset, nothing gets through) for longer than the lease while it runs
jobs. Worker B, on another host, rescues them once their leases expire and runs them again;
when A's link comes back its late outcomes are refused by the fence, it reconnects by itself
(the outage logged once) and claims new jobs again. Nothing is lost; only the jobs A held
ran twice.

A's handlers record their side effects through PostgreSQL's Unix socket, which no network
namespace cuts off, so they finish while A is cut off, as a job's work on another service
would (test_partition.py does the same through a proxy).
"""

from __future__ import annotations

import re
import time

import pytest
from rel_net import db_seconds, record, url_via, url_via_socket
from rel_support import migrate, sql, statuses, wait_until, worker_env

LEASE = 4.0
ARGS = ("--poll-interval", "1", "--error-retry-delay", "1")


def _rejected(err: str) -> int:
    return sum(int(n) for n in re.findall(r"(\d+) outcomes rejected", err))


def _held_by(url: str, schema: str, pid: int) -> int:
    rows = sql(
        url,
        f"SELECT count(*) FROM \"{schema}\".job WHERE status = 'running' AND locked_by LIKE %s",
        [f"%:{pid}:%"],
    )
    return int(rows[0][0])


def _insert(url: str, schema: str, count: int, ms: int) -> list[int]:
    rows = sql(
        url,
        f'INSERT INTO "{schema}".job (type, payload) '
        "SELECT 'chaos.work', json_build_object('ms', %s) FROM generate_series(1, %s) "
        "RETURNING id",
        [ms, count],
    )
    return [row[0] for row in rows]


@pytest.mark.parametrize(
    ("jobs", "cut_for"),
    [
        pytest.param(6, 3 * LEASE, id="small"),
        pytest.param(40, 60.0, id="long", marks=pytest.mark.slow),
    ],
)
def test_a_host_cut_off_past_its_lease_loses_its_jobs_and_comes_back(
    lan_pg, lan_schema, hosts, site, logs, jobs, cut_for
):
    local = lan_pg.url()
    env = worker_env(
        site,
        url_via(local, hosts.gateway),
        lan_schema,
        CHAOS_LEASE=str(LEASE),
        SIDE_DATABASE_URL=url_via_socket(lan_pg),
    )
    migrate(worker_env(site, local, lan_schema))
    sql(local, f'CREATE TABLE "{lan_schema}".side (job_id bigint, attempt int, pid int)')
    host_a, host_b = hosts.add_host("a"), hosts.add_host("b")
    held = _insert(local, lan_schema, jobs, 2000)
    a = host_a.start_worker(env, logs, "a", "--concurrency", str(jobs), *ARGS)
    wait_until(lambda: _held_by(local, lan_schema, a.pid) == jobs, 30, "A to claim every job")

    host_a.cut()
    cut_at = time.monotonic()
    [(cut_db,)] = sql(local, "SELECT now()::text")
    b = host_b.start_worker(env, logs, "b", "--concurrency", str(jobs), *ARGS)
    wait_until(
        lambda: statuses(local, lan_schema) == {"completed": jobs},
        timeout=cut_for + 60,
        what="B to rescue and finish every job A held",
    )
    rescued_after = db_seconds(
        local,
        f'SELECT extract(epoch FROM max(started_at) - %s::timestamptz) FROM "{lan_schema}".job',
        [cut_db],
    )
    wait_until(
        lambda: sql(local, f'SELECT count(*) FROM "{lan_schema}".side') == [(2 * jobs,)],
        timeout=30,
        what="A's handlers to finish too, while cut off",
    )
    time.sleep(max(0.0, cut_for - (time.monotonic() - cut_at)))
    assert a.alive(), a.stderr()
    host_a.restore()
    restored_at = time.monotonic()
    cut_seconds = restored_at - cut_at
    wait_until(lambda: _rejected(a.stderr()) == jobs, 60, "A's late outcomes to be refused")
    wait_until(lambda: "reachable again" in a.stderr(), 60, "A to reconnect")
    reconnected_after = time.monotonic() - restored_at

    # A claims again: with B gone, new jobs can only be A's.
    assert b.stop() == 0, b.stderr()
    fresh = _insert(local, lan_schema, 4, 0)
    wait_until(
        lambda: statuses(local, lan_schema) == {"completed": jobs + 4},
        timeout=30,
        what="A to claim and run new jobs",
    )
    assert a.stop() == 0, a.stderr()
    err = a.stderr()
    record(
        f"partition-{jobs}",
        jobs=jobs,
        cut_s=round(cut_seconds, 1),
        lease_s=LEASE,
        rescued_and_started_within_s=rescued_after,
        reconnected_after_restore_s=round(reconnected_after, 2),
    )
    results = sql(local, f'SELECT id, attempts, result FROM "{lan_schema}".job ORDER BY id')
    assert [(i, n, r["pid"]) for i, n, r in results if i in held] == [
        (i, 2, b.pid) for i in held
    ], "B's results stand for the jobs A held"
    assert [(i, n, r["pid"]) for i, n, r in results if i in fresh] == [
        (i, 1, a.pid) for i in fresh
    ], "A resumed claiming"
    twice = sql(
        local,
        f'SELECT job_id FROM "{lan_schema}".side GROUP BY job_id HAVING count(*) > 1 ORDER BY 1',
    )
    assert [row[0] for row in twice] == held, "duplicates only for the jobs A held"
    assert err.count("database unavailable") == 1, err
    assert err.count("database reachable again") == 1, err
    assert "lease expired; now pending" not in err
    assert b.stderr().count("lease expired; now pending") == jobs
