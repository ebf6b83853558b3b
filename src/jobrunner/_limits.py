"""Limits that hold across the whole cluster: values, and the rate syntax `N/PERIOD`.

A job type may have, across every worker: a concurrency (jobs running at once, claimed-ahead
ones included), a concurrency per user, and a rate (job starts per period, spaced evenly: at
most one every period/N, so no window of that period ever holds more than N starts). A
handler declares defaults; overrides live in the database (`jobrunner limits set`, `Runner`,
or SQL on the limits table) and win. A pause (by hand, or back-pressure from `RateLimited`)
keeps a type's jobs pending; so does a concurrency of 0.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

import attrs

from ._errors import ConfigurationError
from ._settings import parse_duration

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\S+)\s*$")


@attrs.frozen(kw_only=True)
class Rate:
    """At most `count` job starts every `seconds`, spaced evenly."""

    count: int = attrs.field(validator=attrs.validators.ge(1))
    seconds: float = attrs.field(validator=attrs.validators.gt(0))

    @classmethod
    def parse(cls, text: str | Rate) -> Rate:
        """`60/1m`, `5/1s`, `1000/1h`, `10/30s`; a bare unit means one of it (`60/m`)."""
        if isinstance(text, Rate):
            return text
        match = _RATE.match(text)
        if not match:
            raise ConfigurationError(f"not a rate: {text!r} (use e.g. 60/1m or 5/1s)")
        period = match[2]
        if period[0].isalpha():
            period = "1" + period
        count = int(match[1])
        if count < 1:
            raise ConfigurationError(f"a rate needs at least one start per period: {text!r}")
        seconds = parse_duration(period)
        if seconds <= 0:
            raise ConfigurationError(f"a rate's period must be positive: {text!r}")
        return cls(count=count, seconds=seconds)

    @property
    def interval(self) -> float:
        """Seconds between two starts."""
        return self.seconds / self.count

    def __str__(self) -> str:
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
            if self.seconds >= size and self.seconds % size == 0:
                return f"{self.count}/{self.seconds / size:g}{unit}"
        return f"{self.count}/{self.seconds:g}s"


@attrs.frozen(kw_only=True)
class TypeLimits:
    """The limits of one job type (a handler's defaults, or overrides)."""

    concurrency: int | None = None
    per_user: int | None = None
    rate: Rate | None = None

    @property
    def any(self) -> bool:
        return self.concurrency is not None or self.per_user is not None or self.rate is not None


@attrs.frozen(kw_only=True)
class LimitState:
    """A type's limits as the cluster sees them now (`jobrunner limits show`)."""

    type: str
    configured: TypeLimits  # overrides stored in the database
    defaults: TypeLimits  # the handlers' defaults, as the last worker started declared them
    running: int = 0  # jobs of the type running now, across the cluster
    paused: bool = False  # by hand
    paused_until: dt.datetime | None = None  # by back-pressure (RateLimited)
    pause_reason: str | None = None
    fair: bool = True

    @property
    def effective(self) -> TypeLimits:
        """What claims obey: each override, else the default."""
        c, d = self.configured, self.defaults
        return TypeLimits(
            concurrency=c.concurrency if c.concurrency is not None else d.concurrency,
            per_user=c.per_user if c.per_user is not None else d.per_user,
            rate=c.rate if c.rate is not None else d.rate,
        )

    def paused_now(self, now: dt.datetime) -> bool:
        return self.paused or (self.paused_until is not None and self.paused_until > now)


def _limits(row: Mapping[str, Any], prefix: str) -> TypeLimits:
    count, seconds = row[prefix + "rate_count"], row[prefix + "rate_seconds"]
    return TypeLimits(
        concurrency=row[prefix + "concurrency"],
        per_user=row[prefix + "per_user"],
        rate=Rate(count=count, seconds=float(seconds)) if count is not None else None,
    )


def limit_state(row: Mapping[str, Any]) -> LimitState:
    """A row of the limits table (its times already datetimes) with its `running` count."""
    return LimitState(
        type=row["type"],
        configured=_limits(row, ""),
        defaults=_limits(row, "default_"),
        running=row["running"],
        paused=bool(row["paused"]),
        paused_until=row["paused_until"],
        pause_reason=row["pause_reason"],
        fair=bool(row["fair"]),
    )


def set_params(job_type: str, limits: TypeLimits, fair: bool | None) -> dict[str, Any]:
    """The parameters of `limits_set`: the overrides given (None: keep the current value)."""
    return {
        "type": job_type,
        "concurrency": limits.concurrency,
        "per_user": limits.per_user,
        "rate_count": limits.rate.count if limits.rate else None,
        "rate_seconds": limits.rate.seconds if limits.rate else None,
        "fair": fair,
    }


def pause_text(state: LimitState, now: dt.datetime) -> str:
    """How a type stands: paused (by hand, or for some seconds more by back-pressure), fifo,
    or active."""
    parts = []
    if state.paused:
        parts.append("paused")
    if state.paused_until is not None and state.paused_until > now:
        seconds = (state.paused_until - now).total_seconds()
        parts.append(f"paused for {seconds:.0f}s more")
    if parts and state.pause_reason:
        parts.append(f"({state.pause_reason})")
    if not state.fair:
        parts.append("fifo")
    return " ".join(parts) or "active"
