"""Harness side of the worker protocol: start a worker process and read its JSON events.

A worker prints one JSON object per line on stdout: ``{"event": "ready"}`` once started,
``{"event": "job", "lat_ms": …}`` per job for the ``latency`` handler, and
``{"event": "done", "handled": n, "elapsed": s}`` when it stops (after ``--expect`` jobs,
or on SIGTERM). Anything else on stdout is ignored; stderr goes to a temporary file that
is quoted when the worker fails.
"""

from __future__ import annotations

import json
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import IO, Any

import anyio
import attrs
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

ROOT = Path(__file__).resolve().parent.parent
MAX_LINE = 1 << 20


class WorkerError(RuntimeError):
    """The worker process failed, exited early or did not answer in time."""


@attrs.define
class WorkerProcess:
    process: Process
    stderr: IO[bytes]
    _lines: BufferedByteReceiveStream

    @property
    def pid(self) -> int:
        return self.process.pid

    def stderr_lines(self) -> int:
        """Lines the worker wrote to stderr so far (its log, for the ``jobrunner-cli`` rows)."""
        self.stderr.flush()
        return Path(self.stderr.name).read_bytes().count(b"\n")

    def stderr_tail(self, limit: int = 2000) -> str:
        self.stderr.flush()
        text = Path(self.stderr.name).read_bytes().decode(errors="replace")
        return text[-limit:]

    def failure(self, what: str) -> WorkerError:
        """``what``, the worker's last stderr line (the error, as a rule), then its tail."""
        tail = self.stderr_tail()
        last = next((line for line in reversed(tail.splitlines()) if line.strip()), "")
        return WorkerError(f"{what}: {last.strip()}\n{tail}")

    async def next_event(self, timeout: float) -> dict[str, Any]:
        """The next JSON event line; non-JSON output is skipped."""
        with anyio.fail_after(timeout):
            while True:
                try:
                    line = await self._lines.receive_until(b"\n", MAX_LINE)
                except (anyio.EndOfStream, anyio.IncompleteRead) as exc:
                    raise self.failure("worker exited early") from exc
                with suppress(ValueError):
                    event = json.loads(line)
                    if isinstance(event, dict) and "event" in event:
                        return event

    async def wait_for(self, kind: str, timeout: float) -> dict[str, Any]:
        """Skip events until one of ``kind`` arrives."""
        with anyio.fail_after(timeout):
            while True:
                event = await self.next_event(timeout)
                if event["event"] == kind:
                    return event

    async def stop(self, timeout: float = 30.0) -> dict[str, Any]:
        """Ask for a graceful stop (SIGTERM) and return its ``done`` event."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await self.wait_for("done", timeout)


@asynccontextmanager
async def start_worker(
    command: Sequence[str], *, ready_timeout: float = 60.0
) -> AsyncIterator[WorkerProcess]:
    """Start ``command`` (cwd: the repository root), wait for ``ready``, kill it on exit."""
    with tempfile.NamedTemporaryFile(prefix="bench-worker-", suffix=".log") as stderr:
        process = await anyio.open_process(
            list(command), stdout=subprocess.PIPE, stderr=stderr, cwd=ROOT
        )
        assert process.stdout is not None
        worker = WorkerProcess(process, stderr, BufferedByteReceiveStream(process.stdout))
        try:
            try:
                await worker.wait_for("ready", ready_timeout)
            except TimeoutError as exc:
                raise worker.failure("worker not ready in time") from exc
            yield worker
        finally:
            if process.returncode is None:
                process.kill()
            with anyio.move_on_after(5, shield=True):
                await process.wait()
            await process.aclose()
