"""jobrunner on its embedded SQLite backend: no-op drain with one worker process, and with
four worker processes sharing one file (`jobrunner run --burst --concurrency 100`)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._scenarios import Result
from jobrunner import NewJob, Runner

JOBRUNNER = str(Path(sys.executable).with_name("jobrunner"))


async def _fill(url: str, count: int) -> None:
    async with Runner(url, worker=False, env={}) as runner:
        for start in range(0, count, 10_000):
            batch = min(10_000, count - start)
            await runner.enqueue_many([NewJob(type="diag.noop") for _ in range(batch)])


def _drain(url: str, processes: int) -> float:
    env = dict(os.environ, DATABASE_URL=url, JOBRUNNER_LOG_LEVEL="warning")
    started = time.perf_counter()
    workers = [
        subprocess.Popen(
            [JOBRUNNER, "run", "--plugin", "diag", "--burst", "--concurrency", "100"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(processes)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=600)
        if worker.returncode != 0:
            raise RuntimeError(err.decode())
    return time.perf_counter() - started


async def run(dsn: str, jobs: int, **options: Any) -> Result:
    out: Result = {}
    for processes in (1, 4):
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/jobs.db"
            await _fill(url, jobs)
            seconds = _drain(url, processes)
            out[f"jobs/s, {processes} process{'es' if processes > 1 else ''}"] = jobs / seconds
    out["note"] = "SQLite: process start-up included in the timed span"
    return out
