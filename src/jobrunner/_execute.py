"""Run one attempt's handler where it asked to run (the event loop, a thread, a process)."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.to_process
import anyio.to_thread

from ._attempt import Attempt, SettlePolicy, settle
from ._backend import Outcome
from ._context import JobContext, bind_data
from ._errors import PayloadError, sole_exception
from ._job import UnreadableJSON
from ._plugin import Handler


async def run_attempt(attempt: Attempt, policy: SettlePolicy) -> Outcome | None:
    """Run the handler; return the outcome to record, or None when the lease was lost.

    The caller runs this inside a cancel scope it has put in `attempt.scope`: stopping the
    attempt cancels that scope, and the cancellation propagates out of here; the caller then
    asks `settle(attempt, policy)` for the outcome. An attempt stopped before it started
    never calls its handler."""
    job, handler = attempt.job, attempt.handler
    result: Any = None
    failure: BaseException | None = None
    if attempt.stop_reason is None:
        try:
            if isinstance(job.payload, UnreadableJSON):
                raise PayloadError(f"payload is not usable JSON: {job.payload}")
            if handler.payload is not None:  # a bad payload fails now, on its first attempt
                bind_data(attempt.ctx, handler.payload.validate(job.payload, job_type=job.type))
            if handler.timeout:
                with anyio.fail_after(handler.timeout):
                    result = await _call(handler, attempt.ctx)
            else:
                result = await _call(handler, attempt.ctx)
        except TimeoutError:
            failure = TimeoutError(
                f"{job.type} did not finish within its {handler.timeout:g}s timeout"
            )
        except Exception as exc:
            failure = sole_exception(exc)
    return settle(attempt, policy, result, failure)


async def _call(handler: Handler, ctx: JobContext) -> Any:
    if handler.run_in == "thread":
        return await anyio.to_thread.run_sync(handler.func, ctx, abandon_on_cancel=True)
    if handler.run_in == "process":
        payload = ctx.data if handler.payload is not None else ctx.payload
        return await anyio.to_process.run_sync(handler.func, payload, cancellable=True)
    return await handler.func(ctx)
