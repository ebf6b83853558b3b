"""Poison jobs: each ends `failed` after its attempts or timeout, with a clear error, and the
other jobs keep flowing. CPU work declared `run_in="process"` never stalls lease renewal."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from rel_support import WorkerProc, migrate, sql, start_worker, wait_until, worker_env

FLOW = 40


def _enqueue(url: str, schema: str, job_type: str, payload: str = "{}", count: int = 1) -> None:
    sql(
        url,
        f'INSERT INTO "{schema}".job (type, payload, max_attempts) '
        "SELECT %s, %s::jsonb, CASE WHEN %s LIKE 'flow.%%' THEN 5 END "
        "FROM generate_series(1, %s)",
        [job_type, payload, job_type, count],
    )


def _final(url: str, schema: str) -> dict[str, tuple[str, int, str | None]]:
    """{type: (status, attempts, error)} once every job is final (flow jobs: all completed)."""
    rows = sql(url, f'SELECT type, status, attempts, error FROM "{schema}".job ORDER BY id')
    if any(status in ("pending", "running") for _, status, _, _ in rows):
        return {}
    flow = [r for r in rows if r[0] == "flow.ok"]
    out = {t: (s, a, e) for t, s, a, e in rows if t != "flow.ok"}
    out["flow.ok"] = ("completed" if all(r[1] == "completed" for r in flow) else "broken", 0, None)
    return out


def test_poison_jobs_fail_cleanly_while_other_jobs_flow(pg_url, pg_schema, site, logs):
    env = worker_env(site, pg_url, pg_schema)
    migrate(env)
    for job_type in ("poison.exit_process", "poison.cpu", "poison.hang"):
        _enqueue(pg_url, pg_schema, job_type)
    _enqueue(pg_url, pg_schema, "poison.cpu_ok", '{"seconds": 3}')
    _enqueue(pg_url, pg_schema, "flow.ok", '{"seconds": 0.05}', FLOW)
    worker = start_worker(env, logs, "w", "--concurrency", "8", plugin="relpoison")
    final = wait_until(lambda: _final(pg_url, pg_schema), 90, "every job to end", interval=0.25)
    assert worker.alive(), worker.stderr()
    code = worker.stop(timeout=30)
    assert final["flow.ok"][0] == "completed"
    assert final["poison.cpu_ok"][:2] == ("completed", 1), "a 3 s CPU burn kept its 1 s lease"
    assert final["poison.hang"] == (
        "failed",
        2,
        "TimeoutError: poison.hang did not finish within its 1s timeout",
    )
    assert final["poison.cpu"] == (
        "failed",
        2,
        "TimeoutError: poison.cpu did not finish within its 1.5s timeout",
    )
    status, attempts, error = final["poison.exit_process"]
    assert (status, attempts) == ("failed", 2)
    assert error is not None and error.startswith("BrokenWorkerProcess"), error
    assert code == 0, worker.stderr()


def test_a_thread_that_never_returns_fails_and_the_worker_still_stops(
    pg_url, pg_schema, site, logs
):
    env = worker_env(site, pg_url, pg_schema)
    migrate(env)
    _enqueue(pg_url, pg_schema, "poison.hang_thread")
    _enqueue(pg_url, pg_schema, "flow.ok", '{"seconds": 0.05}', FLOW)
    worker = start_worker(env, logs, "w", "--concurrency", "4", plugin="relpoison")
    final = wait_until(lambda: _final(pg_url, pg_schema), 60, "every job to end", interval=0.25)
    assert final["flow.ok"][0] == "completed"
    assert final["poison.hang_thread"] == (
        "failed",
        2,
        "TimeoutError: poison.hang_thread did not finish within its 1s timeout",
    )
    worker.term()
    try:
        code = worker.wait(timeout=5)
    except subprocess.TimeoutExpired:
        worker.kill()
        raise AssertionError("the worker did not exit after SIGTERM") from None
    assert code == 0, worker.stderr()


def _supervise(env: dict[str, str], logs: Path, until, max_starts: int, *args: str) -> list[int]:
    """Run a worker like a supervisor would (restart it whenever it exits) until `until()`."""
    codes: list[int] = []
    worker: WorkerProc | None = None
    deadline = time.monotonic() + 120
    while not until():
        assert time.monotonic() < deadline, f"gave up; exit codes so far {codes}"
        if worker is None or not worker.alive():
            if worker is not None:
                codes.append(worker.proc.returncode)
            assert len(codes) < max_starts, f"restarted {len(codes)} times: {codes}"
            worker = start_worker(env, logs, f"w{len(codes)}", *args, plugin="relpoison")
        time.sleep(0.1)
    if worker is not None:
        codes.append(worker.stop(timeout=30))
    return codes


def test_a_job_that_kills_its_worker_fails_after_its_attempts(pg_url, pg_schema, site, logs):
    env = worker_env(site, pg_url, pg_schema)
    migrate(env)
    _enqueue(pg_url, pg_schema, "poison.exit_worker")
    _enqueue(pg_url, pg_schema, "flow.ok", '{"seconds": 0.05}', FLOW)
    codes = _supervise(env, logs, lambda: _final(pg_url, pg_schema), 6, "--concurrency", "4")
    final = _final(pg_url, pg_schema)
    assert final["flow.ok"][0] == "completed"
    status, attempts, error = final["poison.exit_worker"]
    assert (status, attempts) == ("failed", 2)
    assert re.fullmatch(r"LeaseExpired: worker \S+ stopped renewing the lease of attempt 2", error)
    assert codes[:2] == [3, 3], "each attempt took its worker down"
    assert codes[-1] == 0
