"""Fixtures for the Cineqo plugin's tests: local stand-ins for external services, and a
harness that runs the plugin's handlers on a real worker against a real PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import attrs
import boto3
import psycopg
import pytest
from corpus import XIYOUJI, novel_bytes
from psycopg import sql
from psycopg.rows import dict_row
from standins.fal_server import FalStandIn, fal_stand_in
from standins.openai_fixture import openai_standin  # noqa: F401  (fixture)
from standins.openai_server import OpenAIStandIn
from standins.s3 import FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY, MotoS3, moto_s3

from jobrunner import Job, Runner
from jr_support import JOBRUNNER

# Fake keys the stand-ins accept; none of them may ever show up in a job row or a log.
FAKE_OPENAI_KEY = "sk-cineqo-test-7f3a9c2e5b1d4a6f"
FAKE_FAL_KEY = "fal-test-id-3c1e:fal-test-secret-8d2b7a4f9e6c"
SECRETS = (FAKE_OPENAI_KEY, FAKE_FAL_KEY, "fal-test-secret-8d2b7a4f9e6c")
R2_SECRETS = (FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY)
_SECRET_COLUMNS = ("payload", "result", "error", "checkpoint", "progress_message")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoS3]:
    """One moto S3 server for the session; tests isolate themselves with fresh buckets."""
    with moto_s3() as server:
        yield server


@pytest.fixture
def r2_env(moto_server: MotoS3) -> dict[str, str]:
    """R2_* variables for a fresh, empty bucket on the moto server (fake credentials)."""
    return moto_server.r2_env(moto_server.create_bucket())


@pytest.fixture
def fal_server() -> Iterator[FalStandIn]:
    """A fresh fal.ai queue stand-in; script it through ``fal_server.script``."""
    with fal_stand_in() as server:
        yield server


@attrs.define
class Cineqo:
    """The plugin on a real worker: an environment pointing at the stand-ins, and helpers.

    `env` is what the worker sees (Runner(env=…) in process, or a subprocess's environment);
    tests change it before starting a worker.
    """

    pg_url: str
    schema: str
    root: Path
    env: dict[str, str]
    openai: OpenAIStandIn
    fal: FalStandIn

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def novels(self) -> Path:
        """A directory `source` paths may point into."""
        return self.root / "novels"

    def novel_file(self, name: str, data: bytes) -> Path:
        path = self.novels / name
        path.write_bytes(data)
        return path

    @staticmethod
    def xiyouji(count: int) -> bytes:
        """The bytes of 西游记 (UTF-8, CRLF) up to the heading of 回 `count + 1`."""
        data = novel_bytes(XIYOUJI)
        numerals = "一二三四五六七八九十"
        heading = f"第{numerals[count]}回".encode()
        end = data.find(b"\r\n" + heading)
        assert end > 0 and count < 10
        return data[:end]

    def use_r2(self, r2: dict[str, str]) -> Any:
        """Store in the moto bucket of `r2` from now on; a boto3 client to look at it."""
        self.env.update(r2)
        del self.env["CINEQO_DATA_DIR"]
        return boto3.client(
            "s3",
            endpoint_url=r2["R2_ENDPOINT_URL"],
            region_name="auto",
            aws_access_key_id=r2["R2_ACCESS_KEY_ID"],
            aws_secret_access_key=r2["R2_SECRET_ACCESS_KEY"],
        )

    @staticmethod
    async def wait_until(condition: Callable[[], bool], *, timeout: float = 30) -> None:
        with anyio.fail_after(timeout):
            while not condition():
                await anyio.sleep(0.02)

    @asynccontextmanager
    async def runner(self, **settings: Any) -> AsyncIterator[Runner]:
        """An in-process worker running the cineqo plugin until the block ends."""
        settings.setdefault("poll_interval", 0.2)
        async with Runner(
            self.pg_url, schema=self.schema, plugins=["cineqo"], env=self.env, **settings
        ) as runner:
            yield runner

    async def run(self, job_type: str, payload: Any, *, timeout: float = 60) -> Job:
        """Enqueue one job, run a worker until it is final, and return it."""
        async with self.runner() as runner:
            job_id = await runner.enqueue(job_type, payload, user_id="u1")
            return await runner.wait_for(job_id, timeout=timeout)

    async def run_many(self, jobs: list[tuple[str, Any]], *, timeout: float = 60) -> list[Job]:
        """Enqueue the jobs as a web app does, unchecked (so a bad payload reaches the worker,
        which must refuse it), run a worker until they are final, and return them."""
        async with self.runner() as runner:
            async with Runner(self.pg_url, schema=self.schema, worker=False) as app:
                ids = [await app.enqueue(t, p, user_id="u1") for t, p in jobs]
            return [await runner.wait_for(job_id, timeout=timeout) for job_id in ids]

    # -- the job table, read directly ------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        query = sql.SQL("SELECT * FROM {}.job ORDER BY id").format(sql.Identifier(self.schema))
        with psycopg.connect(self.pg_url, row_factory=dict_row) as conn:
            return conn.execute(query).fetchall()

    def row(self, job_id: int) -> dict[str, Any]:
        return next(row for row in self.rows() if row["id"] == job_id)

    def execute(self, statement: str, *params: Any) -> None:
        query = sql.SQL(statement).format(job=sql.Identifier(self.schema, "job"))
        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            conn.execute(query, params)

    def assert_no_secrets(self, *texts: str) -> None:
        """No fake key in any job row column that holds data, nor in `texts` (logs)."""
        secrets = (*SECRETS, *R2_SECRETS)
        for row in self.rows():
            for column in _SECRET_COLUMNS:
                value = str(row.get(column))
                for secret in secrets:
                    assert secret not in value, f"job {row['id']} {column} holds a secret"
        for text in texts:
            for secret in secrets:
                assert secret not in text

    # -- the CLI and worker processes ------------------------------------------------------

    def process_env(self) -> dict[str, str]:
        # Only this test's services: never a developer's real keys, bucket or data directory.
        ours = ("OPENAI_", "FAL_", "R2_", "CINEQO_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
        env.update(self.env, DATABASE_URL=self.pg_url, JOBRUNNER_SCHEMA=self.schema)
        return env

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> str:
        out = subprocess.run(
            [JOBRUNNER, *args],
            env=env or self.process_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert out.returncode == 0, f"jobrunner {' '.join(args)} → {out.returncode}\n{out.stderr}"
        self.assert_no_secrets(out.stdout, out.stderr)
        return out.stdout

    def kill_worker_when(
        self, condition: Callable[[], bool], *, timeout: float = 30
    ) -> tuple[str, str]:
        """Start `jobrunner run` in a subprocess, SIGKILL it once `condition()` holds, then
        make its lease run out so a new worker can take the job over. Returns its output."""
        worker = subprocess.Popen(
            [JOBRUNNER, "run", "--plugin", "cineqo", "--poll-interval", "0.2"],
            env=self.process_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + timeout
            while not condition():
                assert worker.poll() is None, worker.communicate()[1]
                assert time.monotonic() < deadline, "the worker never reached the crash point"
                time.sleep(0.02)
        finally:
            worker.send_signal(signal.SIGKILL)
            out, err = worker.communicate(timeout=30)
        self.execute(
            "UPDATE {job} SET locked_until = now() - interval '1 second' WHERE status = 'running'"
        )
        return out, err


@pytest.fixture
def cineqo(
    pg_url: str,
    pg_schema: str,
    tmp_path: Path,
    openai_standin: OpenAIStandIn,  # noqa: F811  (the imported fixture)
    fal_server: FalStandIn,
) -> Cineqo:
    """The plugin's environment: OpenAI and fal stand-ins, local storage under tmp_path."""
    (tmp_path / "novels").mkdir()
    env = {
        "OPENAI_API_KEY": FAKE_OPENAI_KEY,
        "OPENAI_BASE_URL": openai_standin.base_url,
        "CINEQO_LLM_MODEL": "stand-in-model",
        "FAL_KEY": FAKE_FAL_KEY,
        "FAL_QUEUE_URL": fal_server.url,
        "CINEQO_DATA_DIR": str(tmp_path / "data"),
        "CINEQO_ALLOWED_ROOTS": f"{tmp_path / 'novels'}:{tmp_path / 'data'}",
        "CINEQO_FAL_POLL_INTERVAL": "0.01",
        "CINEQO_RETRY_DELAY": "0.05",
    }
    return Cineqo(
        pg_url=pg_url,
        schema=pg_schema,
        root=tmp_path,
        env=env,
        openai=openai_standin,
        fal=fal_server,
    )
