"""A user's big `novel.process` does not starve another user: its children carry the parent's
`user_id`, so the core's fair claiming lets a second user's image job go before the portraits
the first user's pipeline has still waiting (on a real worker and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from standins.openai_server import answer

from jobrunner import Job, Runner

pytestmark = pytest.mark.anyio

NAMES = ["张三", "李四", "王五", "赵六", "钱七", "孙八", "周九", "吴十"]
TEXT = "\n\n".join(
    f"第{n}回 相会\n\n" + "".join(f"{name}来了，{name}坐下。" for name in NAMES) for n in "一二三"
)


def cast(_body: dict[str, Any]) -> Any:
    fields = ("gender", "age", "appearance", "clothing", "personality", "role")
    return answer(
        {
            "characters": [
                {
                    "name": name,
                    "aliases": [],
                    "first_chapter": 1,
                    "visual_prompt": f"portrait of {name}",
                    **dict.fromkeys(fields),
                }
                for name in NAMES
            ]
        }
    )


async def portraits_of(runner: Runner, parent_id: int) -> list[Job]:
    return [c for c in await runner.list_jobs(parent_id=parent_id) if c.type == "image.generate"]


async def test_a_big_pipeline_does_not_starve_another_users_job(cineqo: Any) -> None:
    cineqo.openai.responder = cast
    cineqo.fal.script.queued_polls = 15  # each portrait takes a while at fal
    async with cineqo.runner(concurrency=6) as runner:
        # One image at a time in the whole cluster (an override, as `limits set` makes it),
        # so portraits queue up behind each other.
        await runner.set_limits("image.generate", concurrency=1)
        payload = {"text": TEXT, "portraits": len(NAMES)}
        parent_id = await runner.enqueue("novel.process", payload, user_id="alice")
        with anyio.fail_after(60):
            while len(await portraits_of(runner, parent_id)) < len(NAMES):
                await anyio.sleep(0.05)
        waiting = [p for p in await portraits_of(runner, parent_id) if p.status == "pending"]
        bob_id = await runner.enqueue("image.generate", {"prompt": "bob's cat"}, user_id="bob")
        bob = await runner.wait_for(bob_id, timeout=60)
        parent = await runner.wait_for(parent_id, timeout=120)
        children = await runner.list_jobs(parent_id=parent_id)

    assert parent.status == "completed", parent.error
    assert {c.user_id for c in children} == {"alice"}  # the parent's user, every stage
    assert len(waiting) >= 4  # strict FIFO would make bob wait for all of them
    assert bob.status == "completed" and bob.started_at is not None
    enqueued, started = bob.created_at, bob.started_at
    assert enqueued is not None
    ahead = [
        c
        for c in children
        if c.type == "image.generate" and c.started_at and enqueued < c.started_at < started
    ]
    assert len(ahead) <= 1, f"{len(ahead)} of alice's portraits went before bob's job"
