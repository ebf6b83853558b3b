"""Usage and budgets: what jobs spent, per user and UTC day, and limits on it.

A handler records what it spent (`ctx.record_usage(tokens=1200, cost_usd=0.02)`): it is
added to the job's `usage` and to its user's total for the day, in any unit. A budget caps a
user's total of one unit per UTC day or calendar month (a default budget applies to users
without one of their own); a user at or over a budget has its jobs (of the budget's types)
held pending until the period rolls over or the budget grows. A running job is never cut off.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import attrs

from ._errors import ConfigurationError

Period = Literal["daily", "monthly"]
PERIODS: tuple[Period, ...] = ("daily", "monthly")


def check_amounts(amounts: Mapping[str, object]) -> dict[str, float]:
    """`amounts` as {unit: float}, refusing what is not a finite number of 0 or more."""
    checked: dict[str, float] = {}
    for unit, value in amounts.items():
        if not unit:
            raise ConfigurationError("a usage unit needs a name")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigurationError(f"usage {unit!r} must be a number, not {value!r}")
        if not math.isfinite(value) or value < 0:
            raise ConfigurationError(f"usage {unit!r} must be finite and 0 or more, not {value}")
        checked[unit] = float(value)
    return checked


@attrs.frozen(kw_only=True)
class UsageEntry:
    """What one job spent since the last time its usage was written."""

    job_id: int
    user_id: str | None
    amounts: Mapping[str, float]


@attrs.frozen(kw_only=True)
class Budget:
    """At most `amount` of `unit` per period for `user_id` (None: the default budget of users
    without one of their own), counted over every job type, holding back jobs of `types`
    (None: every type)."""

    user_id: str | None
    unit: str
    period: Period
    amount: float
    types: tuple[str, ...] | None = None
    #: What its user spent of `unit` in the current period, as `budgets()` reads it (None for
    #: a default budget, and for one not read from the database). Not part of its value.
    spent: float | None = attrs.field(default=None, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.period not in PERIODS:
            raise ConfigurationError(f"a budget's period is daily or monthly, not {self.period!r}")
        if not self.unit:
            raise ConfigurationError("a budget needs a unit, e.g. cost_usd or tokens")
        if not math.isfinite(self.amount) or self.amount < 0:
            raise ConfigurationError(f"a budget is a finite amount of 0 or more: {self.amount}")
        if self.user_id == "":
            raise ConfigurationError("a budget's user cannot be empty (None: the default)")


@attrs.frozen(kw_only=True)
class BudgetHold:
    """A user at or over a budget now, and so held back (for jobs of `types`)."""

    user_id: str
    unit: str
    period: Period
    amount: float
    spent: float
    types: tuple[str, ...] | None = None
    by_default: bool = False

    @property
    def reason(self) -> str:
        which = "default " if self.by_default else ""
        return (
            f"user {self.user_id} is over its {which}{self.period} budget of {self.unit}: "
            f"{self.spent:g} of {self.amount:g}"
        )


@attrs.frozen(kw_only=True)
class UsageTotal:
    """A user's total of one unit on one UTC day."""

    user_id: str
    day: str  # YYYY-MM-DD
    unit: str
    amount: float
