"""Plain-text tables for the terminal."""

from __future__ import annotations

from collections.abc import Sequence

from .._backend import TypeStats
from .._job import Job


def progress_line(job: Job) -> str:
    width = 24
    fraction = 1.0 if job.status == "completed" else (job.progress or 0.0)
    filled = int(fraction * width)
    bar = "#" * filled + "-" * (width - filled)
    message = f" {job.progress_message}" if job.progress_message else ""
    return f"job {job.id} {job.status:<9} [{bar}] {fraction:4.0%}{message}"


def print_stats(stats: Sequence[TypeStats]) -> None:
    if not stats:
        print("no jobs")
        return
    statuses = ["pending", "running", "completed", "failed", "cancelled"]
    by_type: dict[str, dict[str, TypeStats]] = {}
    for s in stats:
        by_type.setdefault(s.type, {})[s.status] = s
    header = f"{'type':<28}" + "".join(f"{st:>11}" for st in statuses) + f"{'oldest pending':>16}"
    print(header)
    for job_type, row in sorted(by_type.items()):
        counts = "".join(f"{row[st].count if st in row else 0:>11}" for st in statuses)
        oldest = row.get("pending")
        age = oldest.oldest_pending_seconds if oldest else None
        print(f"{job_type:<28}{counts}{_age(age):>16}")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def print_jobs(jobs: Sequence[Job]) -> None:
    print(f"{'id':>8}  {'type':<24} {'status':<10} {'att':>5}  {'user':<12} error")
    for j in jobs:
        error = (j.error or "").splitlines()[0][:60] if j.error else ""
        attempts = f"{j.attempts}/{j.max_attempts or '-'}"
        print(
            f"{j.id:>8}  {j.type:<24} {j.status:<10} {attempts:>5}  {j.user_id or '':<12} {error}"
        )


def print_job(job: Job, children: Sequence[Job] = ()) -> None:
    for key, value in job.as_dict().items():
        if value is None or key in {"payload", "result", "checkpoint"}:
            continue
        print(f"{key:>17}: {value}")
    import json

    for key in ("payload", "result"):
        value = getattr(job, key)
        if value is not None:
            text = json.dumps(value, ensure_ascii=False)
            print(f"{key:>17}: {text[:2000]}{'…' if len(text) > 2000 else ''}")
    if children:
        print(f"{'children':>17}:")
        for child in reversed(children):
            print(f"{'':>19}└─ {child.id} {child.type} {child.status}")
