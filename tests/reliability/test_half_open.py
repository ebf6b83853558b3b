"""Half-open connections: every connection a worker has open goes silent at once (packets
dropped, no reset ever comes, as after a NAT timeout or a database fail-over) while new
connections pass. The worker must notice within a bounded time, abandon those connections,
finish the jobs it was running, and keep starting new jobs at once: its LISTEN connection
is replaced (it proves itself alive with a notification to itself), so jobs do not wait for
the poll interval, which is set long here.
"""

from __future__ import annotations

import time

import pytest
from rel_net import record
from rel_proxy import FaultyProxy
from rel_support import migrate, sql, start_worker, statuses, wait_until, worker_env

POLL = 60.0  # the poll interval: no job may need it to start
LEASE = 15.0  # the statement timeout is a third of it: 5 s
PROBES = 5
QUICK = 5.0  # "at once": a notification's wake-up, with room for a loaded machine


def _insert(url: str, schema: str, ms: int) -> int:
    [(job_id,)] = sql(
        url,
        f'INSERT INTO "{schema}".job (type, payload) VALUES (%s, %s) RETURNING id',
        ["chaos.work", f'{{"ms": {ms}}}'],
    )
    return int(job_id)


def _insert_many(url: str, schema: str, count: int, ms: int) -> None:
    sql(
        url,
        f'INSERT INTO "{schema}".job (type, payload) '
        "SELECT 'chaos.work', json_build_object('ms', %s) FROM generate_series(1, %s)",
        [ms, count],
    )


def _started_after(url: str, schema: str, job_id: int, since: str = "created_at") -> float | None:
    rows = sql(
        url,
        f'SELECT extract(epoch FROM started_at - {since}) FROM "{schema}".job WHERE id = %s',
        [job_id],
    )
    return None if rows[0][0] is None else float(rows[0][0])


@pytest.mark.parametrize(
    ("freezes", "running"),
    [pytest.param(1, 4, id="once"), pytest.param(3, 20, id="three-times", marks=pytest.mark.slow)],
)
def test_a_worker_recovers_from_connections_that_go_silent(
    cluster, cluster_schema, site, logs, freezes, running
):
    url = cluster.url()
    env = worker_env(site, url, cluster_schema, CHAOS_LEASE=str(LEASE))
    migrate(env)
    sql(url, f'CREATE TABLE "{cluster_schema}".side (job_id bigint, attempt int, pid int)')
    args = ("--concurrency", str(running), "--poll-interval", f"{POLL:g}")
    recovered: list[float | None] = []
    latencies: list[float | None] = []
    frozen: list[int] = []
    with FaultyProxy("127.0.0.1", cluster.port) as proxy:
        worker = start_worker(
            {**env, "DATABASE_URL": proxy.url_for(url), "JOBRUNNER_ERROR_RETRY_DELAY": "2"},
            logs,
            "w",
            *args,
        )
        # Listening: a job starts at once, long before the poll interval.
        first = _insert(url, cluster_schema, 0)
        wait_until(lambda: _started_after(url, cluster_schema, first) is not None, 30, "a start")
        for _ in range(freezes):
            _insert_many(url, cluster_schema, running, 3000)
            wait_until(
                lambda: statuses(url, cluster_schema).get("running") == running, 30, "slots full"
            )
            frozen.append(proxy.freeze())
            [(t0,)] = sql(url, "SELECT now()::text")
            probe = _insert(url, cluster_schema, 0)
            wait_until(
                lambda: _started_after(url, cluster_schema, probe) is not None,  # noqa: B023
                timeout=POLL + 30,
                what="the job enqueued after the freeze to start",
                interval=0.2,
            )
            recovered.append(
                _started_after(url, cluster_schema, probe, since=f"'{t0}'::timestamptz")
            )
            for _ in range(PROBES):
                job_id = _insert(url, cluster_schema, 0)
                wait_until(
                    lambda: _started_after(url, cluster_schema, job_id) is not None,  # noqa: B023
                    timeout=POLL + 30,
                    what="a job to start after the listener was replaced",
                    interval=0.05,
                )
                latencies.append(_started_after(url, cluster_schema, job_id))
            wait_until(
                lambda: set(statuses(url, cluster_schema)) == {"completed"},
                timeout=60,
                what="the jobs running at the freeze to finish (slots not held for good)",
            )
        started = time.monotonic()
        code = worker.stop()
        stop_seconds = time.monotonic() - started
    err = worker.stderr()
    [(runs, ran)] = sql(
        url, f'SELECT count(*), count(DISTINCT job_id) FROM "{cluster_schema}".side'
    )
    record(
        f"half-open-x{freezes}",
        running_at_freeze=running,
        frozen_connections=frozen,
        first_job_started_after_freeze_s=recovered,
        later_start_latency_max_s=max(x or 0.0 for x in latencies),
        stop_s=round(stop_seconds, 2),
        duplicate_runs=runs - ran,
    )
    assert min(frozen) >= 2, "the pool and the LISTEN connection were open"
    assert code == 0, err
    assert all(r is not None and r < POLL for r in recovered), (recovered, err)
    assert all(x is not None and x < QUICK for x in latencies), (latencies, err)
    assert err.count("the LISTEN connection") == freezes, err  # replaced each time, said once
    total = 1 + freezes * (running + 1 + PROBES)
    assert statuses(url, cluster_schema) == {"completed": total}, "nothing lost or stuck"
    assert ran == total and runs - ran <= freezes * running, "a second run only for held jobs"
