"""jobrunner: `jobrunner --help` start time, and the RSS of an idle worker with the cineqo
plugin loaded (its OpenAI, fal and storage clients opened, pointed at nothing)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from benchmarks import _procfs
from benchmarks._scenarios import Result

JOBRUNNER = str(Path(sys.executable).with_name("jobrunner"))


async def run(dsn: str, jobs: int, **options: Any) -> Result:
    starts = []
    for _ in range(7):
        started = time.perf_counter()
        subprocess.run([JOBRUNNER, "--help"], check=True, capture_output=True)
        starts.append(time.perf_counter() - started)
    with tempfile.TemporaryDirectory() as data:
        env = dict(
            os.environ,
            DATABASE_URL=dsn,
            OPENAI_API_KEY="sk-benchmark",
            OPENAI_BASE_URL="http://127.0.0.1:9/v1",
            FAL_KEY="benchmark",
            CINEQO_DATA_DIR=data,
            JOBRUNNER_LOG_LEVEL="warning",
        )
        worker = subprocess.Popen(
            [JOBRUNNER, "run", "--plugin", "cineqo", "--plugin", "diag"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            await anyio.sleep(8)
            if worker.poll() is not None:
                raise RuntimeError(worker.stderr.read().decode() if worker.stderr else "")
            rss = _procfs.rss_mib(worker.pid)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    return {"--help s": statistics.median(starts), "RSS MiB, cineqo loaded": rss}
