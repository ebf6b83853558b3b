"""How long a provider's 429 asks us to wait, from its headers (pure).

    retry-after-ms: 1500                          milliseconds (OpenAI sends it)
    Retry-After: 30                               seconds
    Retry-After: Wed, 21 Oct 2026 07:28:00 GMT    an HTTP date (RFC 9110), relative to `now`

None when no header gives a usable value; a date in the past is 0 seconds.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def retry_after(
    headers: Mapping[str, str], now: Callable[[], dt.datetime] = _utcnow
) -> float | None:
    """Seconds to wait, from `retry-after-ms` or `Retry-After` (names in any case)."""
    lower = {key.lower(): value.strip() for key, value in headers.items()}
    millis = _number(lower.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000.0
    value = lower.get("retry-after")
    if not value:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an obsolete date form without a zone: HTTP dates are GMT
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now()).total_seconds())


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return max(0.0, number) if math.isfinite(number) else None
