"""Several worker processes on one SQLite file: every job runs exactly once, none is lost,
no two executions of a job overlap; and wake-ups cross process boundaries."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import anyio
import pytest

from jobrunner import ClaimSlot, NewJob
from jobrunner._backend import Wakeup
from jobrunner._schema import migrate
from jobrunner._sqlite import SQLiteBackend
from jr_support import JOBRUNNER

PLUGIN = """
import os, time, anyio, jobrunner
plugin = jobrunner.Plugin("record")
LOG, READY = os.environ["RECORD_LOG"], os.environ["RECORD_READY"]

def append(path, line):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, line.encode())
    os.close(fd)

def record(ctx, start):
    append(LOG, f"{ctx.id} {ctx.attempt} {start} {time.time()} {os.getpid()}\\n")

@plugin.handler("record.run", max_attempts=3)
async def run(ctx):
    # Hold the first jobs until every worker has claimed some, so the work is shared.
    if not os.path.exists(READY):
        append(READY + ".pids", f"{os.getpid()}\\n")
        while not os.path.exists(READY):
            await anyio.sleep(0.01)
    start = time.time()
    await anyio.sleep(ctx.payload["sleep"])
    record(ctx, start)
    if ctx.payload["fail_first"] and ctx.attempt == 1:
        raise jobrunner.Retry("first attempt fails on purpose", delay=0)
    return {"pid": os.getpid()}
"""


def read_runs(log_file: Path) -> dict[int, list[tuple[int, float, float, int]]]:
    runs: dict[int, list[tuple[int, float, float, int]]] = {}
    for line in log_file.read_text().splitlines():
        job_id, attempt, start, end, pid = line.split()
        runs.setdefault(int(job_id), []).append((int(attempt), float(start), float(end), int(pid)))
    return runs


def wait_for_workers(ready: Path, count: int, workers: list[subprocess.Popen]) -> None:
    """Wait until `count` processes hold jobs, then let them all run."""
    pids = Path(f"{ready}.pids")
    deadline = time.monotonic() + 60
    while not pids.exists() or len(set(pids.read_text().split())) < count:
        assert time.monotonic() < deadline, "the workers did not all claim jobs"
        assert all(w.poll() is None for w in workers), "a worker exited early"
        time.sleep(0.02)
    ready.touch()


def test_four_workers_share_one_file(plugin_env, tmp_path: Path):
    db, log_file, ready = tmp_path / "jobs.db", tmp_path / "executions.log", tmp_path / "ready"
    env = plugin_env("record-plugin", "record", "record_plugin", PLUGIN)
    env.update(
        DATABASE_URL=f"sqlite:///{db}",
        RECORD_LOG=str(log_file),
        RECORD_READY=str(ready),
        JOBRUNNER_LOG_LEVEL="warning",
    )
    subprocess.run([JOBRUNNER, "migrate"], env=env, check=True, capture_output=True)
    jobs = 300
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO job (type, payload) VALUES ('record.run', ?)",
            [
                (json.dumps({"sleep": (i % 5) * 0.002, "fail_first": i % 7 == 0}),)
                for i in range(jobs)
            ],
        )
    workers = [
        subprocess.Popen(
            [JOBRUNNER, "run", "--plugin", "record", "--burst", "--concurrency", "20"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    try:
        wait_for_workers(ready, 4, workers)
        for worker in workers:
            _out, err = worker.communicate(timeout=120)
            assert worker.returncode == 0, err.decode()
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()

    runs = read_runs(log_file)
    assert len(runs) == jobs, "every job ran"
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, status, attempts, result, payload FROM job").fetchall()
    assert {status for _, status, _, _, _ in rows} == {"completed"}
    for job_id, _, attempts, result, payload in rows:
        executions = sorted(runs[job_id], key=lambda r: r[1])
        expected = [1, 2] if json.loads(payload)["fail_first"] else [1]
        assert [attempt for attempt, *_ in executions] == expected, (
            f"job {job_id} ran once per attempt"
        )
        assert attempts == len(expected)
        for earlier, later in itertools.pairwise(executions):
            assert earlier[2] <= later[1], f"job {job_id}: attempts overlapped"
        assert json.loads(result) == {"pid": executions[-1][3]}
    assert len({r[0][3] for r in runs.values()}) == 4, "the work was shared between processes"


def test_workers_starting_at_once_on_a_new_file_migrate_it_once(tmp_path: Path):
    db = tmp_path / "fresh.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}"}
    procs = [
        subprocess.Popen([JOBRUNNER, "migrate"], env=env, stderr=subprocess.PIPE) for _ in range(4)
    ]
    said = []
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        said.append(err.decode().strip())
    applied = "applied: 0001_initial, 0002_workers, 0003_traceparent"
    assert sorted(said) == ["already up to date"] * 3 + [applied]
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.anyio
async def test_wakeups_reach_a_listener_in_another_process(tmp_path: Path):
    db = tmp_path / "jobs.db"
    backend = SQLiteBackend(db)
    await migrate(backend)
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}", "JOBRUNNER_LOG_LEVEL": "warning"}
    got: list[Wakeup] = []

    def cli(*args: str) -> str:
        done = subprocess.run([JOBRUNNER, *args], env=env, capture_output=True, check=True)
        return done.stdout.decode()

    async def wait_for(wakeup: Wakeup) -> None:
        with anyio.fail_after(10):
            while wakeup not in got:
                await anyio.sleep(0.01)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(backend.listen, got.append)
            await wait_for(Wakeup())  # the listener's first wake-up
            got.clear()
            job_id = int(await anyio.to_thread.run_sync(cli, "enqueue", "t.x"))
            await wait_for(Wakeup())
            slot = ClaimSlot(type="t.x", free=1, max_attempts=1, lease=30)
            [job] = await backend.job_claim(worker="here", slots=[slot], limit=1, queues=None)
            await anyio.to_thread.run_sync(cli, "jobs", "cancel", str(job_id))
            await wait_for(Wakeup(cancel_job_id=job.id))
            tg.cancel_scope.cancel()
    finally:
        await backend.aclose()


@pytest.mark.anyio
async def test_an_enqueue_wakes_listeners_of_other_backends_on_the_same_file(tmp_path: Path):
    (tmp_path / "sub").mkdir()
    first = SQLiteBackend(tmp_path / "jobs.db")
    second = SQLiteBackend(tmp_path / "sub" / ".." / "jobs.db")  # the same file, spelt otherwise
    await migrate(first)
    # A poll interval far beyond the test's patience: only the in-process path can deliver.
    second.listen_interval = 3600
    got: list[Wakeup] = []
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(second.listen, got.append)
            with anyio.fail_after(10):
                while not got:
                    await anyio.sleep(0.01)
            got.clear()
            await first.job_insert_many([NewJob(type="t")])
            assert got == [Wakeup()]
            tg.cancel_scope.cancel()
    finally:
        await first.aclose()
        await second.aclose()
