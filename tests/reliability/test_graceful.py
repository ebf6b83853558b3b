"""Graceful stop under load: SIGTERM while 100 jobs run.

Jobs that finish within the drain timeout complete; the others are handed back (pending,
their attempt given back); nothing is left `running`; the worker exits 0.
"""

from __future__ import annotations

import signal

from rel_support import migrate, sql, start_worker, statuses, wait_until, worker_env

SHORT, LONG = 50, 50


def _enqueue(url: str, schema: str, count: int, seconds: float) -> None:
    sql(
        url,
        f'INSERT INTO "{schema}".job (type, payload) '
        "SELECT 'flow.ok', json_build_object('seconds', %s::float) FROM generate_series(1, %s)",
        [seconds, count],
    )


def _wait_running(url: str, schema: str, count: int) -> None:
    """Until `count` handlers have started (claimed is not enough: a job claimed but not yet
    started when the worker stops is handed back without running)."""

    def started() -> bool:
        [(n,)] = sql(
            url,
            f'SELECT count(*) FROM "{schema}".job WHERE status = %s AND progress IS NOT NULL',
            ["running"],
        )
        return n == count

    wait_until(started, 30, f"{count} started")


def _jobs(url: str, schema: str) -> list[tuple[float, str, int, object]]:
    return sql(
        url,
        f"SELECT (payload->>'seconds')::float, status, attempts, locked_by "
        f'FROM "{schema}".job ORDER BY id',
    )


def test_sigterm_under_load_finishes_or_hands_back_every_job(pg_url, pg_schema, site, logs):
    env = worker_env(site, pg_url, pg_schema)
    migrate(env)
    _enqueue(pg_url, pg_schema, SHORT, 2.5)
    _enqueue(pg_url, pg_schema, LONG, 3600)
    worker = start_worker(
        env, logs, "w", "--concurrency", "100", "--shutdown-timeout", "6", plugin="relpoison"
    )
    _wait_running(pg_url, pg_schema, SHORT + LONG)
    worker.term()
    assert worker.wait(timeout=30) == 0, worker.stderr()
    jobs = _jobs(pg_url, pg_schema)
    assert [j[1:] for j in jobs[:SHORT]] == [("completed", 1, None)] * SHORT
    assert [j[1:] for j in jobs[SHORT:]] == [("pending", 0, None)] * LONG, "handed back whole"
    err = worker.stderr()
    assert f"handing back {LONG} unfinished jobs" in err, err
    assert "Traceback" not in err, err


def test_a_second_sigterm_hands_everything_back_at_once(pg_url, pg_schema, site, logs):
    env = worker_env(site, pg_url, pg_schema)
    migrate(env)
    _enqueue(pg_url, pg_schema, 100, 3600)
    worker = start_worker(
        env, logs, "w", "--concurrency", "100", "--shutdown-timeout", "3600", plugin="relpoison"
    )
    _wait_running(pg_url, pg_schema, 100)
    worker.term()
    wait_until(lambda: "stopping gracefully" in worker.stderr(), 10, "the first signal's note")
    worker.proc.send_signal(signal.SIGINT)
    assert worker.wait(timeout=30) == 0, worker.stderr()
    assert statuses(pg_url, pg_schema) == {"pending": 100}
    assert [j[1:] for j in _jobs(pg_url, pg_schema)] == [("pending", 0, None)] * 100
