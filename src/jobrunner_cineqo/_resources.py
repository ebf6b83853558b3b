"""The plugin's shared resources, one of each per worker, built from the worker's environment.

    storage           local directory or R2 (see `_storage.config`)
    openai            an `LLM`: one AsyncOpenAI client + default model; needs OPENAI_API_KEY
    fal               `FalImages`: fal.ai queue client; needs FAL_KEY
    http              httpx.AsyncClient for image downloads (never carries the fal key)
    cineqo_settings   `CineqoSettings`: the CINEQO_* knobs below

A resource whose `check(env)` gives a reason makes the handlers that need it "not ready": the
worker does not claim their jobs and `jobrunner plugins` shows why. Heavy SDKs (openai,
fal_client, aioboto3, httpx) are imported only when a resource is opened.

Settings (environment):

    CINEQO_ALLOWED_ROOTS      ':'-separated directories `source` paths may point into
                              (default: the local storage directory; none with R2)
    CINEQO_MAX_NOVEL_BYTES    largest novel file accepted (default 50MB; e.g. 20MB, 512k)
    CINEQO_LLM_CONCURRENCY    chunks of one job asked at once (default 4)
    CINEQO_LLM_CHUNK_TOKENS   token budget of one chunk (default 6000)
    CINEQO_IMAGE_MODEL        fal app for image.generate (default fal-ai/flux/dev)
    CINEQO_FAL_POLL_INTERVAL  seconds between fal queue polls (default 1)
    CINEQO_RETRY_DELAY        first backoff after a transient failure, doubling (default 5s)
"""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import attrs

from jobrunner import PayloadError, Retry

from . import plugin
from ._fal import FalImages
from ._llm import LLMNotConfigured, client_from_env, response_mode_from_env
from ._prompts import ResponseMode
from ._storage import (
    R2Config,
    StorageConfigError,
    StorageError,
    StorageKeyError,
    storage_from_env,
)
from ._storage.local import DEFAULT_DATA_DIR

