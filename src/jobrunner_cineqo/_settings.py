"""The plugin's CINEQO_* knobs, read once per worker from its environment (pure).

    CINEQO_ALLOWED_ROOTS      ':'-separated directories `source` paths may point into
                              (default: the local storage directory; none with R2)
    CINEQO_MAX_NOVEL_BYTES    largest novel file accepted (default 50MB; e.g. 20MB, 512k)
    CINEQO_LLM_CONCURRENCY    chunks of one job asked at once (default 4)
    CINEQO_LLM_CHUNK_TOKENS   token budget of one chunk (default 6000)
    CINEQO_IMAGE_MODEL        fal app for image.generate (default fal-ai/flux/dev)
    CINEQO_FAL_POLL_INTERVAL  seconds between fal queue polls (default 1; e.g. 0.5, 250ms)
    CINEQO_RETRY_DELAY        first backoff after a transient failure, doubling (default 5s)
    CINEQO_RATE_LIMIT_PAUSE   how long a 429 without Retry-After pauses its type (default 30s)
    CINEQO_PRICES             JSON object (or the path of a JSON file) of prices that replace
                              the built-in ones, by model (see `_prices`)
    CINEQO_IMAGE_CONCURRENCY  image.generate jobs running at once in the cluster (default 2,
                              fal's concurrent requests for a new account; `none`: no limit)
    CINEQO_IMAGE_PER_USER     image.generate jobs of one user at once (default none)
    CINEQO_IMAGE_RATE         image.generate starts per period, e.g. 60/1m (default none)
    CINEQO_EXTRACT_CONCURRENCY, CINEQO_EXTRACT_PER_USER, CINEQO_EXTRACT_RATE
                              the same for character.extract (default 4, none, none)

Sizes and durations are read by the core's `parse_size` and `parse_duration`, so they are
written as everywhere else in jobrunner. A bad value is a `SettingsError` naming the variable.

The cluster-wide limits are the handlers' defaults, so they are read when the plugin is loaded,
from the process environment (`registration_limits`); `jobrunner limits set` overrides them.
The OpenAI, fal and storage variables belong to their clients (`_cast.llm`, `_images.fal`,
`_storage.config`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from jobrunner import ConfigurationError, Rate, parse_duration, parse_size

from ._prices import PriceError, PriceTable
from ._storage import R2Config, StorageConfigError, data_dir

DEFAULT_IMAGE_MODEL = "fal-ai/flux/dev"
DEFAULT_MAX_NOVEL_BYTES = 50 * 1024 * 1024
MAX_RETRY_DELAY = 600.0
DEFAULT_RATE_LIMIT_PAUSE = 30.0
_NO_LIMIT = frozenset({"none", "off", "unlimited"})


class SettingsError(ValueError):
    """A CINEQO_* variable is malformed."""


@attrs.frozen(kw_only=True)
class TypeDefaults:
    """The cluster-wide limits one job type declares as defaults (None: no such limit)."""

    concurrency: int | None = None
    per_user: int | None = None
    rate: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str], prefix: str, default: TypeDefaults) -> TypeDefaults:
        """`{prefix}_CONCURRENCY`, `{prefix}_PER_USER` and `{prefix}_RATE` over `default`."""
        return cls(
            concurrency=_limit(env, f"{prefix}_CONCURRENCY", default.concurrency),
            per_user=_limit(env, f"{prefix}_PER_USER", default.per_user),
            rate=_rate(env, f"{prefix}_RATE", default.rate),
        )


#: image.generate: fal runs 2 requests at once for a new account (more as credits are bought,
#: up to 40); the rest wait in fal's queue, where a job would only hold a worker's slot.
IMAGE_DEFAULTS = TypeDefaults(concurrency=2)
#: character.extract: each job asks CINEQO_LLM_CONCURRENCY chunks at once (4), so 4 jobs keep
#: at most 16 requests in flight, well inside OpenAI's lower usage tiers.
EXTRACT_DEFAULTS = TypeDefaults(concurrency=4)


@attrs.frozen(kw_only=True)
class PaidLimits:
    """The default limits of the two job types that call paid APIs."""

    image: TypeDefaults = IMAGE_DEFAULTS
    extract: TypeDefaults = EXTRACT_DEFAULTS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PaidLimits:
        return cls(
            image=TypeDefaults.from_env(env, "CINEQO_IMAGE", IMAGE_DEFAULTS),
            extract=TypeDefaults.from_env(env, "CINEQO_EXTRACT", EXTRACT_DEFAULTS),
        )


def registration_limits(env: Mapping[str, str]) -> PaidLimits:
    """The limits the handlers declare; the built-in ones when a variable is malformed (the
    `cineqo_settings` check then names it, and the job types are not ready)."""
    try:
        return PaidLimits.from_env(env)
    except SettingsError:
        return PaidLimits()


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
    rate_limit_pause: float = DEFAULT_RATE_LIMIT_PAUSE
    prices: PriceTable = attrs.Factory(PriceTable.default)
    limits: PaidLimits = PaidLimits()

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
            rate_limit_pause=_seconds(
                env, "CINEQO_RATE_LIMIT_PAUSE", DEFAULT_RATE_LIMIT_PAUSE, low=1.0
            ),
            prices=_prices(env),
            limits=PaidLimits.from_env(env),
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


def _limit(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    value = env.get(name, "").strip()
    if value.lower() in _NO_LIMIT:
        return None
    return _count(env, name, 1, low=1) if value else default


def _rate(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    value = env.get(name, "").strip()
    if not value:
        return default
    if value.lower() in _NO_LIMIT:
        return None
    try:
        return str(Rate.parse(value))
    except ConfigurationError:
        raise SettingsError(f"{name} must be a rate such as 60/1m or 5/1s, not {value!r}") from None


def _prices(env: Mapping[str, str]) -> PriceTable:
    value = env.get("CINEQO_PRICES", "").strip()
    if not value:
        return PriceTable.default()
    try:
        if value.startswith("{"):
            return PriceTable.default().merged_json(value)
        try:
            text = Path(value).read_text("utf-8")
        except OSError as exc:
            raise PriceError(f"cannot read {value!r}: {exc.strerror or exc}") from None
        return PriceTable.default().merged_json(text)
    except PriceError as exc:
        raise SettingsError(f"CINEQO_PRICES: {exc}") from None
