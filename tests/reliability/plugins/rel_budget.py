"""Reliability plugin `relbudget`: a job that pays for what a stand-in LLM says it spent.

`budget.llm` posts the payload's prompt to the provider at LLM_URL, which answers like an
OpenAI chat completion (`{"choices": [...], "usage": {"total_tokens": N}}`), records the
tokens with `ctx.record_usage`, then post-processes the answer for HOLD_AFTER seconds
(longer than the worker's 1 s usage flush: the spend is written before the job ends). One job
per user runs at a time, cluster-wide (`per_user_concurrency=1`).
"""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any

import anyio

import jobrunner

plugin = jobrunner.Plugin("relbudget")
HOLD_AFTER = float(os.environ.get("HOLD_AFTER", "1.3"))


def _complete(url: str, user: str | None, prompt: str) -> dict[str, Any]:
    body = json.dumps(
        {"model": "stand-in", "user": user, "messages": [{"role": "user", "content": prompt}]}
    ).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@plugin.handler("budget.llm", per_user_concurrency=1, max_attempts=1)
async def llm(ctx: jobrunner.JobContext) -> dict[str, Any]:
    answer = await anyio.to_thread.run_sync(
        _complete, os.environ["LLM_URL"], ctx.user_id, ctx.payload.get("prompt", "")
    )
    ctx.record_usage(tokens=answer["usage"]["total_tokens"])
    await anyio.sleep(HOLD_AFTER)
    return {"text": answer["choices"][0]["message"]["content"]}
