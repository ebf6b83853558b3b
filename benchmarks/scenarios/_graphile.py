"""graphile-worker adapter: the worker is Node (``benchmarks/node/worker.js``).

Jobs are added from Python with the very SQL that graphile-worker's own ``addJob`` and
``addJobs`` send (``graphile_worker.add_job(…)`` and ``add_jobs(array(select
json_populate_recordset(null::graphile_worker.job_spec, $1::json)), false)``), over psycopg.
The schema is installed by ``worker.js --migrate`` (graphile-worker's ``runMigrations``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import attrs
import psycopg

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
WORKER_JS = NODE_DIR / "worker.js"
TASK = "bench"
ADD_JOB = "SELECT graphile_worker.add_job(identifier => %s::text, payload => %s::json)"
ADD_JOBS = """
SELECT count(*) FROM graphile_worker.add_jobs(
  array(SELECT json_populate_recordset(null::graphile_worker.job_spec, %s::json)),
  false
)
"""
UNFINISHED = "SELECT count(*) FROM graphile_worker._private_jobs"


class NodeMissingError(RuntimeError):
    """node or benchmarks/node/node_modules is missing: run benchmarks/setup.sh."""


def node_binary() -> str:
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "graphile-worker").is_dir():
        raise NodeMissingError(NodeMissingError.__doc__)
    return node


@attrs.frozen
class GraphileEnqueuer:
    conn: psycopg.AsyncConnection[Any]

    async def enqueue(self, payload: dict[str, Any]) -> None:
        await self.conn.execute(ADD_JOB, (TASK, json.dumps(payload)), prepare=True)

    async def enqueue_many(self, count: int) -> None:
        specs = json.dumps([{"identifier": TASK, "payload": {}}] * count)
        await self.conn.execute(ADD_JOBS, (specs,))


@attrs.frozen(kw_only=True)
class GraphileAdapter:
    name: str = "graphile-worker"
    jobs_cap: int | None = None

    async def install(self, dsn: str) -> None:
        command = [node_binary(), str(WORKER_JS), "--dsn", dsn, "--migrate"]
        result = await anyio.run_process(command, check=False, stderr=subprocess.PIPE)
        if result.returncode:
            raise RuntimeError(f"graphile-worker migrations failed: {result.stderr.decode()}")

    @asynccontextmanager
    async def enqueuer(self, dsn: str) -> AsyncIterator[GraphileEnqueuer]:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            yield GraphileEnqueuer(conn)

    def worker_command(
        self, dsn: str, *, handler: str, expect: int, concurrency: int | None
    ) -> list[str]:
        command = [node_binary(), str(WORKER_JS), "--dsn", dsn, "--handler", handler]
        command += ["--expect", str(expect)]
        if concurrency:
            command += ["--concurrency", str(concurrency)]
        return command

    async def unfinished(self, dsn: str) -> int:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            cur = await conn.execute(UNFINISHED)
            row = await cur.fetchone()
        assert row is not None
        return int(row[0])
