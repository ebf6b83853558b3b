"""Commands other than `run`."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

import anyio

from .._errors import ConfigurationError, PayloadError
from .._job import Job
from .._runner import Runner
from .._settings import parse_duration
from ._common import settings_kwargs
from ._doctor import LIVE_WITHIN
from ._render import print_job, print_jobs, print_stats, progress_line


def _runner(args: argparse.Namespace, *, migrate: bool = False) -> Runner:
    """A runner for inspecting or enqueueing; only commands that write may create the table."""
    options = settings_kwargs(args)
    if not migrate:
        options["auto_migrate"] = False
    return Runner(worker=False, **options)


async def migrate(args: argparse.Namespace) -> int:
    runner = Runner(worker=False, auto_migrate=False, **settings_kwargs(args))
    await runner.backend.open()
    try:
        applied = await runner.migrate()
    finally:
        await runner.backend.aclose()
    if args.json:
        print(json.dumps({"applied": applied}))
    print(f"applied: {', '.join(applied)}" if applied else "already up to date", file=sys.stderr)
    return 0


async def enqueue(args: argparse.Namespace) -> int:
    try:
        payload = json.loads(args.payload)
    except json.JSONDecodeError as exc:
        raise PayloadError(f"--payload is not valid JSON: {exc}") from None
    run_at = None
    if args.run_at:
        try:
            run_at = dt.datetime.fromisoformat(args.run_at)
        except ValueError:
            raise ConfigurationError(f"--run-at: not an ISO 8601 time: {args.run_at!r}") from None
        if run_at.tzinfo is None:
            run_at = run_at.astimezone()
    async with _runner(args, migrate=True) as runner:
        job_id = await runner.enqueue(
            args.type,
            payload,
            user_id=args.user_id,
            queue=args.queue,
            priority=args.priority,
            max_attempts=args.max_attempts,
            run_at=run_at,
            delay=parse_duration(args.delay) if args.delay else None,
            key=args.key,
        )
        print(job_id, flush=True)
        if not args.wait:
            return 0
        await _warn_without_worker(runner, args.type)
        timeout = parse_duration(args.timeout) if args.timeout else None
        try:
            with anyio.fail_after(timeout):
                job = await _follow(runner, job_id)
        except TimeoutError:
            print(
                f"job {job_id} is not done after {args.timeout}; it stays in the queue",
                file=sys.stderr,
            )
            return 1
    if job.status == "completed":
        print(json.dumps(job.result, ensure_ascii=False, indent=2))
        return 0
    print(f"job {job.id} {job.status}: {job.error or ''}", file=sys.stderr)
    return 1


async def _warn_without_worker(runner: Runner, job_type: str) -> None:
    """Say at once when no live worker runs this job type: the wait may then be long."""
    workers = await runner.backend.worker_list()
    live = [w for w in workers if (w.seen_seconds_ago or 0) < LIVE_WITHIN]
    if any(job_type in w.job_types for w in live):
        return
    others = f" ({len(live)} live workers run other types)" if live else ""
    print(
        f"jobrunner: warning: no live worker runs {job_type} jobs{others}; waiting for one "
        "to start (--timeout to give up)",
        file=sys.stderr,
        flush=True,
    )


async def _follow(runner: Runner, job_id: int) -> Job:
    tty = sys.stderr.isatty()
    last = ""
    while True:
        job = await runner.get_job(job_id)
        line = progress_line(job)
        if line != last:
            print(
                ("\r" if tty else "") + line, end="" if tty else "\n", file=sys.stderr, flush=True
            )
            last = line
        if job.status.is_final:
            if tty:
                print(file=sys.stderr)
            return job
        await anyio.sleep(0.1)


async def status(args: argparse.Namespace) -> int:
    async with _runner(args) as runner:
        while True:
            stats = await runner.stats()
            if args.json:
                print(json.dumps([_stat(s) for s in stats]))
            else:
                if args.watch:
                    print("\x1b[2J\x1b[H", end="")
                print_stats(stats)
                await _print_controls(runner)
            if not args.watch:
                return 0
            await anyio.sleep(args.interval)


async def _print_controls(runner: Runner) -> None:
    """Below the counts: paused types and queues, users held by budgets, schedules."""
    from .._limits import pause_text
    from ._budgets import print_holds
    from ._limits import print_paused_queues
    from ._schedules import print_schedules

    now = dt.datetime.now(dt.UTC)
    for state in await runner.limits():
        if state.paused_now(now):
            print(f"{state.type}: {pause_text(state, now)}")
    print_paused_queues(await runner.paused_queues())
    print_holds(await runner.budget_holds())
    schedules = await runner.schedules()
    if schedules:
        print()
        print_schedules(schedules)


def _stat(s: Any) -> dict[str, Any]:
    return {
        "type": s.type,
        "status": s.status,
        "count": s.count,
        "oldest_pending_seconds": s.oldest_pending_seconds,
    }


async def jobs(args: argparse.Namespace) -> int:
    async with _runner(args) as runner:
        if args.jobs_command == "show":
            job = await runner.get_job(args.id)
            children = await runner.list_jobs(parent_id=job.id, limit=1000)
            waiting = await runner.pending_reasons(job)
            if args.json:
                data = job.as_dict()
                data["children"] = [c.as_dict() for c in reversed(children)]
                data["pending_reasons"] = waiting
                print(json.dumps(data, ensure_ascii=False, indent=2))
            else:
                print_job(job, children)
                for reason in waiting:
                    print(f"{'waiting':>17}: {reason}")
            return 0
        if args.jobs_command == "list":
            found = await runner.list_jobs(
                status=args.status, type=args.type, user_id=args.user_id, limit=args.limit
            )
            if args.json:
                print(json.dumps([j.as_dict() for j in found], ensure_ascii=False))
            else:
                print_jobs(found)
            return 0
        if args.jobs_command == "retry":
            job = await runner.retry_job(args.id)
        else:
            job = await runner.cancel_job(args.id)
        verb = "retry" if args.jobs_command == "retry" else "cancel"
        if job.status == "running" and verb == "cancel":
            print(f"job {job.id} is running: asked its worker to stop it")
        else:
            print(f"job {job.id} is {job.status}")
        return 0


async def prune(args: argparse.Namespace) -> int:
    seconds = parse_duration(args.older_than)
    total = 0
    async with _runner(args) as runner:
        while True:
            deleted = await runner.backend.job_delete_finished_before(seconds=seconds)
            total += deleted
            if deleted < 10_000:
                break
    if args.json:
        print(json.dumps({"deleted": total, "older_than_seconds": seconds}))
    else:
        print(f"deleted {total} finished jobs older than {args.older_than}")
    return 0
