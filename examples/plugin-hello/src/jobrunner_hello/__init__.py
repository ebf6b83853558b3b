"""An example jobrunner plugin: one job type, `hello.greet`."""

from __future__ import annotations

from typing import Any

from jobrunner import JobContext, PermanentFailure, Plugin

plugin = Plugin("hello")


@plugin.handler("hello.greet", concurrency=2, timeout=10, max_attempts=3)
async def greet(ctx: JobContext) -> dict[str, Any]:
    """Greet the `name` given in the payload."""
    name = ctx.payload.get("name") if isinstance(ctx.payload, dict) else None
    if not isinstance(name, str) or not name.strip():
        # Retrying cannot fix a bad payload: fail at once.
        raise PermanentFailure('the payload needs a "name", e.g. {"name": "Ada"}')
    ctx.progress(0.5, f"greeting {name}")
    ctx.log.info("greeting %s", name)
    return {"greeting": f"Hello, {name}!", "attempt": ctx.attempt}
