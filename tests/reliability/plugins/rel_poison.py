"""Reliability plugin `relpoison`: handlers that crash, hang, burn CPU or eat memory.

Every leak is capped (LEAK_CAP_MB, default 800) so a broken memory guard fails its test
instead of exhausting a shared machine.
"""

from __future__ import annotations

import os
import time
from typing import Any

import anyio

import jobrunner

plugin = jobrunner.Plugin("relpoison")
QUICK = jobrunner.RetryPolicy(base=0.1, factor=1, cap=0.1, jitter=0)
LEAK_CAP = int(os.environ.get("LEAK_CAP_MB", "800")) << 20
_kept: list[bytes] = []


def spin(seconds: float) -> int:
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return n


@plugin.handler("poison.exit_process", run_in="process", max_attempts=2, retry=QUICK)
def exit_process(payload: Any) -> None:
    """Kill the process it runs in (a worker process of the pool)."""
    os._exit(3)


@plugin.handler("poison.exit_worker", max_attempts=2, lease=1, retry=QUICK)
async def exit_worker(ctx: jobrunner.JobContext) -> None:
    """Kill the whole worker, every time."""
    os._exit(3)


@plugin.handler("poison.cpu", run_in="process", timeout=1.5, max_attempts=2, retry=QUICK)
def cpu(payload: Any) -> None:
    """Burn CPU forever."""
    while True:
        spin(1)


@plugin.handler("poison.cpu_ok", run_in="process", lease=1, max_attempts=1)
def cpu_ok(payload: Any) -> dict[str, Any]:
    """Burn CPU for longer than the lease; the event loop keeps renewing it."""
    spin(payload["seconds"])
    return {"spun": payload["seconds"], "pid": os.getpid()}


@plugin.handler("poison.hang", timeout=1, max_attempts=2, retry=QUICK)
async def hang(ctx: jobrunner.JobContext) -> None:
    """Never return."""
    await anyio.sleep_forever()


@plugin.handler("poison.hang_thread", run_in="thread", timeout=1, max_attempts=2, retry=QUICK)
def hang_thread(ctx: jobrunner.JobContext) -> None:
    """Block a thread for an hour."""
    time.sleep(3600)


@plugin.handler("poison.leak", max_attempts=2, retry=QUICK)
async def leak(ctx: jobrunner.JobContext) -> None:
    """Grow without bound (up to the cap), never returning."""
    hog: list[bytes] = []
    while len(hog) * (20 << 20) < LEAK_CAP:
        hog.append(b"x" * (20 << 20))
        await anyio.sleep(0.05)
    await anyio.sleep_forever()


@plugin.handler("flow.ok", max_attempts=1, lease=2)
async def ok(ctx: jobrunner.JobContext) -> dict[str, Any]:
    """A well-behaved job (it reports progress as it starts, so tests can see it run)."""
    ctx.progress(0.01)
    await anyio.sleep(ctx.payload.get("seconds", 0))
    return {"pid": os.getpid()}


@plugin.handler("grow.keep", max_attempts=1)
async def keep(ctx: jobrunner.JobContext) -> int:
    """Keep `mb` megabytes for the life of the process (a slow leak across jobs)."""
    if sum(len(b) for b in _kept) < LEAK_CAP:
        _kept.append(b"x" * (ctx.payload["mb"] << 20))
    return len(_kept)
