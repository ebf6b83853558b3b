"""`jobrunner limits set|clear|show`, `jobrunner pause` and `jobrunner resume`: cluster-wide
limits and pauses, stored in the database, obeyed by every worker at its next claim."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import Any

from .._errors import ConfigurationError
from .._limits import LimitState, Rate, TypeLimits, pause_text
from ._common import management_runner

AddSettings = Callable[[argparse.ArgumentParser], None]


def add_commands(sub: Any, add_settings: AddSettings) -> None:
    """The `limits`, `pause` and `resume` commands, on the parser's subcommands."""
    limits = sub.add_parser("limits", help="cluster-wide limits of job types")
    actions = limits.add_subparsers(dest="limits_command", metavar="ACTION", required=True)
    setting = actions.add_parser("set", help="override a type's limits (those given)")
    setting.add_argument("type", help="job type, e.g. image.generate")
    setting.add_argument(
        "--concurrency",
        type=_count,
        metavar="N",
        help="jobs running at once, cluster-wide (0: none)",
    )
    setting.add_argument(
        "--rate", type=_rate, metavar="N/PERIOD", help="starts per period, e.g. 60/1m"
    )
    setting.add_argument(
        "--per-user", type=_count, metavar="N", help="jobs running at once per user"
    )
    order = setting.add_mutually_exclusive_group()
    order.add_argument(
        "--fifo",
        dest="fair",
        action="store_false",
        default=None,
        help="claim in strict FIFO order (users do not take turns)",
    )
    order.add_argument(
        "--fair", dest="fair", action="store_true", help="users take turns (default)"
    )
    clear = actions.add_parser("clear", help="drop a type's overrides (its defaults apply)")
    clear.add_argument("type")
    show = actions.add_parser("show", help="configured and effective limits, running, pauses")
    show.add_argument("--json", action="store_true")
    pause = sub.add_parser("pause", help="pause job types or queues cluster-wide")
    resume = sub.add_parser("resume", help="resume paused job types or queues")
    for p in (pause, resume):
        p.add_argument("types", nargs="*", metavar="TYPE")
        p.add_argument("--queue", action="append", default=[], metavar="NAME", dest="queues")
    pause.add_argument("--reason", default=None, help="shown in `status` and `limits show`")
    for p in (setting, clear, show, pause, resume):
        add_settings(p)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value


def _rate(text: str) -> Rate:
    try:
        return Rate.parse(text)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


async def limits(args: argparse.Namespace) -> int:
    async with management_runner(args) as runner:
        if args.limits_command == "set":
            given = TypeLimits(concurrency=args.concurrency, per_user=args.per_user, rate=args.rate)
            if not given.any and args.fair is None:
                raise ConfigurationError(
                    "limits set: give --concurrency, --rate, --per-user, --fifo or --fair"
                )
            await runner.set_limits(
                args.type,
                concurrency=args.concurrency,
                per_user=args.per_user,
                rate=args.rate,
                fair=args.fair,
            )
            states = [s for s in await runner.limits() if s.type == args.type]
            print_limits(states)
        elif args.limits_command == "clear":
            await runner.clear_limits(args.type)
            print(f"{args.type}: overrides cleared")
        else:
            states = await runner.limits()
            queues = await runner.paused_queues()
            if args.json:
                print(json.dumps({"types": [as_dict(s) for s in states], "paused_queues": queues}))
            else:
                print_limits(states)
                print_paused_queues(queues)
    return 0


async def pause(args: argparse.Namespace) -> int:
    _need_some(args, "pause")
    async with management_runner(args) as runner:
        await runner.pause(*args.types, queues=args.queues, reason=args.reason)
    print("paused: " + ", ".join([*args.types, *(f"queue {q}" for q in args.queues)]))
    return 0


async def resume(args: argparse.Namespace) -> int:
    _need_some(args, "resume")
    async with management_runner(args) as runner:
        await runner.resume(*args.types, queues=args.queues)
    print("resumed: " + ", ".join([*args.types, *(f"queue {q}" for q in args.queues)]))
    return 0


def _need_some(args: argparse.Namespace, verb: str) -> None:
    if not args.types and not args.queues:
        raise ConfigurationError(f"{verb}: name job types, or queues with --queue")


def as_dict(state: LimitState) -> dict[str, Any]:
    def limits(lim: TypeLimits) -> dict[str, Any]:
        return {
            "concurrency": lim.concurrency,
            "per_user": lim.per_user,
            "rate": str(lim.rate) if lim.rate else None,
        }

    return {
        "type": state.type,
        "configured": limits(state.configured),
        "defaults": limits(state.defaults),
        "effective": limits(state.effective),
        "running": state.running,
        "paused": state.paused,
        "paused_until": state.paused_until.isoformat() if state.paused_until else None,
        "pause_reason": state.pause_reason,
        "fair": state.fair,
    }


def print_limits(states: Sequence[LimitState]) -> None:
    if not states:
        print("no limits or pauses")
        return
    now = dt.datetime.now(dt.UTC)
    print(f"{'type':<28} {'running':>7} {'concurrency':>12} {'per user':>9} {'rate':>9}  state")
    for s in states:
        eff = s.effective
        print(
            f"{s.type:<28} {s.running:>7} {_limit(eff.concurrency, s.configured.concurrency):>12}"
            f" {_limit(eff.per_user, s.configured.per_user):>9}"
            f" {_limit(eff.rate, s.configured.rate):>9}  {pause_text(s, now)}"
        )


def _limit(effective: object, configured: object) -> str:
    if effective is None:
        return "-"
    return f"{effective}{'*' if configured is not None else ''}"  # *: set at run time


def print_paused_queues(queues: dict[str, str | None]) -> None:
    for queue, reason in queues.items():
        print(f"queue {queue}: paused" + (f" ({reason})" if reason else ""))
