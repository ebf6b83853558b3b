"""`jobrunner doctor`: the troubleshooting checklist, automated."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import attrs

from .._discovery import installed, load
from .._errors import JobrunnerError
from .._runner import Runner
from .._schema import check_schema
from .._secrets import redact
from ._common import settings_kwargs, slow_driver

LIVE_WITHIN = 60.0  # a heartbeat older than this means the worker is gone


@attrs.frozen
class Check:
    name: str
    status: str  # ok, warn, fail
    message: str
    fix: str = ""


async def doctor(args: argparse.Namespace) -> int:
    checks: list[Check] = []
    runner = Runner(worker=False, auto_migrate=False, **settings_kwargs(args))
    try:
        await runner.backend.open()
        await _database_checks(runner, checks)
    finally:
        await runner.backend.aclose()
    await _plugin_checks(checks)
    _host_checks(runner, checks)
    if args.json:
        print(json.dumps([attrs.asdict(c) for c in checks], indent=2))
    else:
        for c in checks:
            mark = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}[c.status]
            print(f"[{mark}] {c.name}: {c.message}")
            if c.fix and c.status != "ok":
                print(f"       fix: {c.fix}")
    return 1 if any(c.status == "fail" for c in checks) else 0


async def _database_checks(runner: Runner, checks: list[Check]) -> None:
    backend = runner.backend
    try:
        await check_schema(backend)
    except JobrunnerError as exc:
        fix = "check DATABASE_URL and that the server is up; then run `jobrunner migrate`"
        checks.append(Check("database", "fail", redact(str(exc)), fix))
        return
    checks.append(Check("database", "ok", f"{backend.description}: reachable and migrated"))
    warning = slow_driver(runner.settings.database_url)
    if warning:
        text, fix = warning.split("; `", 1)
        checks.append(Check("driver", "warn", text, "`" + fix))
    workers = await backend.worker_list()
    live = [w for w in workers if (w.seen_seconds_ago or 0) < LIVE_WITHIN]
    stale = len(workers) - len(live)
    if live:
        summary = ", ".join(f"{w.host}:{w.pid} ({w.running} running)" for w in live[:5])
        checks.append(Check("workers", "ok", f"{len(live)} live: {summary}"))
    else:
        checks.append(
            Check(
                "workers",
                "warn",
                f"no worker heartbeat in the last {LIVE_WITHIN:.0f}s"
                + (f" ({stale} stale rows)" if stale else ""),
                "start one: `jobrunner run --plugin NAME` (see docs/deployment.md)",
            )
        )
    handled = {t for w in live for t in w.job_types}
    stats = await backend.job_stats(active_only=True)
    orphans = sorted({s.type for s in stats if s.status == "pending" and s.type not in handled})
    if orphans and live:
        checks.append(
            Check(
                "orphan job types",
                "warn",
                f"pending jobs no live worker can run: {', '.join(orphans)}",
                "install/enable the plugin that handles them, or cancel the jobs",
            )
        )
    expired, longest = await backend.job_overdue()
    if expired:
        checks.append(
            Check(
                "leases",
                "warn",
                f"{expired} running jobs have expired leases",
                "they are rescued by any live worker; if none runs, start one",
            )
        )
    else:
        age = f"; longest running {longest:.0f}s" if longest else ""
        checks.append(Check("leases", "ok", f"no expired leases{age}"))
    oldest = max((s.oldest_pending_seconds or 0 for s in stats if s.status == "pending"), default=0)
    level = "warn" if oldest > 300 else "ok"
    checks.append(
        Check(
            "queue",
            level,
            f"oldest runnable pending job waited {oldest:.0f}s",
            "add workers or concurrency (`jobrunner run --concurrency N`), or find a stuck type",
        )
    )


async def _plugin_checks(checks: list[Check]) -> None:
    for meta in installed():
        try:
            plugin = load(meta.name)
        except JobrunnerError as exc:
            checks.append(Check(f"plugin {meta.name}", "fail", str(exc), "reinstall the plugin"))
            continue
        reasons = plugin.readiness(os.environ)
        not_ready = {t: r for t, r in reasons.items() if r}
        if not_ready:
            text = "; ".join(f"{t}: {r}" for t, r in sorted(not_ready.items()))
            checks.append(
                Check(
                    f"plugin {meta.name}", "warn", f"not ready: {text}", "set the variables named"
                )
            )
        else:
            checks.append(
                Check(
                    f"plugin {meta.name}", "ok", f"{len(reasons)} job types ready ({meta.version})"
                )
            )
        for name, resource in plugin.resources.items():
            if resource.probe is None or (resource.check and resource.check(os.environ)):
                continue
            checks.append(await _probe(meta.name, name, resource))


async def _probe(plugin: str, name: str, resource: Any) -> Check:
    label = f"{plugin} {name}"
    try:
        with anyio.fail_after(15):
            async with resource.factory(os.environ) as value:
                problem = await resource.probe(value)
    except Exception as exc:
        problem = f"{type(exc).__name__}: {exc}"
    if problem:
        return Check(label, "fail", redact(problem), f"check the {name} settings and network")
    return Check(label, "ok", "reachable and authenticated")


def _host_checks(runner: Runner, checks: list[Check]) -> None:
    url = runner.settings.database_url or ""
    folder = Path(".") if not url.startswith("sqlite") else Path(url.split("///", 1)[-1]).parent
    _disk(checks, "disk", folder if str(folder) else Path("."))
    data_dir = os.environ.get("CINEQO_DATA_DIR")
    if data_dir:
        _disk(checks, "disk (CINEQO_DATA_DIR)", Path(data_dir))
    available, total = _memory()
    if total:
        share = available / total
        level = "warn" if share < 0.1 else "ok"
        checks.append(
            Check(
                "memory",
                level,
                f"{available >> 20} MB of {total >> 20} MB available ({share:.0%})",
                "lower --concurrency or set --max-memory so the supervisor restarts big workers",
            )
        )


def _disk(checks: list[Check], name: str, folder: Path) -> None:
    target = folder if folder.exists() else Path(".")
    usage = shutil.disk_usage(target)
    free_gb = usage.free / 1e9
    level = "fail" if free_gb < 0.2 else "warn" if free_gb < 2 else "ok"
    checks.append(
        Check(name, level, f"{free_gb:.1f} GB free at {target.resolve()}", "free disk space")
    )


def _memory(read: Callable[[], str] = lambda: Path("/proc/meminfo").read_text()) -> tuple[int, int]:
    try:
        fields = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in read().splitlines()}
    except (OSError, ValueError, IndexError):
        return 0, 0
    return fields.get("MemAvailable", 0), fields.get("MemTotal", 0)
