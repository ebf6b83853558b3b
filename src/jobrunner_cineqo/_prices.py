"""What the paid APIs cost, by model, to record `cost_usd` (pure; no network).

    {"gpt-4o-mini": {"input": 0.15, "output": 0.60},      USD per million tokens
     "fal-ai/flux/dev": {"megapixel": 0.025},             USD per megapixel of output
     "fal-ai/some-app": {"image": 0.04}}                  USD per image

A model is priced by its own entry, else by the longest entry it extends with a `-` suffix
(`gpt-4o-mini-2024-07-18` is priced as `gpt-4o-mini`); a model without an entry has no cost
recorded (its tokens and images still are). `CINEQO_PRICES` replaces entries by name.

The built-in prices are the providers' published list prices as the authors knew them, not
checked against the providers' pages at release; providers change them, so a deployment that
budgets on `cost_usd` should set its own.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

PER_MILLION = 1_000_000
_FIELDS = ("input", "output", "image", "megapixel")


class PriceError(ValueError):
    """A price table is malformed."""


@attrs.frozen(kw_only=True)
class Price:
    """One model's prices in USD: per million input/output tokens, per image, per megapixel."""

    input: float = 0.0
    output: float = 0.0
    image: float = 0.0
    megapixel: float = 0.0


DEFAULT_PRICES: Mapping[str, Price] = {
    "gpt-4o-mini": Price(input=0.15, output=0.60),
    "gpt-4o": Price(input=2.50, output=10.00),
    "gpt-4.1": Price(input=2.00, output=8.00),
    "gpt-4.1-mini": Price(input=0.40, output=1.60),
    "gpt-4.1-nano": Price(input=0.10, output=0.40),
    "fal-ai/flux/dev": Price(megapixel=0.025),
    "fal-ai/flux/schnell": Price(megapixel=0.003),
}


@attrs.frozen
class PriceTable:
    """Prices by model name."""

    prices: Mapping[str, Price] = attrs.field(factory=dict)

    @classmethod
    def default(cls) -> PriceTable:
        return cls(dict(DEFAULT_PRICES))

    def merged_json(self, text: str) -> PriceTable:
        """This table with the entries of the JSON object `text` replacing those of its names."""
        try:
            data: Any = json.loads(text)
        except ValueError as exc:
            raise PriceError(f"not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise PriceError('expected an object such as {"gpt-4o-mini": {"input": 0.15}}')
        return PriceTable({**self.prices, **{str(k): _price(k, v) for k, v in data.items()}})

    def find(self, model: str) -> Price | None:
        """The entry of `model`, else of the longest name it extends with a `-` suffix."""
        if model in self.prices:
            return self.prices[model]
        stems = [name for name in self.prices if model.startswith(name + "-")]
        return self.prices[max(stems, key=len)] if stems else None

    def llm_cost(self, model: str, input_tokens: int, output_tokens: int) -> float | None:
        price = self.find(model)
        if price is None:
            return None
        return (input_tokens * price.input + output_tokens * price.output) / PER_MILLION

    def image_cost(self, model: str, sizes: Sequence[tuple[int, int] | None]) -> float | None:
        """The cost of images of these sizes (None: unknown, counted as one megapixel)."""
        price = self.find(model)
        if price is None:
            return None
        pixels = sum(size[0] * size[1] if size else PER_MILLION for size in sizes)
        return len(sizes) * price.image + pixels / PER_MILLION * price.megapixel


def _price(name: object, value: object) -> Price:
    if not isinstance(value, dict) or not value:
        raise PriceError(f"{name!r}: expected an object with some of {', '.join(_FIELDS)}")
    unknown = sorted(set(value) - set(_FIELDS))
    if unknown:
        raise PriceError(f"{name!r}: unknown fields {unknown} (known: {', '.join(_FIELDS)})")
    for field, amount in value.items():
        if isinstance(amount, bool) or not isinstance(amount, int | float):
            raise PriceError(f"{name!r}: {field} must be a number of USD, not {amount!r}")
        if not math.isfinite(amount) or amount < 0:
            raise PriceError(f"{name!r}: {field} must be 0 or more, not {amount}")
    return Price(**{field: float(amount) for field, amount in value.items()})