DEFAULT_IMAGE_MODEL = "fal-ai/flux/dev"
DEFAULT_MAX_NOVEL_BYTES = 50 * 1024 * 1024
MAX_RETRY_DELAY = 600.0
T = TypeVar("T")
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?)i?b?\s*", re.IGNORECASE)


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
            llm_concurrency=int(_number(env, "CINEQO_LLM_CONCURRENCY", 4, low=1, integer=True)),
            chunk_tokens=int(_number(env, "CINEQO_LLM_CHUNK_TOKENS", 6000, low=64, integer=True)),
            image_model=env.get("CINEQO_IMAGE_MODEL", "").strip() or DEFAULT_IMAGE_MODEL,
            fal_poll_interval=_number(env, "CINEQO_FAL_POLL_INTERVAL", 1.0, low=0.001),
            retry_delay=_number(env, "CINEQO_RETRY_DELAY", 5.0, low=0.0),
        )

    def backoff(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds before the next attempt: `retry_delay` doubling per attempt, jittered."""
        raw = min(self.retry_delay * 2 ** max(attempt - 1, 0), MAX_RETRY_DELAY)
        return raw * (1 - 0.5 * rand())


@attrs.frozen(kw_only=True)
class LLM:
    """The `openai` resource: the shared client, and the defaults jobs start from."""

    client: Any = attrs.field(repr=False)  # openai.AsyncOpenAI
    model: str
    response_mode: ResponseMode


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
    return (Path(env.get("CINEQO_DATA_DIR") or DEFAULT_DATA_DIR).absolute(),)


def _uses_r2(env: Mapping[str, str]) -> bool:
    try:
        return R2Config.from_env(env) is not None
    except StorageConfigError:
        return True


def _size(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    match = _SIZE.fullmatch(value)
    if not match:
        raise SettingsError(f"{name} must be a size such as 50MB or 1048576, not {value!r}")
    size = int(float(match[1]) * 1024 ** " kmg".index(match[2].lower() or " "))
    if size < 1:
        raise SettingsError(f"{name} must be at least 1 byte")
    return size


def _number(
    env: Mapping[str, str], name: str, default: float, *, low: float, integer: bool = False
) -> float:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value) if integer else float(value.removesuffix("s"))
    except ValueError:
        kind = "an integer" if integer else "a number of seconds"
        raise SettingsError(f"{name} must be {kind}, not {value!r}") from None
    if not number >= low:
        raise SettingsError(f"{name} must be at least {low:g}, not {value!r}")
    return number


# --- readiness checks: None when the resource can be opened, else the reason ---------------


def settings_problem(env: Mapping[str, str]) -> str | None:
    try:
        CineqoSettings.from_env(env)
    except SettingsError as exc:
        return str(exc)
    return None


def storage_problem(env: Mapping[str, str]) -> str | None:
    try:
        R2Config.from_env(env)
    except StorageConfigError as exc:
        return str(exc)
    return None


def openai_problem(env: Mapping[str, str]) -> str | None:
    if not env.get("OPENAI_API_KEY", "").strip():
        return "OPENAI_API_KEY is not set"
    try:
        response_mode_from_env(env)
    except LLMNotConfigured as exc:
        return str(exc)
    return None


def fal_problem(env: Mapping[str, str]) -> str | None:
    if env.get("FAL_KEY", "").strip():
        return None
    if env.get("FAL_KEY_ID", "").strip() and env.get("FAL_KEY_SECRET", "").strip():
        return None
    return "FAL_KEY is not set"


# --- the resources -------------------------------------------------------------------------


@plugin.resource("cineqo_settings", check=settings_problem)
async def cineqo_settings(env: Mapping[str, str]) -> AsyncIterator[CineqoSettings]:
    yield CineqoSettings.from_env(env)


async def probe_storage(storage: Any) -> str | None:
    """`jobrunner doctor`: one authenticated read (a missing key is a fine answer)."""
    await storage.exists("jobrunner-doctor/probe")
    return None


async def probe_openai(llm: LLM) -> str | None:
    """`jobrunner doctor`: list the models, the cheapest authenticated call there is."""
    await llm.client.models.list()
    return None


@plugin.resource("storage", check=storage_problem, probe=probe_storage)
async def storage(env: Mapping[str, str]) -> AsyncIterator[Any]:
    async with storage_from_env(env) as opened:
        yield opened


@plugin.resource("openai", check=openai_problem, probe=probe_openai)
async def openai_client(env: Mapping[str, str]) -> AsyncIterator[LLM]:
    client, model = client_from_env(env)
    try:
        yield LLM(client=client, model=model, response_mode=response_mode_from_env(env))
    finally:
        await client.close()


@plugin.resource("fal", check=fal_problem)
async def fal(env: Mapping[str, str]) -> AsyncIterator[Any]:
    async with FalImages.from_env(env) as images:
        yield images


@plugin.resource("http")
async def http(env: Mapping[str, str]) -> AsyncIterator[Any]:
    import httpx

    timeout = httpx.Timeout(60.0, connect=10.0)
    headers = {"User-Agent": "jobrunner-cineqo"}
    async with httpx.AsyncClient(timeout=timeout, headers=headers) as client:
        yield client


# --- helpers shared by the handlers --------------------------------------------------------


@contextmanager
def storage_errors(settings: CineqoSettings, attempt: int) -> Iterator[None]:
    """Storage failures as job outcomes: a bad key is the payload's fault, I/O is retried."""
    try:
        yield
    except StorageKeyError as exc:
        raise PayloadError(str(exc)) from None
    except StorageError as exc:
        raise Retry(str(exc), delay=settings.backoff(attempt)) from exc


async def bounded_each(
    items: Iterable[T], func: Callable[[T], Awaitable[None]], *, limit: int
) -> None:
    """Await `func(item)` for every item, `limit` at a time, in order of start.

    The first failure cancels the rest and is raised as it is, never in an exception group
    (even when two fail at once), so a caller's `except` sees it: `storage_errors` around
    this call turns a `StorageError` from any item into a `Retry`.
    """
    failures: list[Exception] = []
    iterator = iter(items)  # shared: each worker takes the next item when it is free

    async def work(scope: anyio.CancelScope) -> None:
        for item in iterator:
            try:
                await func(item)
            except Exception as exc:
                failures.append(exc)
                scope.cancel()
                return

    async with anyio.create_task_group() as group:
        for _ in range(limit):
            group.start_soon(work, group.cancel_scope)
    if failures:
        raise failures[0]
