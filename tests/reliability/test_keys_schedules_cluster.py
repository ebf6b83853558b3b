"""Idempotency keys, schedules and budgets with several processes on one database: a 1 s
schedule run by 3 workers enqueues one job per tick (also across a kill -9), a tick missed
while no worker ran is enqueued once or skipped, 20 processes enqueueing one key make one
job, and a user over its budget is held while others run."""

from __future__ import annotations

import datetime as dt
import http.server
import itertools
import json
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
from rel_support import (
    Tick,
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

from jr_support import JOBRUNNER

EVERY = 1.0  # the schedules' interval, in seconds


def _jobs(url: str, schema: str) -> int:
    return sql(url, f'SELECT count(*) FROM "{schema}".job')[0][0]


def _db_now(url: str) -> dt.datetime:
    return sql(url, "SELECT now()")[0][0]


def _assert_one_job_per_tick(ticks: list[Tick], *, at_least: int) -> None:
    """No two jobs for one tick, and no tick left out between the first and the last."""
    times = [t.at for t in ticks]
    duplicates = sorted(t for t in set(times) if times.count(t) > 1)
    assert not duplicates, f"ticks enqueued more than once: {duplicates}"
    assert len(times) >= at_least, times
    assert times == sorted(times), "ticks were enqueued out of order"
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert all(abs(g - EVERY) < 0.001 for g in gaps), f"ticks not {EVERY:g}s apart: {gaps}"
    assert all(t.lag >= 0 for t in ticks), "a tick's job was enqueued before its time"


def _print_lag(label: str, ticks: list[Tick]) -> None:
    lags = [t.lag * 1000 for t in ticks]
    print(
        f"\ntick lag ({label}, {len(lags)} ticks): min {min(lags):.1f} ms, "
        f"median {statistics.median(lags):.1f} ms, max {max(lags):.1f} ms"
    )


def _workers(env: Mapping[str, str], logs: Path, n: int, plugin: str = "diag") -> list[WorkerProc]:
    return [start_worker(env, logs, f"w{i}", plugin=plugin) for i in range(n)]


def _stop(workers: list[WorkerProc]) -> None:
    for w in workers:
        if w.alive():
            w.term()
    for w in workers:
        if w.alive():
            assert w.wait(timeout=60) == 0, w.stderr()


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def _add_schedule(env: Mapping[str, str], name: str, *extra: str) -> None:
    _ok(jr(env, "schedules", "add", name, "--every", "1s", "--type", "diag.noop", *extra))


# -- schedules --------------------------------------------------------------------------


def test_three_workers_enqueue_each_tick_of_a_schedule_once(pg_url, pg_schema, site, logs):
    env = worker_env(site, pg_url, pg_schema)
    migrate(env)
    _add_schedule(env, "tick")
    workers = _workers(env, logs, 3)
    try:
        wait_until(
            lambda: len(schedule_ticks(pg_url, pg_schema, "tick")) >= 10, 40, "ten ticks", 0.2
        )
    finally:
        _stop(workers)
    ticks = schedule_ticks(pg_url, pg_schema, "tick")
    _assert_one_job_per_tick(ticks, at_least=10)
    assert _jobs(pg_url, pg_schema) == len(ticks)  # nothing but the ticks' jobs
    # The ticks' jobs ran as they came, so their keys were free again: a second enqueue of a
    # tick would have made a second job, not been folded into the first by its key.
    assert statuses(pg_url, pg_schema).get("completed", 0) >= len(ticks) - 2
    [listed] = json.loads(_ok(jr(env, "schedules", "list", "--json")))
    assert listed["last_job_id"] == ticks[-1].job_id
    assert dt.datetime.fromisoformat(listed["last_run_at"]) == ticks[-1].at
    _print_lag("3 workers", ticks)


def _until_next_tick(url: str, schema: str, name: str) -> float:
    rows = sql(
        url,
        f'SELECT extract(epoch FROM next_run_at - now()) FROM "{schema}".job_schedules '
        "WHERE name = %s",
        [name],
    )
    return max(float(rows[0][0] or 0), 0.0)


def test_a_kill_9_during_a_tick_neither_loses_nor_repeats_one(pg_url, pg_schema, site, logs):
    env = worker_env(site, pg_url, pg_schema)
    migrate(env)
    _add_schedule(env, "tick")
    workers = _workers(env, logs, 3)
    try:
        wait_until(
            lambda: len(schedule_ticks(pg_url, pg_schema, "tick")) >= 2, 40, "the first ticks"
        )
        for victim in range(3):  # each worker once, just as the workers take a tick
            time.sleep(_until_next_tick(pg_url, pg_schema, "tick") + 0.002)
            workers[victim].kill()
            workers[victim] = start_worker(env, logs, f"r{victim}", plugin="diag")
            time.sleep(0.6)
        restarted = _db_now(pg_url)
        wait_until(
            lambda: sum(t.at > restarted for t in schedule_ticks(pg_url, pg_schema, "tick")) >= 3,
            40,
            "ticks after the restarts",
            0.2,
        )
        assert all(w.alive() for w in workers), [w.stderr() for w in workers]
    finally:
        _stop(workers)
    ticks = schedule_ticks(pg_url, pg_schema, "tick")
    _assert_one_job_per_tick(ticks, at_least=8)
    _print_lag("3 workers, kill -9", ticks)


def test_a_missed_tick_is_enqueued_once_or_skipped(pg_url, pg_schema, site, logs):
    env = worker_env(site, pg_url, pg_schema)
    migrate(env)
    _add_schedule(env, "once", "--missed", "once")
    _add_schedule(env, "skip", "--missed", "skip")
    # No worker ran for the last 10 minutes: about 600 ticks of each were missed.
    sql(pg_url, f"UPDATE \"{pg_schema}\".job_schedules SET next_run_at = now() - interval '10m'")
    stale = dict(sql(pg_url, f'SELECT name, next_run_at FROM "{pg_schema}".job_schedules'))
    started = _db_now(pg_url)
    workers = _workers(env, logs, 2)  # both start up together: one of them takes the tick

    def later(name: str) -> list[Tick]:
        return [t for t in schedule_ticks(pg_url, pg_schema, name) if t.at >= started]

    try:
        wait_until(
            lambda: len(later("once")) >= 3 and len(later("skip")) >= 3, 40, "later ticks", 0.2
        )
    finally:
        _stop(workers)
    for name in ("once", "skip"):
        ticks = schedule_ticks(pg_url, pg_schema, name)
        missed = [t for t in ticks if t.at < started]
        assert len(missed) == (1 if name == "once" else 0), (name, missed)
        for t in missed:  # one of the missed ticks, enqueued at start-up
            assert stale[name] <= t.at < started and t.created_at >= started, t
        rest = [t for t in ticks if t.at >= started]
        _assert_one_job_per_tick(rest, at_least=3)
        # The ticks after start-up keep the schedule's rhythm (whole seconds from the old one).
        offset = (rest[0].at - stale[name]).total_seconds()
        assert abs(offset - round(offset)) < 0.001, offset
    assert _jobs(pg_url, pg_schema) == sum(len(schedule_ticks(pg_url, pg_schema, n)) for n in stale)


# -- idempotency keys -------------------------------------------------------------------

# Opens a runner, says it is ready, waits for the go file, then enqueues: the 20 inserts
# land within milliseconds of each other, not spread over the processes' start-up.
AT_THE_GO = """
import sys, time
from pathlib import Path
import anyio
from jobrunner import Runner

async def main():
    ready, go, key = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    async with Runner(worker=False, auto_migrate=False) as runner:
        ready.touch()
        while not go.exists():
            time.sleep(0.002)
        print(await runner.enqueue("diag.noop", key=key), flush=True)

anyio.run(main)
"""
PROCESSES = 20


def _outputs(procs: list[subprocess.Popen[str]]) -> list[str]:
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        outs.append(out.strip())
    return outs


def _at_the_go(env: Mapping[str, str], tmp: Path, key: str) -> list[str]:
    tmp.mkdir()
    go = tmp / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", AT_THE_GO, str(tmp / f"ready{i}"), str(go), key],
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    try:
        wait_until(lambda: len(list(tmp.glob("ready*"))) == PROCESSES, 60, "ready", 0.02)
    except AssertionError:
        for p in procs:
            p.kill()
        raise
    go.touch()
    return _outputs(procs)


def _with_the_cli(env: Mapping[str, str], key: str) -> list[str]:
    cmd = [JOBRUNNER, "enqueue", "diag.noop", "--key", key]
    procs = [
        subprocess.Popen(
            cmd, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(PROCESSES)
    ]
    return _outputs(procs)


@attrs.frozen
class Db:
    """One backend, as the enqueueing processes and the test see it."""

    env: dict[str, str]
    query: Any  # (sql with %s placeholders, params) -> rows


@pytest.fixture(params=["postgresql", "sqlite"])
def db(request, tmp_path) -> Db:
    if request.param == "postgresql":
        url, schema = request.getfixturevalue("pg_url"), request.getfixturevalue("pg_schema")
        env = worker_env(None, url, schema)

        def query(text: str, params: list[Any]) -> list[Any]:
            return sql(url, text.replace("{job}", f'"{schema}".job'), params)

        return Db(env=env, query=query)
    path = tmp_path / "jobs.db"
    env = worker_env(None, f"sqlite:///{path}", "public")

    def lite(text: str, params: list[Any]) -> list[Any]:
        with sqlite3.connect(path, timeout=30) as conn:
            return conn.execute(text.replace("{job}", "job").replace("%s", "?"), params).fetchall()

    return Db(env=env, query=lite)


def test_twenty_processes_enqueueing_one_key_make_one_job(db, tmp_path):
    migrate(db.env)
    key = "checkout:order-42"
    printed = _at_the_go(db.env, tmp_path / "first", key)
    assert len(set(printed)) == 1, printed
    [(job_id, status)] = db.query("SELECT id, status FROM {job} WHERE unique_key = %s", [key])
    assert printed[0] == str(job_id) and status == "pending"
    # Once that job has ended the key is free: 20 `jobrunner enqueue --key` make one more.
    db.query("UPDATE {job} SET status = 'completed' WHERE id = %s", [job_id])
    again = _with_the_cli(db.env, key)
    assert len(set(again)) == 1 and again[0] != str(job_id), again
    rows = db.query("SELECT id, status FROM {job} WHERE unique_key = %s ORDER BY id", [key])
    assert rows == [(job_id, "completed"), (int(again[0]), "pending")]
    assert db.query("SELECT count(*) FROM {job}", []) == [(2,)]


# -- budgets ----------------------------------------------------------------------------


class LLM(http.server.BaseHTTPRequestHandler):
    """A stand-in chat-completions API: every answer says it spent TOKENS tokens."""

    TOKENS = 10
    calls: list[str | None] = []  # the user of each request

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.calls.append(body.get("user"))
        answer = json.dumps(
            {
                "object": "chat.completion",
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "a stand-in answer"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": self.TOKENS},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def llm() -> Iterator[str]:
    LLM.calls = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), LLM)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/chat/completions"
    server.shutdown()


def _enqueue_llm(url: str, schema: str, user: str, n: int) -> list[int]:
    rows = sql(
        url,
        f'INSERT INTO "{schema}".job (type, user_id, payload) '
        "SELECT 'budget.llm', %s, '{\"prompt\": \"hello\"}'::jsonb FROM generate_series(1, %s) "
        "RETURNING id",
        [user, n],
    )
    return sorted(r[0] for r in rows)


def _by_status(url: str, schema: str, user: str) -> dict[str, int]:
    rows = sql(
        url,
        f'SELECT status, count(*) FROM "{schema}".job WHERE user_id = %s GROUP BY status',
        [user],
    )
    return dict(rows)


def test_a_user_over_budget_waits_while_others_run(pg_url, pg_schema, site, logs, llm):
    env = worker_env(site, pg_url, pg_schema, LLM_URL=llm, HOLD_AFTER="1.5")
    migrate(env)
    _ok(jr(env, "budgets", "set", "--user", "alice", "--daily", "10", "--unit", "tokens"))
    _enqueue_llm(pg_url, pg_schema, "alice", 4)
    _enqueue_llm(pg_url, pg_schema, "bob", 1)
    workers = _workers(env, logs, 2, plugin="relbudget")
    try:
        # One job per user at a time: alice's first spends her 10 tokens before it ends
        # (the usage is written within a second; the handler runs 1.5 s after recording it).
        wait_until(
            lambda: _by_status(pg_url, pg_schema, "alice").get("completed") == 1,
            30,
            "alice's first job",
        )
        # Bob is not held: his jobs, enqueued now, run one after another meanwhile.
        _enqueue_llm(pg_url, pg_schema, "bob", 2)
        wait_until(
            lambda: _by_status(pg_url, pg_schema, "bob") == {"completed": 3}, 30, "bob's jobs"
        )
        assert _by_status(pg_url, pg_schema, "alice") == {"completed": 1, "pending": 3}
        assert LLM.calls.count("alice") == 1 and LLM.calls.count("bob") == 3
        [(held,)] = sql(
            pg_url,
            f'SELECT min(id) FROM "{pg_schema}".job WHERE user_id = %s AND status = %s',
            ["alice", "pending"],
        )
        shown = _ok(jr(env, "jobs", "show", str(held)))
        assert "user alice is over its daily budget of tokens: 10 of 10" in shown, shown
        assert "over its daily budget" in _ok(jr(env, "status"))
        usage = json.loads(_ok(jr(env, "usage", "--user", "alice", "--json")))
        assert [(u["unit"], u["amount"]) for u in usage] == [("tokens", 10.0)]
        # Raised: the held jobs run, without a restart.
        _ok(jr(env, "budgets", "set", "--user", "alice", "--daily", "100", "--unit", "tokens"))
        wait_until(
            lambda: _by_status(pg_url, pg_schema, "alice") == {"completed": 4},
            30,
            "alice's held jobs",
        )
    finally:
        _stop(workers)
    assert LLM.calls.count("alice") == 4
    spent = sql(pg_url, f'SELECT usage FROM "{pg_schema}".job WHERE user_id = %s', ["alice"])
    assert [u for (u,) in spent] == [{"tokens": 10.0}] * 4
    usage = json.loads(_ok(jr(env, "usage", "--user", "alice", "--json")))
    assert [(u["unit"], u["amount"]) for u in usage] == [("tokens", 40.0)]
