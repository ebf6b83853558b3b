"""Worker side of the worker protocol, shared by the Python workers (see ``_workerproc``).

A Python worker module parses its arguments with ``parse_args``, runs every job through
``Tally.handle`` and reports with ``emit``. Handlers: ``noop`` does nothing, ``sleep``
awaits 10 ms, ``latency`` reports ``time.time() - payload["t"]`` (the enqueuer's wall clock
at enqueue time) as ``lat_ms``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anyio
import attrs

HANDLERS = ("noop", "sleep", "latency")
SLEEP_SECONDS = 0.010


@attrs.frozen(kw_only=True)
class WorkerArgs:
    dsn: str
    handler: str
    expect: int
    concurrency: int | None
    batch: int | None


def parse_args(argv: Sequence[str] | None = None) -> WorkerArgs:
    parser = argparse.ArgumentParser(description="benchmark worker")
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--handler", choices=HANDLERS, default="noop")
    parser.add_argument("--expect", type=int, default=0, help="stop after N jobs (0: never)")
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--batch", type=int, default=None)
    ns = parser.parse_args(argv)
    return WorkerArgs(
        dsn=ns.dsn,
        handler=ns.handler,
        expect=ns.expect,
        concurrency=ns.concurrency,
        batch=ns.batch,
    )


def python_module(module: str) -> list[str]:
    """Command line running ``module`` with this interpreter (cwd must be the repository root)."""
    return [sys.executable, "-m", module]


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def decode_payload(raw: bytes | str | Mapping[str, Any] | None) -> Mapping[str, Any]:
    if raw is None or raw in (b"", ""):
        return {}
    if isinstance(raw, Mapping):
        return raw
    return json.loads(raw)


@attrs.define
class Tally:
    """Runs the chosen handler for each job, counts jobs and times the run."""

    args: WorkerArgs
    on_expected: Callable[[], None] = lambda: None
    handled: int = 0
    started: float = 0.0
    cpu_started: float = 0.0

    def start(self) -> None:
        """Mark the start of the timed run and tell the harness we are ready."""
        self.started = time.perf_counter()
        self.cpu_started = cpu_seconds()
        emit("ready")

    def finish(self) -> None:
        emit(
            "done",
            handled=self.handled,
            elapsed=time.perf_counter() - self.started,
            cpu=cpu_seconds() - self.cpu_started,
        )

    async def handle(self, payload: Mapping[str, Any]) -> None:
        if self.args.handler == "latency":
            emit("job", lat_ms=(time.time() - float(payload["t"])) * 1000.0)
        elif self.args.handler == "sleep":
            await anyio.sleep(SLEEP_SECONDS)
        self.handled += 1
        if self.handled == self.args.expect:
            self.on_expected()
