"""Templates and the small formatting helpers they use.

One Jinja environment with autoescaping for every template, the dashboard's and the plugins'
views alike: a value from a job (payload, result, error, user id, type) is always text in the
page, never markup. Error texts, progress messages and JSON shown are passed through
jobrunner's redaction first.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2

from .._secrets import redact
from .._status import JobStatus

TEMPLATES = Path(__file__).parent / "templates"
MAX_SHOWN = 256 * 1024  # characters of one JSON value shown on a page

TemplateSource = Callable[[str], tuple[str, str | None, Callable[[], bool]] | None]


def environment(plugin_templates: TemplateSource) -> jinja2.Environment:
    """The environment: the dashboard's templates, and plugin views' under `view:<type>`."""
    loader = jinja2.ChoiceLoader(
        [
            jinja2.FileSystemLoader(TEMPLATES),
            jinja2.PrefixLoader({"view": jinja2.FunctionLoader(plugin_templates)}, delimiter=":"),
        ]
    )
    env = jinja2.Environment(
        loader=loader,
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        {
            "duration": duration,
            "interval": interval,
            "when": when,
            "number": number,
            "amount": amount,
            "pretty": pretty_json,
            "redact": redact_text,
            "size": size,
            "percent": percent,
        }
    )
    env.globals["STATUSES"] = list(JobStatus)
    return env


def duration(seconds: float | None) -> str:
    """`3h 02m`, `4m 05s`, `12.3s`, `85ms`; `-` for none."""
    if seconds is None:
        return "-"
    if seconds < 0:
        seconds = 0.0
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    return f"{hours // 24}d {hours % 24:02d}h"


def interval(seconds: float) -> str:
    """A schedule's interval in its largest whole unit (`15m`, `1h`, `2d`, `90s`), else as a
    duration (`1.5s`)."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return duration(seconds)


def when(value: dt.datetime | None) -> str:
    """A time in UTC, to the second."""
    if value is None:
        return "-"
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def number(value: int | float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,}"


def amount(value: float | None) -> str:
    """A budget's or a usage's amount: `1,250`, `0.35`; `-` for none."""
    if value is None:
        return "-"
    return f"{value:,.10g}"


def size(value: int | None) -> str:
    if value is None:
        return "-"
    for unit, scale in (("MB", 1 << 20), ("KB", 1 << 10)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value} B"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def redact_text(value: str | None) -> str:
    return "" if value is None else redact(value)


def pretty_json(value: Any) -> str:
    """A JSON value indented for reading, redacted, cut at MAX_SHOWN characters."""
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    text = redact(text)
    if len(text) > MAX_SHOWN:
        return text[:MAX_SHOWN] + f"\n… ({len(text) - MAX_SHOWN:,} more characters)"
    return text


def json_size(value: Any) -> int | None:
    """Bytes of a JSON value as stored (compact UTF-8), None for none."""
    if value is None:
        return None
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return len(text.encode("utf-8"))


def split_traceback(error: str | None) -> tuple[str, str | None]:
    """(the error's summary, its traceback or None): a Python traceback is shown folded."""
    if not error:
        return "", None
    marker = "Traceback (most recent call last):"
    at = error.find(marker)
    if at < 0:
        return error, None
    head, trace = error[:at].strip(), error[at:]
    last = trace.strip().splitlines()[-1] if trace.strip() else ""
    return head or last, trace


def render(env: jinja2.Environment, name: str, context: Mapping[str, Any]) -> str:
    return env.get_template(name).render(context)
