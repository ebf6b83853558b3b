"""The memory guard (`--max-memory`, PM2's max_memory_restart): past the limit the worker
stops claiming, drains, and exits with code 75 (EX_TEMPFAIL) so its supervisor restarts it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from rel_support import WorkerProc, migrate, sql, start_worker, statuses, worker_env

EXIT_MEMORY = 75


def _leak_state(url: str, schema: str) -> tuple[str, int, str | None]:
    rows = sql(
        url, f'SELECT status, attempts, error FROM "{schema}".job WHERE type = %s', ["poison.leak"]
    )
    return rows[0]


def test_past_max_memory_the_worker_drains_and_exits_75(pg_url, pg_schema, site, logs):
    env = worker_env(site, pg_url, pg_schema)
    migrate(env)
    sql(
        pg_url,
        f'INSERT INTO "{pg_schema}".job (type, payload) '
        "SELECT 'grow.keep', '{\"mb\": 40}' FROM generate_series(1, 20)",
    )
    args = ("--concurrency", "1", "--max-memory", "250MB")
    worker = start_worker(env, logs, "w", *args, plugin="relpoison")
    assert worker.wait(timeout=60) == EXIT_MEMORY, worker.stderr()
    counts = statuses(pg_url, pg_schema)
    assert set(counts) == {"completed", "pending"}, counts
    assert 1 <= counts["completed"] < 20
    untouched = sql(
        pg_url, f'SELECT DISTINCT attempts FROM "{pg_schema}".job WHERE status = %s', ["pending"]
    )
    assert untouched == [(0,)], "the jobs it did not run are untouched"
    err = worker.stderr()
    assert "over the 250 MB limit: draining and exiting with code 75" in err, err
    assert "Traceback" not in err, err


def test_a_busy_worker_notices_it_is_over_its_memory_limit(pg_url, pg_schema, site, logs):
    env = worker_env(site, pg_url, pg_schema, LEAK_CAP_MB="600")
    migrate(env)
    sql(pg_url, f"INSERT INTO \"{pg_schema}\".job (type) VALUES ('poison.leak')")
    args = ("--concurrency", "1", "--max-memory", "300MB", "--shutdown-timeout", "1")
    worker = start_worker(env, logs, "w", *args, plugin="relpoison")
    try:
        code = worker.wait(timeout=6)  # the leak reaches its 600 MB cap within ~2 s
    except subprocess.TimeoutExpired:
        worker.kill()
        raise AssertionError("the worker sat at 600 MB, twice its limit") from None
    assert code == EXIT_MEMORY


def _supervise(env: dict[str, str], logs: Path, url: str, schema: str, starts: int) -> list[int]:
    """Restart the worker whenever it exits (as PM2 would) while the leaking job is unfinished."""
    codes: list[int] = []
    worker: WorkerProc | None = None
    args = (
        "--concurrency",
        "2",
        "--max-memory",
        "300MB",
        "--shutdown-timeout",
        "1",
        "--poll-interval",
        "1",
    )
    deadline = time.monotonic() + 60
    while _leak_state(url, schema)[0] in ("pending", "running") and time.monotonic() < deadline:
        if worker is None or not worker.alive():
            if worker is not None:
                codes.append(worker.proc.returncode)
            if len(codes) == starts:
                return codes
            worker = start_worker(env, logs, f"w{len(codes)}", *args, plugin="relpoison")
        time.sleep(0.1)
    if worker is not None:
        try:  # the last worker may be on its way out already (exit 75 after the fail)
            codes.append(worker.proc.wait(timeout=15))
        except subprocess.TimeoutExpired:
            codes.append(worker.stop(timeout=30))
    return codes


def test_a_job_that_leaks_without_bound_ends_failed(pg_url, pg_schema, site, logs):
    env = worker_env(site, pg_url, pg_schema)
    migrate(env)
    sql(pg_url, f"INSERT INTO \"{pg_schema}\".job (type) VALUES ('poison.leak')")
    sql(
        pg_url,
        f'INSERT INTO "{pg_schema}".job (type, payload, max_attempts) '
        "SELECT 'flow.ok', '{\"seconds\": 0.2}', 5 FROM generate_series(1, 30)",
    )
    codes = _supervise(env, logs, pg_url, pg_schema, starts=3)
    status, attempts, error = _leak_state(pg_url, pg_schema)
    assert (status, attempts) == ("failed", 2), codes
    assert error is not None and "memory" in error.lower()
    assert codes[:2] == [EXIT_MEMORY, EXIT_MEMORY]
    assert statuses(pg_url, pg_schema)["completed"] == 30, "the other jobs flowed"
