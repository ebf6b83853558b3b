"""OpenTelemetry spans around the plugin's calls to paid APIs and storage, when it is installed.

    process image.generate              the worker's span for the attempt (jobrunner[otel])
    ├── fal submit / fal wait / fal result
    └── storage put
    process character.extract
    └── openai chat.completions         one per request, retries included

The worker's span is current while a handler runs, so these become its children: a trace shows
where an attempt spent its time. Only `opentelemetry-api` is used, and only when it is
installed; without an SDK set up, its tracer makes non-recording spans that cost next to
nothing. A span ends with an error status when its block raises.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ._version import __version__

_tracer: Any = None  # opentelemetry's tracer once looked up, False without opentelemetry


def tracer() -> Any:
    """The plugin's tracer, from the global tracer provider; None without opentelemetry."""
    global _tracer
    if _tracer is None:
        if importlib.util.find_spec("opentelemetry") is None:
            _tracer = False
        else:
            from opentelemetry import trace

            _tracer = trace.get_tracer("jobrunner_cineqo", __version__)
    return _tracer or None


@contextmanager
def span(name: str, **attributes: str | int | float | bool | None) -> Iterator[Any]:
    """A client span named `name` around the block (attributes prefixed `cineqo.`; None ones
    are left out); yields it (or None without opentelemetry) to add attributes to."""
    found = tracer()
    if found is None:
        yield None
        return
    from opentelemetry.trace import SpanKind

    values = {f"cineqo.{key}": value for key, value in attributes.items() if value is not None}
    with found.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=values) as current:
        yield current
