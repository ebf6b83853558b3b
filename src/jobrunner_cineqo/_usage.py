"""What a job spent at the paid APIs, as the core's usage units (`ctx.record_usage`).

    tokens, tokens:<model>      input + output tokens of every answered LLM request
    images, images:<model>      images fal generated (and billed), flagged ones included
    cost_usd                    from the price table (`_prices`, CINEQO_PRICES)

A model without a price records no `cost_usd`. What is recorded adds up on the job's `usage`
and its user's daily total, where budgets are checked; it counts even if the job fails later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobrunner import JobContext

    from ._cast.merge import Usage
    from ._prices import PriceTable

#: Checkpoint: the fal request whose images are recorded (a resumed attempt that fetches the
#: same result again must not count it twice).
IMAGES_RECORDED = "usage_recorded_for"


def llm_amounts(prices: PriceTable, model: str, usage: Usage) -> dict[str, float]:
    tokens = usage.prompt_tokens + usage.completion_tokens
    amounts: dict[str, float] = {"tokens": tokens, f"tokens:{model}": tokens}
    cost = prices.llm_cost(model, usage.prompt_tokens, usage.completion_tokens)
    if cost is not None:
        amounts["cost_usd"] = cost
    return amounts


def billed_sizes(raw: Mapping[str, Any]) -> list[tuple[int, int] | None]:
    """The size of each image of a fal result (None when it does not say)."""
    images = raw.get("images")
    return [_size(image) for image in images] if isinstance(images, list) else []


def _size(image: Any) -> tuple[int, int] | None:
    if not isinstance(image, dict):
        return None
    width, height = image.get("width"), image.get("height")
    if type(width) is int and type(height) is int and width > 0 and height > 0:
        return width, height
    return None


def image_amounts(
    prices: PriceTable, model: str, sizes: list[tuple[int, int] | None]
) -> dict[str, float]:
    amounts: dict[str, float] = {"images": len(sizes), f"images:{model}": len(sizes)}
    cost = prices.image_cost(model, sizes)
    if cost is not None:
        amounts["cost_usd"] = cost
    return amounts


async def record_images(
    ctx: JobContext, prices: PriceTable, model: str, request_id: str, raw: Mapping[str, Any]
) -> None:
    """Record the images of fal request `request_id` once, however often it is fetched."""
    sizes = billed_sizes(raw)
    if not sizes or ctx.checkpoint.get(IMAGES_RECORDED) == request_id:
        return
    ctx.record_usage(**image_amounts(prices, model, sizes))
    await ctx.save_checkpoint(IMAGES_RECORDED, request_id)
