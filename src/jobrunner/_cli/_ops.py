"""`jobrunner workers` and `jobrunner healthcheck`."""

from __future__ import annotations

import argparse
import json
import socket
import urllib.error
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
    healthy, message, details = await _health(args)
    if args.json:
        print(json.dumps({"healthy": healthy, "message": message, **details}))
    else:
        print(("healthy: " if healthy else "unhealthy: ") + message)
    return 0 if healthy else 1


async def _health(args: argparse.Namespace) -> tuple[bool, str, dict[str, object]]:
    """(healthy, what to say, details for --json)."""
    if args.url:
        return _http_health(args.url)
    host = socket.gethostname()
    details: dict[str, object] = {"host": host}
    try:
        async with Runner(worker=False, auto_migrate=False, **settings_kwargs(args)) as runner:
            rows = await runner.backend.worker_list()
            mine = [w for w in rows if w.host == host and (w.seen_seconds_ago or 0) < args.max_age]
            details["workers"] = len(mine)
            if not mine:
                return False, f"no worker heartbeat from {host} in {args.max_age:.0f}s", details
            if args.probe:
                job_id = await runner.enqueue("diag.noop", priority=1_000_000)
                details["probe_job_id"] = job_id
                try:
                    job = await runner.wait_for(job_id, timeout=args.timeout)
                except TimeoutError:
                    await runner.cancel_job(job_id)
                    return False, f"probe job {job_id} did not run in {args.timeout:.0f}s", details
                if job.status != "completed":
                    return False, f"probe job {job_id} {job.status}", details
    except JobrunnerError as exc:
        return False, redact(str(exc)), details
    return True, f"{len(mine)} worker(s) on {host}", details


def _http_health(url: str) -> tuple[bool, str, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            ok = response.status == 200
            body = response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:  # 503: the worker answers that it is not healthy
        ok, body = False, exc.read().decode(errors="replace")
    except OSError as exc:
        return False, f"{url}: {exc}", {"url": url}
    try:
        details: dict[str, object] = {"url": url, "endpoint": json.loads(body)}
    except ValueError:
        details = {"url": url}
    return ok, body, details
