"""The plugin's CINEQO_* knobs, read once per worker from its environment (pure).

    CINEQO_ALLOWED_ROOTS      ':'-separated directories `source` paths may point into
                              (default: the local storage directory; none with R2)
    CINEQO_MAX_NOVEL_BYTES    largest novel file accepted (default 50MB; e.g. 20MB, 512k)
    CINEQO_LLM_CONCURRENCY    chunks of one job asked at once (default 4)
    CINEQO_LLM_CHUNK_TOKENS   token budget of one chunk (default 6000)
    CINEQO_IMAGE_MODEL        fal app for image.generate (default fal-ai/flux/dev)
    CINEQO_FAL_POLL_INTERVAL  seconds between fal queue polls (default 1; e.g. 0.5, 250ms)
    CINEQO_RETRY_DELAY        first backoff after a transient failure, doubling (default 5s)

Sizes and durations are read by the core's `parse_size` and `parse_duration`, so they are
written as everywhere else in jobrunner. A bad value is a `SettingsError` naming the variable.
The OpenAI, fal and storage variables belong to their clients (`_cast.llm`, `_images.fal`,
`_storage.config`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from jobrunner import ConfigurationError, parse_duration, parse_size

from ._storage import R2Config, StorageConfigError, data_dir

DEFAULT_IMAGE_MODEL = "fal-ai/flux/dev"
DEFAULT_MAX_NOVEL_BYTES = 50 * 1024 * 1024
MAX_RETRY_DELAY = 600.0


class SettingsError(ValueError):
    """A CINEQO_* variable is malformed."""


@attrs.frozen(kw_only=True)
class CineqoSettings:
    """The plugin's knobs, read once per worker from its environment."""

    allowed_roots: tuple[Path, ...] = ()
    max_novel_bytes: int = DEFAULT_MAX_NOVEL_BYTES
    llm_concurrency: int = 4
    chunk_tokens: int = 6000
    image_model: str = DEFAULT_IMAGE_MODEL
    fal_poll_interval: float = 1.0
    retry_delay: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CineqoSettings:
        """Parse the CINEQO_* variables; `SettingsError` names the bad one."""
        return cls(
            allowed_roots=_allowed_roots(env),
            max_novel_bytes=_size(env, "CINEQO_MAX_NOVEL_BYTES", DEFAULT_MAX_NOVEL_BYTES),
            llm_concurrency=_count(env, "CINEQO_LLM_CONCURRENCY", 4, low=1),
            chunk_tokens=_count(env, "CINEQO_LLM_CHUNK_TOKENS", 6000, low=64),
            image_model=env.get("CINEQO_IMAGE_MODEL", "").strip() or DEFAULT_IMAGE_MODEL,
            fal_poll_interval=_seconds(env, "CINEQO_FAL_POLL_INTERVAL", 1.0, low=0.001),
            retry_delay=_seconds(env, "CINEQO_RETRY_DELAY", 5.0, low=0.0),
        )

    def backoff(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds before the next attempt: `retry_delay` doubling per attempt, jittered."""
        raw = min(self.retry_delay * 2.0 ** max(attempt - 1, 0), MAX_RETRY_DELAY)
        return raw * (1 - 0.5 * rand())


def _allowed_roots(env: Mapping[str, str]) -> tuple[Path, ...]:
    value = env.get("CINEQO_ALLOWED_ROOTS", "").strip()
    if value:
        roots = [part.strip() for part in value.split(":") if part.strip()]
        relative = [root for root in roots if not Path(root).is_absolute()]
        if relative:
            raise SettingsError(f"CINEQO_ALLOWED_ROOTS must hold absolute paths, not {relative}")
        return tuple(Path(root) for root in roots)
    if _uses_r2(env):
        return ()  # local files are not storage then: nothing is readable unless allowed
    return (data_dir(env).absolute(),)


def _uses_r2(env: Mapping[str, str]) -> bool:
    try:
        return R2Config.from_env(env) is not None
    except StorageConfigError:
        return True


def _size(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        size = parse_size(value)
    except ConfigurationError:
        message = f"{name} must be a size such as 50MB or 1048576, not {value!r}"
        raise SettingsError(message) from None
    if size < 1:
        raise SettingsError(f"{name} must be at least 1 byte")
    return size


def _count(env: Mapping[str, str], name: str, default: int, *, low: int) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, not {value!r}") from None
    if number < low:
        raise SettingsError(f"{name} must be at least {low}, not {value!r}")
    return number


def _seconds(env: Mapping[str, str], name: str, default: float, *, low: float) -> float:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        seconds = parse_duration(value)
    except ConfigurationError:
        raise SettingsError(
            f"{name} must be a number of seconds such as 5, 0.5 or 250ms, not {value!r}"
        ) from None
    if seconds < low:
        raise SettingsError(f"{name} must be at least {low:g} seconds, not {value!r}")
    return seconds
