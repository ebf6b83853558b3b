"""What the paid jobs spent, recorded as the core's usage: tokens per model and images as the
stand-ins reported them, cost from the price table (CINEQO_PRICES), on the job and in the
user's daily total; then a `cost_usd` budget holds the user's next job (and only theirs)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from standins.openai_server import answer

from jobrunner import Runner

pytestmark = pytest.mark.anyio

MODEL = "stand-in-model"  # CINEQO_LLM_MODEL in the cineqo fixture
IMAGE_MODEL = "fal-ai/flux/dev"
PRICES = {MODEL: {"input": 1.5, "output": 6.0}, IMAGE_MODEL: {"image": 0.04}}
TEXT = "\n\n".join(f"第{n}回 回目{n}\n\n" + "孙悟空走到山下，看见一座洞府。" * 8 for n in "一二三")


def totals(usage: list[Any], user: str) -> dict[str, float]:
    return {u.unit: u.amount for u in usage if u.user_id == user}


async def wait_pending_with_reason(runner: Runner, job_id: int) -> list[str]:
    """The job's reasons to wait, once a worker has had the chance to claim it."""
    await anyio.sleep(1.0)  # several poll intervals: a job that could run would be running
    job = await runner.get_job(job_id)
    assert job.status == "pending", (job.status, job.error)
    return await runner.pending_reasons(job)


async def test_usage_of_llm_and_image_jobs_and_a_budget_that_holds(cineqo: Any) -> None:
    cineqo.env |= {"CINEQO_PRICES": json.dumps(PRICES), "CINEQO_LLM_CHUNK_TOKENS": "150"}
    cineqo.openai.script("孙悟空", answer({"characters": []}))
    async with cineqo.runner() as runner:
        cast_id = await runner.enqueue("character.extract", {"text": TEXT}, user_id="u1")
        cast = await runner.wait_for(cast_id, timeout=60)
        image_id = await runner.enqueue(
            "image.generate", {"prompt": "a monkey", "num_images": 2}, user_id="u1"
        )
        image = await runner.wait_for(image_id, timeout=60)
        assert (cast.status, image.status) == ("completed", "completed"), (cast.error, image.error)

        # Tokens as the stand-in reported them, every request; cost from the price table.
        reported = cineqo.openai.usage
        assert len(reported) >= 2  # one request per chunk
        tokens = sum(u["total_tokens"] for u in reported)
        prompt = sum(u["prompt_tokens"] for u in reported)
        completion = sum(u["completion_tokens"] for u in reported)
        assert cast.usage.keys() == {"tokens", f"tokens:{MODEL}", "cost_usd"}
        assert cast.usage["tokens"] == cast.usage[f"tokens:{MODEL}"] == tokens
        assert cast.usage["cost_usd"] == pytest.approx((prompt * 1.5 + completion * 6.0) / 1e6)
        assert cast.result["usage"]["prompt_tokens"] == prompt  # the result agrees

        # Images as fal generated them (each paid once), at the overridden price.
        assert cineqo.fal.images_generated == 2
        assert image.usage == {"images": 2, f"images:{IMAGE_MODEL}": 2, "cost_usd": 0.08}

        # The user's daily total is the sum of both.
        spent = totals(await runner.usage("u1"), "u1")
        assert spent["tokens"] == tokens and spent["images"] == 2
        assert spent["cost_usd"] == pytest.approx(cast.usage["cost_usd"] + 0.08)

        # A budget below that holds u1's next job, not u2's; raising it lets the job run.
        await runner.set_budget(user_id="u1", unit="cost_usd", amount=0.05, period="daily")
        held_id = await runner.enqueue("image.generate", {"prompt": "again"}, user_id="u1")
        other_id = await runner.enqueue("image.generate", {"prompt": "other"}, user_id="u2")
        other = await runner.wait_for(other_id, timeout=60)
        assert other.status == "completed" and other.usage["images"] == 1
        reasons = await wait_pending_with_reason(runner, held_id)
        assert any("user u1 is over its daily budget of cost_usd" in r for r in reasons), reasons
        [hold] = await runner.budget_holds("u1")
        assert (hold.unit, hold.spent) == ("cost_usd", pytest.approx(spent["cost_usd"]))

        await runner.set_budget(user_id="u1", unit="cost_usd", amount=100.0, period="daily")
        assert (await runner.wait_for(held_id, timeout=60)).status == "completed"
    assert cineqo.fal.images_generated == 4
    cineqo.assert_no_secrets()


async def test_a_resumed_image_request_is_not_counted_twice(cineqo: Any) -> None:
    # The first attempt's download fails after fal answered; the retry fetches the same
    # result again (no new request), and its images are not recorded again.
    from standins.fal_server import Reply

    cineqo.fal.script.image_replies = [Reply(status=502, body={"detail": "bad gateway"})]
    job = await cineqo.run("image.generate", {"prompt": "a monkey"})
    assert (job.status, job.attempts) == ("completed", 2), job.error
    assert len(cineqo.fal.submissions) == 1
    assert job.usage["images"] == 1
    assert job.usage["cost_usd"] > 0  # the built-in price of fal-ai/flux/dev
