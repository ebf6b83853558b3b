"""A provider's 429 pauses its job type on every worker: two `jobrunner run --plugin cineqo`
processes on one PostgreSQL, the fal and OpenAI stand-ins answering 429 with `Retry-After: 2`
once. During the pause neither process sends the stand-in a single request; afterwards every
job completes, and none used an attempt for the 429.

The type's cluster-wide concurrency is set to 1 through the plugin's own settings
(CINEQO_IMAGE_CONCURRENCY, CINEQO_EXTRACT_CONCURRENCY), so no other job of the type can be in
flight when the 429 arrives: every request after it is one a worker chose to send."""

from __future__ import annotations

import datetime as dt
import email.utils
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
import psycopg
import pytest
from psycopg import sql
from standins.fal_server import Reply as FalReply
from standins.openai_server import Reply as LLMReply
from standins.openai_server import answer

from jobrunner import Job, LimitState, Runner
from jr_support import JOBRUNNER

pytestmark = pytest.mark.anyio

PAUSE = 2  # seconds, the stand-ins' Retry-After
JOBS = 4


@contextmanager
def two_workers(cineqo: Any, env: dict[str, str]) -> Iterator[list[subprocess.Popen[str]]]:
    """Two worker processes, started together; stopped (SIGTERM) and checked at the end."""
    process_env = cineqo.process_env() | env
    workers = [
        subprocess.Popen(
            [JOBRUNNER, "run", "--plugin", "cineqo", "--poll-interval", "0.2"],
            env=process_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        wait_for(lambda: registered(cineqo) == 2, workers, "both workers to start")
        yield workers
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            out, err = worker.communicate(timeout=60)
            cineqo.assert_no_secrets(out, err)
            assert worker.returncode == 0, err


def registered(cineqo: Any) -> int:
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(cineqo.schema, "job_workers"))
    with psycopg.connect(cineqo.pg_url) as conn:
        row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def wait_for(condition: Callable[[], bool], workers: list[Any], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        for worker in workers:
            assert worker.poll() is None, f"a worker exited: {worker.communicate()[1]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@asynccontextmanager
async def client(cineqo: Any) -> AsyncIterator[Runner]:
    """A runner that runs nothing (it migrates the schema): to enqueue, wait and look."""
    async with Runner(cineqo.pg_url, schema=cineqo.schema, worker=False) as runner:
        yield runner


async def run_jobs(runner: Runner, job_type: str, payloads: list[dict[str, Any]]) -> list[Job]:
    ids = [await runner.enqueue(job_type, p, user_id="u1") for p in payloads]
    return [await runner.wait_for(job_id, timeout=90) for job_id in ids]


async def limits_of(runner: Runner, job_type: str) -> LimitState:
    [state] = [s for s in await runner.limits() if s.type == job_type]
    return state


def assert_quiet_during_the_pause(arrivals: list[float], limited_at: float) -> None:
    after = [t - limited_at for t in arrivals if t > limited_at]
    assert after, "nothing was asked after the 429"
    early = [round(t, 3) for t in after if t < PAUSE]
    assert early == [], f"requests {early} s after the 429, during the {PAUSE} s pause"


async def test_a_fal_429_pauses_image_generation_on_both_workers(cineqo: Any) -> None:
    busy = FalReply(status=429, body={"detail": "Too many requests"}, headers={"Retry-After": "2"})
    cineqo.fal.script.submit_replies = [busy]
    env = {"CINEQO_IMAGE_CONCURRENCY": "1"}
    async with client(cineqo) as runner:
        with two_workers(cineqo, env):
            # The setting reached the handler's defaults, which the workers declared.
            assert (await limits_of(runner, "image.generate")).defaults.concurrency == 1
            payloads = [{"prompt": f"p{n}"} for n in range(JOBS)]
            jobs = await run_jobs(runner, "image.generate", payloads)
        reason = (await limits_of(runner, "image.generate")).pause_reason or ""

    submissions = cineqo.fal.submissions
    limited_at = submissions[0].at  # the stand-in answers its first submission with the 429
    assert_quiet_during_the_pause([r.at for r in cineqo.fal.requests], limited_at)
    assert [(j.status, j.attempts) for j in jobs] == [("completed", 1)] * JOBS, [
        j.error for j in jobs
    ]
    assert len(submissions) == JOBS + 1  # the refused one, then one paid request per job
    assert "fal submission failed with HTTP 429: Too many requests" in reason


async def test_an_openai_429_pauses_extraction_on_both_workers(cineqo: Any) -> None:
    busy = LLMReply(
        status=429,
        headers={"retry-after": "2"},
        error_body={"error": {"message": "Rate limit reached", "type": "requests"}},
    )
    cineqo.openai.script("孙悟空", busy, answer({"characters": []}))
    env = {"CINEQO_EXTRACT_CONCURRENCY": "1", "CINEQO_LLM_CONCURRENCY": "1"}
    texts = ["第一回 灵根\n\n孙悟空出世。", *(f"第一回 开篇\n\n故事{n}。" for n in range(JOBS - 1))]
    async with client(cineqo) as runner:
        with two_workers(cineqo, env):
            jobs = await run_jobs(runner, "character.extract", [{"text": t} for t in texts])
        reason = (await limits_of(runner, "character.extract")).pause_reason or ""

    asked = cineqo.openai.completions()
    monkey = [r for r in asked if "孙悟空" in r.user_text]
    assert_quiet_during_the_pause([r.at for r in asked], monkey[0].at)
    assert [(j.status, j.attempts) for j in jobs] == [("completed", 1)] * JOBS, [
        j.error for j in jobs
    ]
    assert len(monkey) == 2  # the 429, then the answer
    assert len(asked) == JOBS + 1
    assert "LLM service answered HTTP 429" in reason


async def wait_rate_limited(runner: Runner, job_id: int, job_type: str) -> float:
    """Seconds left of `job_type`'s pause once `job_id` is back to pending with no attempt."""
    while True:
        job = await runner.get_job(job_id)
        state = await limits_of(runner, job_type) if job.status == "pending" else None
        if state is not None and state.paused_until is not None and job.attempts == 0:
            assert job.run_at == state.paused_until  # the job runs again when the pause ends
            return (state.paused_until - dt.datetime.now(dt.UTC)).total_seconds()
        assert job.status in ("pending", "running"), job.error
        await anyio.sleep(0.02)


async def test_a_429_without_retry_after_pauses_for_the_configured_time(cineqo: Any) -> None:
    cineqo.env["CINEQO_RATE_LIMIT_PAUSE"] = "40s"
    cineqo.fal.script.submit_replies = [FalReply(status=429, body={"detail": "slow down"})]
    async with cineqo.runner() as runner:
        job_id = await runner.enqueue("image.generate", {"prompt": "p"}, user_id="u1")
        with anyio.fail_after(30):
            left = await wait_rate_limited(runner, job_id, "image.generate")
    assert 30 < left <= 40
    assert len(cineqo.fal.submissions) == 1


async def test_an_http_date_retry_after_from_openai_is_honoured(cineqo: Any) -> None:
    until = email.utils.formatdate(time.time() + 45, usegmt=True)
    busy = LLMReply(
        status=429,
        headers={"retry-after": until},
        error_body={"error": {"message": "Rate limit reached", "type": "tokens"}},
    )
    cineqo.openai.script("孙悟空", busy)
    async with cineqo.runner() as runner:
        text = "第一回\n\n孙悟空出世。"
        job_id = await runner.enqueue("character.extract", {"text": text}, user_id="u1")
        with anyio.fail_after(30):
            left = await wait_rate_limited(runner, job_id, "character.extract")
    assert 30 < left <= 45
    assert len(cineqo.openai.completions()) == 1
