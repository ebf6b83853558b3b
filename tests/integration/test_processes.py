"""Several worker processes on one PostgreSQL table: no job runs twice at once, none is lost."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg

from jr_support import JOBRUNNER

PLUGIN = """
import os, time, anyio, jobrunner
plugin = jobrunner.Plugin("record")
LOG = os.environ["RECORD_LOG"]

@plugin.handler("record.run")
async def run(ctx):
    start = time.time()
    await anyio.sleep(ctx.payload["sleep"])
    line = f"{ctx.id} {start} {time.time()} {os.getpid()}\\n"
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, line.encode())
    os.close(fd)
    return {"pid": os.getpid()}
"""


def test_four_workers_share_one_table(pg_url, pg_schema, plugin_env, tmp_path: Path):
    log_file = tmp_path / "executions.log"
    env = plugin_env("record-plugin", "record", "record_plugin", PLUGIN)
    env.update(
        DATABASE_URL=pg_url,
        JOBRUNNER_SCHEMA=pg_schema,
        RECORD_LOG=str(log_file),
        JOBRUNNER_LOG_LEVEL="warning",
    )
    subprocess.run([JOBRUNNER, "migrate"], env=env, check=True, capture_output=True)
    jobs = 400
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            f'INSERT INTO "{pg_schema}".job (type, payload) '
            "SELECT 'record.run', json_build_object('sleep', 0.03 + (i %% 5) * 0.005) "
            "FROM generate_series(1, %s) AS i",
            [jobs],
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
    for worker in workers:
        _out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err.decode()

    runs: dict[int, list[tuple[float, float, int]]] = {}
    for line in log_file.read_text().splitlines():
        job_id, start, end, pid = line.split()
        runs.setdefault(int(job_id), []).append((float(start), float(end), int(pid)))
    assert len(runs) == jobs, "every job ran"
    assert all(len(r) == 1 for r in runs.values()), "no job ran twice"
    assert len({r[0][2] for r in runs.values()}) > 1, "the work was shared between processes"
    with psycopg.connect(pg_url) as conn:
        counts = dict(
            conn.execute(f'SELECT status, count(*) FROM "{pg_schema}".job GROUP BY status')
        )
        results = conn.execute(f'SELECT id, result FROM "{pg_schema}".job').fetchall()
    assert counts == {"completed": jobs}
    for job_id, result in results:
        assert result == {"pid": runs[job_id][0][2]}
