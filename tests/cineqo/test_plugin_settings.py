"""The CINEQO_* settings (pure): sizes and durations as the core writes them, errors that name
the variable."""

from __future__ import annotations

import pytest

from jobrunner_cineqo._settings import CineqoSettings, SettingsError


def test_defaults() -> None:
    settings = CineqoSettings.from_env({})
    assert settings.max_novel_bytes == 50 * 1024 * 1024
    assert (settings.llm_concurrency, settings.chunk_tokens) == (4, 6000)
    assert settings.image_model == "fal-ai/flux/dev"
    assert (settings.fal_poll_interval, settings.retry_delay) == (1.0, 5.0)


@pytest.mark.parametrize(
    ("value", "size"),
    [("2MB", 2 * 1024 * 1024), ("512k", 512 * 1024), ("1048576", 1048576), (" 1.5 mb ", 1572864)],
)
def test_sizes_are_read_like_the_cores(value: str, size: int) -> None:
    assert CineqoSettings.from_env({"CINEQO_MAX_NOVEL_BYTES": value}).max_novel_bytes == size


@pytest.mark.parametrize(
    ("name", "value", "seconds"),
    [
        ("CINEQO_RETRY_DELAY", "0.05", 0.05),
        ("CINEQO_RETRY_DELAY", "5s", 5.0),
        ("CINEQO_RETRY_DELAY", "0", 0.0),
        ("CINEQO_FAL_POLL_INTERVAL", "250ms", 0.25),
        ("CINEQO_FAL_POLL_INTERVAL", "1m", 60.0),
    ],
)
def test_durations_are_read_like_the_cores(name: str, value: str, seconds: float) -> None:
    settings = CineqoSettings.from_env({name: value})
    field = "retry_delay" if name == "CINEQO_RETRY_DELAY" else "fal_poll_interval"
    assert getattr(settings, field) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CINEQO_MAX_NOVEL_BYTES", "lots", "CINEQO_MAX_NOVEL_BYTES must be a size such as 50MB"),
        ("CINEQO_MAX_NOVEL_BYTES", "0", "CINEQO_MAX_NOVEL_BYTES must be at least 1 byte"),
        ("CINEQO_LLM_CONCURRENCY", "many", "CINEQO_LLM_CONCURRENCY must be an integer, not 'many'"),
        ("CINEQO_LLM_CONCURRENCY", "0", "CINEQO_LLM_CONCURRENCY must be at least 1, not '0'"),
        ("CINEQO_LLM_CHUNK_TOKENS", "10", "CINEQO_LLM_CHUNK_TOKENS must be at least 64"),
        ("CINEQO_RETRY_DELAY", "soon", "CINEQO_RETRY_DELAY must be a number of seconds"),
        ("CINEQO_FAL_POLL_INTERVAL", "0", "CINEQO_FAL_POLL_INTERVAL must be at least 0.001"),
        ("CINEQO_ALLOWED_ROOTS", "novels", "CINEQO_ALLOWED_ROOTS must hold absolute paths"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        CineqoSettings.from_env({name: value})
    assert str(caught.value).startswith(message)
    assert caught.value.__cause__ is None  # the core's own error is not chained in


def test_backoff_doubles_per_attempt_up_to_ten_minutes() -> None:
    settings = CineqoSettings.from_env({"CINEQO_RETRY_DELAY": "5"})
    assert [settings.backoff(n, rand=lambda: 0.0) for n in (1, 2, 3)] == [5.0, 10.0, 20.0]
    assert settings.backoff(30, rand=lambda: 0.0) == 600.0
    assert settings.backoff(1, rand=lambda: 1.0) == 2.5  # jitter takes off at most half
