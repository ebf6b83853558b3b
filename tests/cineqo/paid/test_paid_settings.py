"""The knobs of the paid job types (pure): cluster-wide limit defaults from CINEQO_IMAGE_* and
CINEQO_EXTRACT_*, the price table and CINEQO_PRICES, Retry-After in its three forms."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from jobrunner import Plugin, Rate, TypeLimits
from jobrunner_cineqo import _cast, _images
from jobrunner_cineqo._cast.merge import Usage
from jobrunner_cineqo._prices import Price, PriceTable
from jobrunner_cineqo._resources import settings_problem
from jobrunner_cineqo._retry_after import retry_after
from jobrunner_cineqo._settings import (
    CineqoSettings,
    PaidLimits,
    SettingsError,
    TypeDefaults,
    registration_limits,
)
from jobrunner_cineqo._usage import billed_sizes, image_amounts, llm_amounts


def declared(limits: PaidLimits) -> dict[str, TypeLimits]:
    plugin = Plugin("t")
    _cast.register(plugin, limits.extract)
    _images.register(plugin, limits.image)
    return {job_type: handler.limits for job_type, handler in plugin.handlers.items()}


def test_the_paid_types_declare_cluster_wide_defaults() -> None:
    assert declared(PaidLimits.from_env({})) == {
        "character.extract": TypeLimits(concurrency=4),
        "image.generate": TypeLimits(concurrency=2),  # fal's concurrent requests, new account
    }
    env = {
        "CINEQO_IMAGE_CONCURRENCY": "8",
        "CINEQO_IMAGE_PER_USER": "2",
        "CINEQO_IMAGE_RATE": "30/1m",
        "CINEQO_EXTRACT_CONCURRENCY": "none",
        "CINEQO_EXTRACT_RATE": "100/h",
    }
    assert declared(PaidLimits.from_env(env)) == {
        "character.extract": TypeLimits(rate=Rate(count=100, seconds=3600)),
        "image.generate": TypeLimits(concurrency=8, per_user=2, rate=Rate(count=30, seconds=60)),
    }


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CINEQO_IMAGE_CONCURRENCY", "0", "CINEQO_IMAGE_CONCURRENCY must be at least 1"),
        ("CINEQO_EXTRACT_PER_USER", "two", "CINEQO_EXTRACT_PER_USER must be an integer"),
        ("CINEQO_IMAGE_RATE", "fast", "CINEQO_IMAGE_RATE must be a rate such as 60/1m"),
        ("CINEQO_RATE_LIMIT_PAUSE", "0.5", "CINEQO_RATE_LIMIT_PAUSE must be at least 1 seconds"),
        ("CINEQO_PRICES", "{nope", "CINEQO_PRICES: not JSON"),
        ("CINEQO_PRICES", '{"m": {"input": -1}}', "CINEQO_PRICES: 'm': input must be 0 or more"),
        ("CINEQO_PRICES", '{"m": {"per_token": 1}}', "CINEQO_PRICES: 'm': unknown fields"),
        ("CINEQO_PRICES", "/no/such/prices.json", "CINEQO_PRICES: cannot read"),
    ],
)
def test_a_bad_value_makes_the_types_not_ready_but_loads(
    name: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=f"^{message}"):
        CineqoSettings.from_env({name: value})
    problem = settings_problem({name: value})
    assert problem is not None and problem.startswith(message)
    assert registration_limits({name: value}) == PaidLimits()  # the plugin still imports


def test_prices_by_model_and_overrides(tmp_path: Path) -> None:
    table = PriceTable.default()
    assert table.find("gpt-4o-mini-2024-07-18") == table.find("gpt-4o-mini")
    assert table.find("gpt-4o-2024-08-06") == table.find("gpt-4o")
    assert table.find("gpt-4omni") is None  # a suffix starts with "-"
    assert table.llm_cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert table.llm_cost("llama-3", 10, 10) is None
    # FLUX [dev] is priced per megapixel; an image of unknown size counts as one.
    assert table.image_cost("fal-ai/flux/dev", [(1024, 1024), None]) == pytest.approx(
        0.025 * (1024 * 1024 / 1e6 + 1)
    )

    override = {"gpt-4o-mini": {"input": 1}, "fal-ai/flux/dev": {"image": 0.05}}
    settings = CineqoSettings.from_env({"CINEQO_PRICES": json.dumps(override)})
    assert settings.prices.find("gpt-4o-mini") == Price(input=1.0)  # the entry is replaced
    assert settings.prices.find("gpt-4o") == table.find("gpt-4o")  # the others stay
    assert settings.prices.image_cost("fal-ai/flux/dev", [(512, 512)] * 2) == 0.1
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"my-model": {"input": 2, "output": 4}}))
    from_file = CineqoSettings.from_env({"CINEQO_PRICES": str(path)}).prices
    assert from_file.llm_cost("my-model", 500_000, 250_000) == 2.0


def test_usage_units() -> None:
    prices = PriceTable({"m": Price(input=1.0, output=2.0), "app/x": Price(image=0.5)})
    usage = Usage(llm_calls=1, prompt_tokens=300, completion_tokens=100)
    assert llm_amounts(prices, "m", usage) == {
        "tokens": 400,
        "tokens:m": 400,
        "cost_usd": pytest.approx(0.0005),
    }
    assert llm_amounts(prices, "unpriced", usage) == {"tokens": 400, "tokens:unpriced": 400}
    raw = {"images": [{"url": "u", "width": 8, "height": 4}, {"url": "v", "width": True}]}
    assert billed_sizes(raw) == [(8, 4), None]
    assert billed_sizes({"images": "nope"}) == []
    assert image_amounts(prices, "app/x", [(8, 4), None]) == {
        "images": 2,
        "images:app/x": 2,
        "cost_usd": 1.0,
    }


NOW = dt.datetime(2026, 12, 6, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "30"}, 30.0),
        ({"retry-after": " 2.5 "}, 2.5),
        ({"retry-after-ms": "1500", "retry-after": "30"}, 1.5),  # OpenAI's, more precise
        ({"Retry-After": "Sun, 06 Dec 2026 12:00:45 GMT"}, 45.0),
        ({"Retry-After": "Sunday, 06-Dec-26 12:01:00 GMT"}, 60.0),  # RFC 850, still allowed
        ({"Retry-After": "Sun, 06 Dec 2026 11:00:00 GMT"}, 0.0),  # in the past
        ({"Retry-After": "-5"}, 0.0),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "inf"}, None),
        ({}, None),
    ],
)
def test_retry_after_in_seconds_milliseconds_or_an_http_date(
    headers: dict[str, str], seconds: float | None
) -> None:
    assert retry_after(headers, now=lambda: NOW) == seconds


def test_type_defaults_read_over_their_defaults() -> None:
    base = TypeDefaults(concurrency=3, rate="5/1s")
    assert TypeDefaults.from_env({}, "X", base) == base
    assert TypeDefaults.from_env({"X_RATE": "off", "X_PER_USER": "1"}, "X", base) == (
        TypeDefaults(concurrency=3, per_user=1)
    )
