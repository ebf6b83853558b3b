"""The `bench` plugin: the harness's handlers, run by the real `jobrunner run`.

It speaks the harness's worker protocol (``benchmarks/_workerproc.py``) on stdout, while
the CLI logs to stderr: ``{"event": "ready"}`` when the worker opens the plugin's ``bench``
resource (after connecting and migrating, just before the worker loop starts),
``{"event": "job", "lat_ms": …}`` per ``bench.latency`` job, and ``{"event": "done",
"handled": n, "elapsed": s, "cpu": s}`` when the worker closes it (after its loop returned:
with ``--burst`` once the queue is empty, else on SIGTERM). That is the span and the CPU
the harness's other workers report (``benchmarks/_workerkit.py``, which this mirrors: the
plain install cannot import the harness).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
import attrs

from jobrunner import JobContext, Plugin

SLEEP_SECONDS = 0.010

plugin = Plugin("bench")


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@attrs.define
class Tally:
    handled: int = 0
    started: float = attrs.field(factory=time.perf_counter)
    cpu_started: float = attrs.field(factory=cpu_seconds)

    def done(self) -> None:
        emit(
            "done",
            handled=self.handled,
            elapsed=time.perf_counter() - self.started,
            cpu=cpu_seconds() - self.cpu_started,
        )


@plugin.resource("bench")
async def tally(env: Mapping[str, str]) -> AsyncIterator[Tally]:
    counts = Tally()
    emit("ready")
    try:
        yield counts
    finally:
        counts.done()


@plugin.handler("bench.noop", max_attempts=1, requires=["bench"])
async def noop(ctx: JobContext) -> None:
    """Return at once."""
    ctx.resource("bench").handled += 1


@plugin.handler("bench.sleep", max_attempts=1, requires=["bench"])
async def sleep(ctx: JobContext) -> None:
    """Await 10 ms."""
    await anyio.sleep(SLEEP_SECONDS)
    ctx.resource("bench").handled += 1


@plugin.handler("bench.latency", max_attempts=1, requires=["bench"])
async def latency(ctx: JobContext) -> None:
    """Report the time since the enqueuer's `time.time()` in the payload's `t`."""
    emit("job", lat_ms=(time.time() - float(ctx.payload["t"])) * 1000.0)
    ctx.resource("bench").handled += 1
