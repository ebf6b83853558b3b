"""`jobrunner.testing.run_job`: one attempt through the worker's own path, no database; and
`assert_enqueued`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from unittest.mock import ANY

import anyio
import pytest
from pydantic import BaseModel

from jobrunner import (
    ConfigurationError,
    Job,
    JobContext,
    JobStatus,
    OutcomeKind,
    PermanentFailure,
    Plugin,
    Retry,
    RetryPolicy,
    WaitForChildren,
)
from jobrunner.testing import JobRun, Progress, assert_enqueued, run_job
from jr_support import Shout, block_thread, shout

pytestmark = pytest.mark.anyio


class Split(BaseModel):
    novel_id: int
    parts: int = 2


def make_plugin() -> tuple[Plugin, dict]:
    plugin = Plugin("t")
    opened: dict = {"open": 0, "closed": 0}

    @plugin.resource("counter")
    async def counter(env) -> AsyncIterator[dict]:
        opened["open"] += 1
        yield {"start": int(env["START"])}
        opened["closed"] += 1

    @plugin.handler("t.split", payload=Split)
    async def split(ctx: JobContext[Split]) -> dict:
        ctx.progress(0.25, "reading")
        await ctx.save_checkpoint("read", True)
        ids = [await ctx.enqueue("t.part", {"novel_id": ctx.data.novel_id, "part": 0})]
        ids += await ctx.enqueue_many(
            [
                _new("t.part", {"novel_id": ctx.data.novel_id, "part": i})
                for i in range(1, ctx.data.parts)
            ]
        )
        ctx.progress(2.0, "done")  # clamped to 1, as stored
        return {"children": ids, "seen": [c.id for c in await ctx.children()]}

    @plugin.handler("t.flaky", retry=RetryPolicy(base=3.0))
    async def flaky(ctx: JobContext) -> None:
        raise RuntimeError(f"broke on attempt {ctx.attempt}")

    @plugin.handler("t.later")
    async def later(ctx: JobContext) -> None:
        raise Retry("rate limited", delay=42)

    @plugin.handler("t.never")
    async def never(ctx: JobContext) -> None:
        raise PermanentFailure("cannot work")

    @plugin.handler("t.slow", timeout=0.05)
    async def slow(ctx: JobContext) -> None:
        await anyio.sleep(60)

    @plugin.handler("t.set")
    async def bad_result(ctx: JobContext) -> set:
        return {1, 2}

    @plugin.handler("t.parent")
    async def parent(ctx: JobContext) -> list[str]:
        if "started" not in ctx.checkpoint:
            await ctx.save_checkpoint("started", True)
            await ctx.enqueue("t.part", {"n": 1})
            raise WaitForChildren(recheck=30)
        return [c.status for c in await ctx.children()]

    @plugin.handler("t.count", requires=["counter"])
    async def count(ctx: JobContext) -> int:
        return ctx.resource("counter")["start"] + 1

    plugin.handler("t.thread", run_in="thread")(block_thread)
    plugin.handler("t.shout", run_in="process", payload=Shout)(shout)
    return plugin, opened


def _new(type: str, payload: dict):
    from jobrunner import NewJob

    return NewJob(type=type, payload=payload)


async def test_a_completed_run_reports_result_progress_checkpoint_and_children():
    plugin, _ = make_plugin()
    run = await run_job(plugin, "t.split", {"novel_id": 7, "parts": 3}, user_id="u1", job_id=10)
    assert isinstance(run, JobRun)
    assert (run.kind, run.status, run.error) == (OutcomeKind.COMPLETED, JobStatus.COMPLETED, None)
    assert run.result == {"children": [11, 12, 13], "seen": [11, 12, 13]}
    assert run.progress == (Progress(0.25, "reading"), Progress(1.0, "done"))
    assert run.checkpoint == {"read": True}
    assert [(j.type, j.payload["part"], j.parent_id, j.user_id) for j in run.enqueued] == [
        ("t.part", 0, 10, "u1"),
        ("t.part", 1, 10, "u1"),
        ("t.part", 2, 10, "u1"),
    ]
    assert run.job.payload == {"novel_id": 7, "parts": 3}
    assert (run.job.id, run.job.attempts, run.job.max_attempts) == (10, 1, 3)


async def test_a_failure_says_whether_it_would_be_retried():
    plugin, _ = make_plugin()
    first = await run_job(plugin, "t.flaky")
    assert (first.kind, first.status) == (OutcomeKind.RETRIED, JobStatus.PENDING)
    assert first.delay == 3.0, "the backoff of attempt 1, without its random shortening"
    assert first.error == "RuntimeError: broke on attempt 1"
    assert isinstance(first.exception, RuntimeError)
    last = await run_job(plugin, "t.flaky", attempt=3)
    assert (last.kind, last.delay, last.error) == (
        OutcomeKind.FAILED,
        None,
        "RuntimeError: broke on attempt 3",
    )
    later = await run_job(plugin, "t.later")
    assert (later.kind, later.delay, later.exception) == (OutcomeKind.RETRIED, 42, None)
    never = await run_job(plugin, "t.never", max_attempts=5)
    assert (never.kind, never.error) == (OutcomeKind.FAILED, "PermanentFailure: cannot work")


async def test_payload_checks_timeouts_and_results_go_the_worker_s_way():
    plugin, _ = make_plugin()
    bad = await run_job(plugin, "t.split", {"novel_id": "seven"})
    assert bad.kind is OutcomeKind.FAILED, "a bad payload is not retried"
    assert bad.error == (
        "PayloadError: t.split payload: novel_id: Input should be a valid integer, unable to "
        'parse string as an integer (got "seven")'
    )
    assert bad.progress == () and bad.enqueued == (), "the handler never ran"
    slow = await run_job(plugin, "t.slow")
    assert (slow.kind, slow.error) == (
        OutcomeKind.RETRIED,
        "TimeoutError: t.slow did not finish within its 0.05s timeout",
    )
    not_json = await run_job(plugin, "t.set")
    assert not_json.kind is OutcomeKind.FAILED
    assert not_json.error.startswith("PermanentFailure: result is not JSON-serialisable")


async def test_thread_and_process_handlers_run_where_they_asked():
    plugin, _ = make_plugin()
    thread = await run_job(plugin, "t.thread", {"seconds": 0})
    assert (thread.result, thread.progress) == ("woke", (Progress(1.0, "slept in a thread"),))
    process = await run_job(plugin, "t.shout", {"text": "hey", "times": 2})
    assert process.result == {"kind": "Shout", "shout": "HEYHEY"}


async def test_a_parent_parks_then_resumes_with_its_children():
    plugin, _ = make_plugin()
    parked = await run_job(plugin, "t.parent")
    assert (parked.kind, parked.status, parked.delay) == (
        OutcomeKind.WAITING,
        JobStatus.PENDING,
        30,
    )
    assert_enqueued(parked, "t.part", {"n": 1}, count=1)
    done_child = Job(id=2, type="t.part", parent_id=1, status=JobStatus.COMPLETED)
    resumed = await run_job(plugin, "t.parent", checkpoint=parked.checkpoint, children=[done_child])
    assert (resumed.kind, resumed.result) == (OutcomeKind.COMPLETED, ["completed"])


async def test_resources_are_given_or_opened_from_the_plugin_with_env():
    plugin, opened = make_plugin()
    with pytest.raises(ConfigurationError, match=r"t.count requires the resources \['counter'\]"):
        await run_job(plugin, "t.count")
    assert (await run_job(plugin, "t.count", resources={"counter": {"start": 1}})).result == 2
    assert opened == {"open": 0, "closed": 0}
    assert (await run_job(plugin, "t.count", env={"START": "41"})).result == 42
    assert opened == {"open": 1, "closed": 1}, "opened for the run, closed after it"


async def test_unknown_job_types_and_handlers_are_clear_errors():
    plugin, _ = make_plugin()
    with pytest.raises(ConfigurationError, match=r"plugin t has no job type 't.nope' \(it has: "):
        await run_job(plugin, "t.nope")
    with pytest.raises(ConfigurationError, match="which job type"):
        await run_job(plugin)
    handler = plugin.handlers["t.never"]
    assert (await run_job(handler)).kind is OutcomeKind.FAILED


async def test_assert_enqueued_finds_or_lists_what_was_enqueued():
    plugin, _ = make_plugin()
    run = await run_job(plugin, "t.split", {"novel_id": 7, "parts": 2})
    assert len(assert_enqueued(run, "t.part")) == 2
    assert_enqueued(run, "t.part", {"novel_id": 7, "part": ANY}, count=2)
    [one] = assert_enqueued(run, "t.part", {"novel_id": 7, "part": 1})
    assert one.parent_id == 1
    with pytest.raises(AssertionError) as caught:
        assert_enqueued(run, "t.part", {"novel_id": 8, "part": ANY})
    assert str(caught.value) == (
        "expected at least one t.part job with payload {'novel_id': 8, 'part': <ANY>}, found 0; "
        'enqueued:\n  t.part {"novel_id": 7, "part": 0}\n  t.part {"novel_id": 7, "part": 1}'
    )
    with pytest.raises(AssertionError, match="expected 3 t.part job, found 2"):
        assert_enqueued(run, "t.part", count=3)


async def test_run_job_opens_no_database(tmp_path, monkeypatch):
    """No file, no connection: a handler's unit test runs in the test's own event loop."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    plugin, _ = make_plugin()
    assert (await run_job(plugin, "t.split", {"novel_id": 1})).kind is OutcomeKind.COMPLETED
    assert list(tmp_path.iterdir()) == []
