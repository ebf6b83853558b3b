"""Reliability plugin `rellimits`: jobs for the cluster-wide limits tests.

`limits.hold` sleeps `ms` milliseconds (a default global concurrency of 4); `limits.quick`
returns at once; `limits.api` calls a provider at API_URL and raises RateLimited with the
Retry-After it answers a 429 with (a global concurrency of 1: one call in flight at a time).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from typing import Any

import anyio

import jobrunner

plugin = jobrunner.Plugin("rellimits")
FAST = jobrunner.RetryPolicy(base=0.2, factor=2, cap=1.0, jitter=0.5)


@plugin.handler("limits.hold", global_concurrency=4, lease=3, max_attempts=50, retry=FAST)
async def hold(ctx: jobrunner.JobContext) -> None:
    await anyio.sleep(ctx.payload.get("ms", 200) / 1000)


@plugin.handler("limits.quick", max_attempts=5)
async def quick(ctx: jobrunner.JobContext) -> None:
    return None


def _call(url: str) -> tuple[int, str | None]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Retry-After")


@plugin.handler("limits.api", global_concurrency=1, max_attempts=3)
async def api(ctx: jobrunner.JobContext) -> dict[str, Any]:
    status, retry_after = await anyio.to_thread.run_sync(_call, os.environ["API_URL"])
    if status == 429:
        raise jobrunner.RateLimited("the provider said 429", retry_after=float(retry_after or 1))
    return {"status": status}
