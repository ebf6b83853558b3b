"""Cluster-wide limits with several `jobrunner run` processes on one database: a global
concurrency is never exceeded and is used, a rate holds over sliding windows, users take
turns, a 429 pauses the type for every worker, and kill -9 chaos breaks none of it."""

from __future__ import annotations

import http.server
import itertools
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rel_support import (
    Sampler,
    WorkerProc,
    jr,
    migrate,
    sql,
    start_worker,
    statuses,
    wait_until,
    worker_env,
)


def _workers(env, logs: Path, n: int, *args: str) -> list[WorkerProc]:
    return [start_worker(env, logs, f"w{i}", *args, plugin="rellimits") for i in range(n)]


def _stop(workers: list[WorkerProc]) -> None:
    for w in workers:
        if w.alive():
            w.term()
    for w in workers:
        if w.alive():
            assert w.wait(timeout=60) == 0, w.stderr()


def _enqueue(url: str, schema: str, job_type: str, n: int, payload: str = "{}") -> None:
    sql(
        url,
        f'INSERT INTO "{schema}".job (type, payload) '
        f"SELECT %s, %s::jsonb FROM generate_series(1, %s)",
        [job_type, payload, n],
    )


def _done(url: str, schema: str, n: int) -> bool:
    return statuses(url, schema).get("completed", 0) == n


def test_a_global_concurrency_is_never_exceeded_and_is_used(pg_url, pg_schema, site, logs):
    env = worker_env(site, pg_url, pg_schema)
    migrate(env)
    _enqueue(pg_url, pg_schema, "limits.hold", 30, '{"ms": 150}')
    workers = _workers(env, logs, 3, "--concurrency", "5")
    try:
        with Sampler(pg_url, pg_schema, "limits.hold") as by_default:
            wait_until(lambda: _done(pg_url, pg_schema, 30), 90, "the first 30 jobs", 0.1)
        # Raised at run time, without a restart: every worker obeys at its next claim.
        done = jr(env, "limits", "set", "limits.hold", "--concurrency", "7")
        assert done.returncode == 0, done.stderr
        _enqueue(pg_url, pg_schema, "limits.hold", 40, '{"ms": 150}')
        with Sampler(pg_url, pg_schema, "limits.hold") as overridden:
            wait_until(lambda: _done(pg_url, pg_schema, 70), 90, "the next 40 jobs", 0.1)
    finally:
        _stop(workers)
    assert max(by_default.counts) == 4  # the handler's default, across 15 slots
    assert max(overridden.counts) == 7


def test_a_rate_holds_over_every_sliding_window(pg_url, pg_schema, site, logs):
    env = worker_env(site, pg_url, pg_schema)
    migrate(env)
    assert jr(env, "limits", "set", "limits.quick", "--rate", "10/1s").returncode == 0
    _enqueue(pg_url, pg_schema, "limits.quick", 25)
    workers = _workers(env, logs, 3)
    try:
        wait_until(lambda: _done(pg_url, pg_schema, 25), 60, "the rate-limited jobs", 0.1)
    finally:
        _stop(workers)
    rows = sql(
        pg_url,
        f'SELECT extract(epoch FROM started_at) FROM "{pg_schema}".job ORDER BY started_at',
    )
    starts = [float(r[0]) for r in rows]
    for i, start in enumerate(starts):
        in_window = sum(1 for s in starts[i:] if s < start + 1.0)
        assert in_window <= 10, (i, in_window)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.099, min(gaps)  # evenly spaced: no burst at a window's edge


def test_users_take_turns(pg_url, pg_schema, site, logs):
    env = worker_env(site, pg_url, pg_schema)
    migrate(env)
    sql(
        pg_url,
        f'INSERT INTO "{pg_schema}".job (type, user_id) '
        "SELECT 'limits.quick', 'heavy' FROM generate_series(1, 1000)",
    )
    sql(
        pg_url,
        f'INSERT INTO "{pg_schema}".job (type, user_id) '
        "SELECT 'limits.quick', 'light' FROM generate_series(1, 10)",
    )
    workers = _workers(env, logs, 1, "--concurrency", "5")
    try:
        wait_until(lambda: _done(pg_url, pg_schema, 1010), 90, "every job", 0.1)
    finally:
        _stop(workers)
    order = [
        r[0]
        for r in sql(pg_url, f'SELECT user_id FROM "{pg_schema}".job ORDER BY started_at, turn, id')
    ]
    last_light = max(i for i, user in enumerate(order) if user == "light")
    assert last_light < 40, last_light  # not behind the heavy user's thousand


class Provider(http.server.BaseHTTPRequestHandler):
    """Answers the first request with 429 and Retry-After: 2, the rest with 200."""

    calls: list[tuple[float, int]] = []

    def do_GET(self) -> None:
        status = 429 if not self.calls else 200
        self.calls.append((time.time(), status))
        self.send_response(status)
        if status == 429:
            self.send_header("Retry-After", "2")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def provider() -> Iterator[str]:
    Provider.calls = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/generate"
    server.shutdown()


def test_a_429_pauses_the_type_for_every_worker(pg_url, pg_schema, site, logs, provider):
    env = worker_env(site, pg_url, pg_schema, API_URL=provider)
    migrate(env)
    _enqueue(pg_url, pg_schema, "limits.api", 8)
    workers = _workers(env, logs, 2)
    try:
        wait_until(lambda: _done(pg_url, pg_schema, 8), 60, "the API jobs", 0.1)
    finally:
        _stop(workers)
    first, *rest = Provider.calls
    assert first[1] == 429 and len(rest) == 8  # the rate-limited job ran again
    assert all(t >= first[0] + 2.0 for t, _ in rest), "a call came during the pause"
    attempts = sql(pg_url, f'SELECT max(attempts) FROM "{pg_schema}".job')[0][0]
    assert attempts == 1  # the 429 did not use an attempt


def test_limits_hold_under_kill_9_chaos(pg_url, pg_schema, site, logs):
    env = worker_env(site, pg_url, pg_schema)
    migrate(env)
    assert jr(env, "limits", "set", "limits.hold", "--concurrency", "3").returncode == 0
    _enqueue(pg_url, pg_schema, "limits.hold", 60, '{"ms": 250}')
    rng = random.Random(7)
    workers = _workers(env, logs, 3, "--concurrency", "4")
    kills = 0
    try:
        with Sampler(pg_url, pg_schema, "limits.hold") as sampled:
            deadline = time.monotonic() + 120
            while not _done(pg_url, pg_schema, 60):
                assert time.monotonic() < deadline, statuses(pg_url, pg_schema)
                time.sleep(1.0)
                if kills < 4:
                    victim = rng.randrange(len(workers))
                    workers[victim].kill()
                    kills += 1
                    workers[victim] = start_worker(
                        env, logs, f"r{kills}", "--concurrency", "4", plugin="rellimits"
                    )
    finally:
        _stop(workers)
    assert kills == 4
    assert max(sampled.counts) <= 3  # a dead worker's jobs count until they are rescued
    assert statuses(pg_url, pg_schema) == {"completed": 60}
