"""Typed payloads on each backend: checked before the handler runs (a bad one fails once, on its
first attempt, naming the field), handed over validated, and checked at enqueue as well."""

from __future__ import annotations

import dataclasses
from typing import Literal

import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from jobrunner import JobContext, PayloadError, Plugin
from jr_support import Shout, shout

pytestmark = pytest.mark.anyio


class Resize(BaseModel):
    url: str
    width: int = Field(gt=0, le=4096)
    fit: Literal["cover", "contain"] = "cover"


@dataclasses.dataclass
class Point:
    x: float
    y: float


class Tag(TypedDict):
    name: str


def make_plugin() -> tuple[Plugin, list]:
    plugin = Plugin("typed")
    seen: list = []

    @plugin.handler("typed.resize", max_attempts=3, payload=Resize)
    async def resize(ctx: JobContext[Resize]) -> dict:
        seen.append(ctx.data)
        return {"url": ctx.data.url, "width": ctx.data.width, "raw": ctx.payload}

    @plugin.handler("typed.point", payload=Point)
    async def point(ctx: JobContext[Point]) -> float:
        seen.append(ctx.data)
        return ctx.data.x + ctx.data.y

    @plugin.handler("typed.tag", payload=Tag, run_in="thread")
    def tag(ctx: JobContext[Tag]) -> str:
        return ctx.data["name"]

    @plugin.handler("typed.model_result", payload=Resize)
    async def model_result(ctx: JobContext[Resize]) -> Resize:
        return ctx.data.model_copy(update={"width": ctx.data.width * 2})

    plugin.handler("typed.shout", run_in="process", payload=Shout)(shout)
    return plugin, seen


async def test_a_valid_payload_reaches_the_handler_as_its_type(engine):
    plugin, seen = make_plugin()
    async with engine.runner(plugins=[plugin]) as runner:
        a = await runner.enqueue("typed.resize", {"url": "https://x/1.png", "width": 300})
        b = await runner.enqueue("typed.point", {"x": 1, "y": 2.5})
        c = await runner.enqueue("typed.tag", {"name": "hero"})
        d = await runner.enqueue("typed.model_result", Resize(url="u", width=2))
        e = await runner.enqueue("typed.shout", {"text": "hi", "times": 2})
        jobs = [await runner.wait_for(i, timeout=30) for i in (a, b, c, d, e)]
    assert [j.status for j in jobs] == ["completed"] * 5, [j.error for j in jobs]
    assert jobs[0].result == {
        "url": "https://x/1.png",
        "width": 300,
        "raw": {"url": "https://x/1.png", "width": 300},
    }
    assert isinstance(seen[0], Resize) and seen[0].fit == "cover"
    assert isinstance(seen[1], Point)
    assert (jobs[1].result, jobs[2].result) == (3.5, "hero")
    assert jobs[3].payload == {"url": "u", "width": 2, "fit": "cover"}, "a model is stored as JSON"
    assert jobs[3].result == {"url": "u", "width": 4, "fit": "cover"}
    assert jobs[4].result == {"kind": "Shout", "shout": "HIHI"}


async def test_a_bad_payload_fails_once_naming_the_field(engine):
    plugin, seen = make_plugin()
    async with engine.runner(plugins=[plugin]) as runner:
        # Written by someone else (a web app's SQL, a runner without the plugin): the worker
        # is the one that checks it.
        async with engine.runner(worker=False) as other:
            bad = await other.enqueue("typed.resize", {"url": 5, "width": 0, "fit": "fill"})
        job = await runner.wait_for(bad, timeout=30)
    assert (job.status, job.attempts) == ("failed", 1), "not retried: the input is wrong"
    assert job.error == (
        "PayloadError: typed.resize payload: url: Input should be a valid string (got 5); "
        "width: Input should be greater than 0 (got 0); "
        "fit: Input should be 'cover' or 'contain' (got \"fill\")"
    )
    assert seen == [], "the handler never ran"


async def test_a_runner_with_the_handler_refuses_a_bad_payload_at_enqueue(engine):
    plugin, _ = make_plugin()
    async with engine.runner(plugins=[plugin], worker=False) as runner:
        with pytest.raises(PayloadError, match=r"^typed.point payload: y: Field required$"):
            await runner.enqueue("typed.point", {"x": 1})
        assert await runner.list_jobs() == [], "nothing was written"
