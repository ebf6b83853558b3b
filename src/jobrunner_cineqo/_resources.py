"""The plugin's shared resources, one of each per worker, built from the worker's environment.

    cineqo_settings   `CineqoSettings`: the CINEQO_* knobs (see `_settings`)
    storage           a `Storage`: local directory or R2 (see `_storage.config`), traced
    openai            an `LLM`: one AsyncOpenAI client + default model; needs OPENAI_API_KEY
    fal               `FalImages`: fal.ai's queue protocol over httpx; needs FAL_KEY
    http              httpx.AsyncClient for image downloads (never carries the fal key)

A resource whose `check(env)` gives a reason makes the handlers that need it "not ready": the
worker does not claim their jobs and `jobrunner plugins` shows why. Heavy SDKs (openai,
aioboto3, httpx) are imported only when a resource is opened.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING

from ._cast.llm import LLM, LLMNotConfigured, client_from_env, response_mode_from_env
from ._images.fal import FalImages
from ._settings import CineqoSettings, SettingsError
from ._storage import R2Config, Storage, StorageConfigError, TracedStorage, storage_from_env

if TYPE_CHECKING:
    import httpx

    from jobrunner import Plugin


def register(plugin: Plugin) -> None:
    """Add the five resources to `plugin`."""
    plugin.resource("cineqo_settings", check=settings_problem)(cineqo_settings)
    plugin.resource("storage", check=storage_problem, probe=probe_storage)(storage)
    plugin.resource("openai", check=openai_problem, probe=probe_openai)(openai_client)
    plugin.resource("fal", check=fal_problem)(fal)
    plugin.resource("http")(http)


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


# --- probes for `jobrunner doctor`: None when one cheap authenticated call worked ----------


async def probe_storage(storage: Storage) -> str | None:
    """One authenticated read (a missing key is a fine answer)."""
    await storage.exists("jobrunner-doctor/probe")
    return None


async def probe_openai(llm: LLM) -> str | None:
    """List the models, the cheapest authenticated call there is."""
    await llm.client.models.list()
    return None


# --- the resources -------------------------------------------------------------------------


async def cineqo_settings(env: Mapping[str, str]) -> AsyncIterator[CineqoSettings]:
    yield CineqoSettings.from_env(env)


async def storage(env: Mapping[str, str]) -> AsyncIterator[Storage]:
    async with storage_from_env(env) as opened:
        yield TracedStorage(opened)  # a span per call, when OpenTelemetry is there


async def openai_client(env: Mapping[str, str]) -> AsyncIterator[LLM]:
    client, model = client_from_env(env)
    try:
        yield LLM(client=client, model=model, response_mode=response_mode_from_env(env))
    finally:
        await client.close()


async def fal(env: Mapping[str, str]) -> AsyncIterator[FalImages]:
    async with FalImages.from_env(env) as images:
        yield images


async def http(env: Mapping[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    import httpx

    timeout = httpx.Timeout(60.0, connect=10.0)
    headers = {"User-Agent": "jobrunner-cineqo"}
    async with httpx.AsyncClient(timeout=timeout, headers=headers) as client:
        yield client
