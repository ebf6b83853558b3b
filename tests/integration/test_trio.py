"""jobrunner on SQLite under trio: the backend uses only anyio, so a trio app can embed it."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
import trio

from jobrunner import JobContext, Plugin, Retry, Runner
from jobrunner._backend import Wakeup
from jobrunner._schema import migrate
from jobrunner._sqlite import SQLiteBackend

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


def make_plugin() -> tuple[Plugin, dict]:
    plugin = Plugin("tr")
    seen: dict = {"under_trio": [], "started": anyio.Event()}

    @plugin.handler("tr.double")
    async def double(ctx: JobContext):
        trio.lowlevel.current_task()  # raises RuntimeError outside trio
        seen["under_trio"].append(ctx.id)
        await anyio.sleep(0.001)
        return ctx.payload["n"] * 2

    @plugin.handler("tr.once_more", max_attempts=2)
    async def once_more(ctx: JobContext):
        if ctx.attempt == 1:
            raise Retry("again", delay=0.01)
        return ctx.attempt

    @plugin.handler("tr.block")
    async def block(ctx: JobContext):
        seen["started"].set()
        await anyio.sleep(60)

    return plugin, seen


async def test_a_runner_on_sqlite_runs_jobs_under_trio(tmp_path: Path):
    plugin, seen = make_plugin()
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    async with Runner(url, plugins=[plugin], env={}, completion_interval=0.005) as runner:
        ids = [await runner.enqueue("tr.double", {"n": n}) for n in range(20)]
        jobs = [await runner.wait_for(job_id, timeout=20) for job_id in ids]
        retried = await runner.wait_for(await runner.enqueue("tr.once_more"), timeout=20)
        blocked = await runner.enqueue("tr.block")
        with anyio.fail_after(20):
            await seen["started"].wait()
        await runner.cancel_job(blocked)
        cancelled = await runner.wait_for(blocked, timeout=20)
    assert [j.result for j in jobs] == [n * 2 for n in range(20)]
    assert {j.status for j in jobs} == {"completed"}
    assert (retried.status, retried.attempts, retried.result) == ("completed", 2, 2)
    assert cancelled.status == "cancelled"
    assert sorted(seen["under_trio"]) == sorted(ids)


async def test_the_backend_listens_and_wakes_under_trio(tmp_path: Path):
    backend = SQLiteBackend(tmp_path / "jobs.db")
    await migrate(backend)
    got: list[Wakeup] = []
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(backend.listen, got.append)
            with anyio.fail_after(10):
                while not got:
                    await anyio.sleep(0.01)
            got.clear()
            await backend.notify(Wakeup(cancel_job_id=7))
            assert got == [Wakeup(cancel_job_id=7)]
            tg.cancel_scope.cancel()
    finally:
        await backend.aclose()
