"""Helpers shared by tests (import as `from jr_support import …`)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOVELS = REPO / "tests" / "data" / "novels"  # xz-compressed; read through tests/cineqo/corpus.py
JOBRUNNER = str(Path(sys.executable).with_name("jobrunner"))


def write_plugin_dist(root: Path, dist: str, plugin: str, module: str, source: str) -> Path:
    """Fake an installed plugin distribution under `root` (put `root` on PYTHONPATH)."""
    root.mkdir(parents=True, exist_ok=True)
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[jobrunner.plugins]\n{plugin} = {module}:plugin\n")
    (root / f"{module}.py").write_text(source)
    return root


def burn_cpu(payload: dict) -> int:
    """A CPU-bound handler body for `run_in="process"` tests: spins for `seconds`."""
    import time

    end = time.monotonic() + payload["seconds"]
    n = 0
    while time.monotonic() < end:
        n += 1
    return payload.get("answer", n)


def block_thread(ctx) -> str:
    """A blocking handler body for `run_in="thread"` tests."""
    import time

    time.sleep(ctx.payload["seconds"])
    ctx.progress(1.0, "slept in a thread")
    return "woke"


try:  # pydantic is a dependency of jobrunner; kept importable here for worker processes
    from pydantic import BaseModel as _BaseModel
except ImportError:  # pragma: no cover
    _BaseModel = object  # type: ignore[assignment,misc]


class Shout(_BaseModel):  # type: ignore[misc,valid-type]
    """A payload type for `run_in="process"` tests: importable by the worker process."""

    text: str
    times: int = 1


def shout(payload: Shout) -> dict:
    """A process handler that receives its validated payload, not the raw JSON."""
    return {"kind": type(payload).__name__, "shout": payload.text.upper() * payload.times}
