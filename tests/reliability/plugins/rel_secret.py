"""Reliability plugin `relsecret`: handlers that try hard to leak the environment's secrets."""

from __future__ import annotations

import logging
import os

import anyio

import jobrunner

plugin = jobrunner.Plugin("relsecret")
NAMES = ("OPENAI_API_KEY", "FAL_KEY", "R2_SECRET_ACCESS_KEY", "DATABASE_URL")


def _all_secrets() -> str:
    return " ".join(f"{name}={os.environ[name]}" for name in NAMES)


@plugin.handler("secret.raise", max_attempts=1)
async def raise_secret(ctx: jobrunner.JobContext) -> None:
    """Fail with every secret in the message."""
    raise RuntimeError(f"upstream refused the request ({_all_secrets()})")


@plugin.handler("secret.chain", max_attempts=2, retry=jobrunner.RetryPolicy(base=0.1, cap=0.1))
async def chain(ctx: jobrunner.JobContext) -> None:
    """An unexpected error caused by another one holding the secrets (a full traceback)."""
    try:
        {}[f"missing {_all_secrets()}"]
    except KeyError as exc:
        raise ConnectionError(f"lost {os.environ['DATABASE_URL']}") from exc


@plugin.handler("secret.log", max_attempts=1)
async def log_secret(ctx: jobrunner.JobContext) -> str:
    """Log the secrets through the job's logger and a library's; with payload `info`, also
    log the API key alone at INFO level."""
    if ctx.payload.get("info"):
        ctx.log.info("using API key %s", os.environ["OPENAI_API_KEY"])
    ctx.log.warning("configured: %s", _all_secrets())
    ctx.log.warning("retrying with %s", os.environ["FAL_KEY"])
    logging.getLogger("somelib.http").error("auth header %s", os.environ["OPENAI_API_KEY"])
    return "logged"


@plugin.handler("secret.progress", max_attempts=1)
async def progress_secret(ctx: jobrunner.JobContext) -> str:
    """Report progress naming the database URL (with its password)."""
    ctx.progress(0.5, f"copying from {os.environ['DATABASE_URL']}")
    await anyio.sleep(1.3)  # the progress loop stores reports once a second
    return "copied"
