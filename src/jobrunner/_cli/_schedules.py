"""`jobrunner schedules add|list|remove|pause|resume`: periodic jobs stored in the database,
each tick enqueued once by one of the running workers."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import Any

from .._errors import JobrunnerError, PayloadError
from .._schedules import Schedule
from ._common import management_runner

AddSettings = Callable[[argparse.ArgumentParser], None]


def add_commands(sub: Any, add_settings: AddSettings) -> None:
    schedules = sub.add_parser("schedules", help="periodic jobs (cron or every N seconds)")
    actions = schedules.add_subparsers(dest="schedules_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="store a schedule: one job of TYPE per tick")
    add.add_argument("name", help="the schedule's name, e.g. nightly-cleanup")
    when = add.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", metavar="EXPR", help="a cron expression, e.g. '0 3 * * *'")
    when.add_argument("--every", metavar="DURATION", help="an interval, e.g. 10m, 30s, 1h")
    add.add_argument("--type", required=True, metavar="TYPE", help="the job type to enqueue")
    add.add_argument("--payload", default="{}", metavar="JSON", help="each job's payload")
    add.add_argument("--queue", default="default", metavar="NAME")
    add.add_argument("--priority", type=int, default=0, metavar="N")
    add.add_argument(
        "--tz", default="UTC", metavar="ZONE", help="the cron expression's time zone (UTC)"
    )
    add.add_argument(
        "--missed",
        choices=["once", "skip"],
        default="once",
        help="a tick missed while no worker ran: enqueued once at start-up (default), or skipped",
    )
    listing = actions.add_parser("list", help="every schedule, with its next and last run")
    listing.add_argument("--json", action="store_true")
    parsers = [add, listing]
    for verb, text in (
        ("remove", "delete a schedule"),
        ("pause", "stop enqueueing a schedule's ticks"),
        ("resume", "enqueue a paused schedule's ticks again (from the next one)"),
    ):
        p = actions.add_parser(verb, help=text)
        p.add_argument("name")
        parsers.append(p)
    for p in parsers:
        add_settings(p)


async def schedules(args: argparse.Namespace) -> int:
    command = args.schedules_command
    async with management_runner(args) as runner:
        if command == "add":
            try:
                payload = json.loads(args.payload)
            except json.JSONDecodeError as exc:
                raise PayloadError(f"--payload is not valid JSON: {exc}") from None
            await runner.add_schedule(
                args.name,
                type=args.type,
                cron=args.cron,
                every=args.every,
                payload=payload,
                queue=args.queue,
                priority=args.priority,
                tz=args.tz,
                missed=args.missed,
            )
            print(f"schedule {args.name} added: {args.type}, " + _added_when(args))
        elif command == "list":
            found = await runner.schedules()
            if args.json:
                print(json.dumps([as_dict(s) for s in found], ensure_ascii=False))
            else:
                print_schedules(found)
        elif command == "remove":
            if not await runner.remove_schedule(args.name):
                raise JobrunnerError(f"no schedule named {args.name!r}")
            print(f"schedule {args.name} removed")
        else:
            if not await runner.pause_schedule(args.name, paused=command == "pause"):
                raise JobrunnerError(f"no schedule named {args.name!r}")
            print(f"schedule {args.name} {'paused' if command == 'pause' else 'resumed'}")
    return 0


def _added_when(args: argparse.Namespace) -> str:
    if args.cron:
        return f"cron {args.cron}" + (f" ({args.tz})" if args.tz != "UTC" else "")
    return f"every {args.every}"


def _time(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.UTC).isoformat()


def as_dict(s: Schedule) -> dict[str, Any]:
    return {
        "name": s.name,
        "type": s.type,
        "payload": s.payload,
        "queue": s.queue,
        "priority": s.priority,
        "cron": s.cron,
        "every": s.every,
        "tz": s.tz,
        "missed": s.missed,
        "paused": s.paused,
        "origin": s.origin,
        "next_run_at": _time(s.next_due(dt.datetime.now(dt.UTC))),
        "last_run_at": _time(s.last_run_at),
        "last_job_id": s.last_job_id,
    }


def _short(moment: dt.datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def print_schedules(found: Sequence[Schedule]) -> None:
    if not found:
        print("no schedules")
        return
    now = dt.datetime.now(dt.UTC)
    rows = [
        (
            s.name,
            s.type,
            s.when,
            _short(s.next_due(now)),
            _short(s.last_run_at) + (f" #{s.last_job_id}" if s.last_job_id else ""),
            ("paused" if s.paused else "active") + (f" ({s.origin})" if s.origin != "cli" else ""),
        )
        for s in found
    ]
    head = ("schedule", "type", "when", "next run (UTC)", "last run (UTC)", "state")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head) - 1)]
    for row in [head, *rows]:
        print(
            "  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths, strict=False)) + "  " + row[-1]
        )
