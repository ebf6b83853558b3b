"""`jobrunner workers` and `jobrunner healthcheck`."""

from __future__ import annotations

import argparse
import json
import socket
import urllib.request

import attrs

from .._backend import WorkerInfo
from .._errors import JobrunnerError
from .._runner import Runner
from .._secrets import redact
from ._common import settings_kwargs
from ._doctor import LIVE_WITHIN


async def workers(args: argparse.Namespace) -> int:
    async with Runner(worker=False, auto_migrate=False, **settings_kwargs(args)) as runner:
        rows = await runner.backend.worker_list()
    live = [w for w in rows if args.all or (w.seen_seconds_ago or 0) < LIVE_WITHIN]
    if args.json:
        print(json.dumps([_row(w) for w in live], default=str))
        return 0
    if not live:
        print("no live workers")
        return 0
    print(f"{'host':<20} {'pid':>7} {'running':>8} {'done':>9} {'seen':>7}  started / types")
    for w in live:
        seen = f"{w.seen_seconds_ago:.0f}s" if w.seen_seconds_ago is not None else "-"
        types = ", ".join(w.job_types[:4]) + ("…" if len(w.job_types) > 4 else "")
        print(
            f"{w.host:<20} {w.pid:>7} {w.running:>4}/{w.concurrency:<3} {w.processed:>9} "
            f"{seen:>7}  {w.started_at:%Y-%m-%d %H:%M} {types}"
        )
    return 0


def _row(w: WorkerInfo) -> dict[str, object]:
    return attrs.asdict(w)


async def healthcheck(args: argparse.Namespace) -> int:
    """Exit 0 when this host's worker is alive (heartbeat, or its /healthz) and the database
    answers; with --probe, also run a diag.noop job through the queue."""
    if args.url:
        return _http_health(args.url)
    try:
        async with Runner(worker=False, auto_migrate=False, **settings_kwargs(args)) as runner:
            rows = await runner.backend.worker_list()
            host = socket.gethostname()
            mine = [w for w in rows if w.host == host and (w.seen_seconds_ago or 0) < args.max_age]
            if not mine:
                print(f"unhealthy: no worker heartbeat from {host} in {args.max_age:.0f}s")
                return 1
            if args.probe:
                job_id = await runner.enqueue("diag.noop", priority=1_000_000)
                try:
                    job = await runner.wait_for(job_id, timeout=args.timeout)
                except TimeoutError:
                    await runner.cancel_job(job_id)
                    print(f"unhealthy: probe job {job_id} did not run in {args.timeout:.0f}s")
                    return 1
                if job.status != "completed":
                    print(f"unhealthy: probe job {job_id} {job.status}")
                    return 1
    except JobrunnerError as exc:
        print(f"unhealthy: {redact(str(exc))}")
        return 1
    print(f"healthy: {len(mine)} worker(s) on {host}")
    return 0


def _http_health(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            ok = response.status == 200
            body = response.read().decode(errors="replace")
    except OSError as exc:
        print(f"unhealthy: {url}: {exc}")
        return 1
    print(("healthy: " if ok else "unhealthy: ") + body)
    return 0 if ok else 1
