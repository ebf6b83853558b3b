"""Reliability plugin `relsoak`: the soak's probe and its mix of job shapes.

`soak.probe` returns what its process holds at that moment: resident memory, asyncio tasks,
open file descriptors and threads (run alone, between batches, so no other job's task counts).
`soak.mix` reports progress, fails its first attempt with a Retry when `retry` is set, and,
with `children`, enqueues that many `soak.mix` children and waits for them before it ends.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import jobrunner

plugin = jobrunner.Plugin("relsoak")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@plugin.handler("soak.probe", max_attempts=1)
async def probe(ctx: jobrunner.JobContext) -> dict[str, Any]:
    return {
        "rss": _rss_bytes(),
        "tasks": len(asyncio.all_tasks()),
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": threading.active_count(),
    }


@plugin.handler("soak.mix", max_attempts=3, retry=jobrunner.RetryPolicy(base=0.01, cap=0.05))
async def mix(ctx: jobrunner.JobContext) -> dict[str, Any]:
    payload = ctx.payload
    ctx.progress(0.5, "half way")
    if payload.get("retry") and ctx.attempt == 1:
        raise jobrunner.Retry("the first attempt of a retried job", delay=0)
    children = payload.get("children", 0)
    if children and not await ctx.children():
        await ctx.enqueue_many(
            [jobrunner.NewJob(type="soak.mix", payload={"n": i}) for i in range(children)]
        )
        raise jobrunner.WaitForChildren()
    ctx.progress(1.0, "done")
    return {"attempt": ctx.attempt}
