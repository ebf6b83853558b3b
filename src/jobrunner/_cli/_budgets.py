"""`jobrunner budgets set|remove|show` and `jobrunner usage`: what users may spend, per UTC
day or calendar month, and what they spent (recorded by handlers with `ctx.record_usage`)."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from .._budgets import Budget, BudgetHold, Period, UsageTotal
from .._errors import JobrunnerError
from ._common import management_runner

AddSettings = Callable[[argparse.ArgumentParser], None]


def add_commands(sub: Any, add_settings: AddSettings) -> None:
    budgets = sub.add_parser("budgets", help="per-user spending limits (tokens, images, cost)")
    actions = budgets.add_subparsers(dest="budgets_command", metavar="ACTION", required=True)
    setting = actions.add_parser("set", help="add or change a budget")
    remove = actions.add_parser("remove", help="delete a budget")
    for p in (setting, remove):
        who = p.add_mutually_exclusive_group(required=True)
        who.add_argument("--user", metavar="USER_ID", help="the user (the job's user_id)")
        who.add_argument(
            "--default",
            action="store_true",
            help="the default budget of users without one of their own",
        )
        p.add_argument(
            "--unit", required=True, metavar="UNIT", help="what is counted: cost_usd, tokens, …"
        )
    period = setting.add_mutually_exclusive_group(required=True)
    period.add_argument("--daily", type=_amount, metavar="AMOUNT", help="per UTC day")
    period.add_argument("--monthly", type=_amount, metavar="AMOUNT", help="per calendar month")
    setting.add_argument(
        "--types",
        nargs="+",
        metavar="TYPE",
        help="hold only these job types when it is reached (default: every type)",
    )
    which = remove.add_mutually_exclusive_group(required=True)
    which.add_argument("--daily", dest="period", action="store_const", const="daily")
    which.add_argument("--monthly", dest="period", action="store_const", const="monthly")
    show = actions.add_parser("show", help="budgets, who is held back now, and why")
    show.add_argument("--user", metavar="USER_ID", help="only this user")
    show.add_argument("--json", action="store_true")
    usage = sub.add_parser("usage", help="what users spent, by UTC day and unit")
    usage.add_argument("--user", metavar="USER_ID", help="only this user")
    usage.add_argument("--days", type=int, default=7, metavar="N", help="the last N days (7)")
    usage.add_argument("--json", action="store_true")
    for p in (setting, remove, show, usage):
        add_settings(p)


def _amount(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value


async def budgets(args: argparse.Namespace) -> int:
    command = args.budgets_command
    user = None if getattr(args, "default", False) else args.user
    async with management_runner(args) as runner:
        if command == "set":
            period: Period = "daily" if args.daily is not None else "monthly"
            amount = args.daily if args.daily is not None else args.monthly
            await runner.set_budget(
                user_id=user, unit=args.unit, amount=amount, period=period, types=args.types
            )
            print(f"budget set: {_who(user)}, {amount:g} {args.unit} {period}")
        elif command == "remove":
            if not await runner.remove_budget(user_id=user, unit=args.unit, period=args.period):
                raise JobrunnerError(f"no {args.period} budget of {args.unit} for {_who(user)}")
            print(f"budget removed: {_who(user)}, {args.unit} {args.period}")
        else:
            found = [
                b
                for b in await runner.budgets()
                if args.user is None or b.user_id in (None, args.user)
            ]
            holds = await runner.budget_holds(args.user)
            if args.json:
                print(
                    json.dumps(
                        {
                            "budgets": [budget_dict(b) for b in found],
                            "holds": [hold_dict(h) for h in holds],
                        }
                    )
                )
            else:
                print_budgets(found)
                print_holds(holds)
    return 0


async def usage(args: argparse.Namespace) -> int:
    async with management_runner(args) as runner:
        totals = await runner.usage(args.user, days=args.days)
    if args.json:
        print(json.dumps([attrs.asdict(t) for t in totals]))
    else:
        print_usage(totals)
    return 0


def _who(user: str | None) -> str:
    return "default" if user is None else f"user {user}"


def budget_dict(b: Budget) -> dict[str, Any]:
    data = attrs.asdict(b)
    data["types"] = list(b.types) if b.types is not None else None
    return data


def hold_dict(h: BudgetHold) -> dict[str, Any]:
    data = attrs.asdict(h)
    data["types"] = list(h.types) if h.types is not None else None
    data["reason"] = h.reason
    return data


def print_budgets(found: Sequence[Budget]) -> None:
    if not found:
        print("no budgets")
        return
    print(f"{'user':<24} {'unit':<14} {'period':<8} {'amount':>12}  types")
    for b in found:
        user = "(default)" if b.user_id is None else b.user_id
        types = ", ".join(b.types) if b.types else "all"
        print(f"{user:<24} {b.unit:<14} {b.period:<8} {b.amount:>12g}  {types}")


def print_holds(holds: Sequence[BudgetHold]) -> None:
    for h in holds:
        types = f" (holds {', '.join(h.types)})" if h.types else ""
        print(f"held: {h.reason}{types}")


def print_usage(totals: Sequence[UsageTotal]) -> None:
    if not totals:
        print("no usage recorded")
        return
    print(f"{'user':<24} {'day':<10} {'unit':<14} {'amount':>14}")
    for t in totals:
        print(f"{t.user_id:<24} {t.day:<10} {t.unit:<14} {t.amount:>14g}")
