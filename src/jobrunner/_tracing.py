"""OpenTelemetry tracing (extra `jobrunner[otel]`): a span per attempt, in the trace that
enqueued the job.

    enqueue (Runner.enqueue, ctx.enqueue, or SQL)      the worker
        └─ job.traceparent = the current span's ──▶ span "process <type>", its parent
                                                     (current while the handler runs, so the
                                                     handler's own spans are its children)

Only opentelemetry-api is needed: whoever runs the worker chooses the SDK and the exporter
(`opentelemetry-instrument jobrunner run`, or the embedding service's own set-up, done before
the `Runner` starts). Without an SDK, `Runner` makes no spans at all: they would record
nothing and cost every job a few microseconds.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from ._errors import ConfigurationError
from ._job import Job
from ._observe import Observer
from ._status import OutcomeKind
from ._version import __version__

#: Outcomes after which the attempt's span is marked as an error.
_ERRORS = frozenset({OutcomeKind.FAILED, OutcomeKind.RETRIED})
_api: Any = None  # opentelemetry's modules, once looked up: (trace, context, propagator) or ()


def available() -> bool:
    """True when opentelemetry-api is installed."""
    return bool(_otel())


def configured() -> bool:
    """True when an OpenTelemetry SDK is set up in this process (a global tracer provider
    other than the API's placeholder): spans then go somewhere, so they are worth making."""
    api = _otel()
    if not api:
        return False
    trace = api[0]
    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def _otel() -> Any:
    global _api
    if _api is None:
        if importlib.util.find_spec("opentelemetry") is None:
            _api = ()
        else:
            from opentelemetry import context, trace
            from opentelemetry.trace.propagation.tracecontext import (
                TraceContextTextMapPropagator,
            )

            _api = (trace, context, TraceContextTextMapPropagator())
    return _api


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the current span; None without OpenTelemetry or a span."""
    api = _otel()
    if not api:
        return None
    trace, _, propagator = api
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    propagator.inject(carrier)
    return carrier.get("traceparent")


class TracingObserver(Observer):
    """Starts a span when an attempt's handler starts and ends it with the attempt's outcome.

    `Runner` adds one by itself when an OpenTelemetry SDK is set up (`tracing=False` turns it
    off); pass one as `observer=` to choose the `tracer_provider`.
    """

    def __init__(self, tracer_provider: Any = None) -> None:
        api = _otel()
        if not api:
            raise ConfigurationError(
                "tracing needs opentelemetry-api: pip install 'jobrunner[otel]'"
            )
        self._trace, self._context, self._propagator = api
        self._tracer = self._trace.get_tracer(
            "jobrunner", __version__, tracer_provider=tracer_provider
        )
        self._spans: dict[tuple[int, int], tuple[Any, Any]] = {}

    def job_running(self, job: Job) -> None:
        trace = self._trace
        parent = self._propagator.extract({"traceparent": job.traceparent or ""})
        span = self._tracer.start_span(
            f"process {job.type}",
            context=parent,  # an empty context when the job has none: a new trace
            kind=trace.SpanKind.CONSUMER,
            attributes=_attributes(job),
        )
        token = self._context.attach(trace.set_span_in_context(span))
        self._spans[job.id, job.attempts] = (span, token)

    def job_raised(self, job: Job, exc: BaseException, kind: OutcomeKind) -> None:
        held = self._spans.get((job.id, job.attempts))
        if held is not None:
            held[0].record_exception(exc)

    def job_ended(self, job: Job, kind: OutcomeKind, duration: float) -> None:
        self._end(job, kind.value, error=kind in _ERRORS)

    def job_lost(self, job: Job) -> None:
        self._end(job, "lost", error=True)

    def _end(self, job: Job, outcome: str, *, error: bool) -> None:
        held = self._spans.pop((job.id, job.attempts), None)
        if held is None:  # handed back before its handler started: it had no span
            return
        span, token = held
        span.set_attribute("jobrunner.outcome", outcome)
        if error:
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, f"attempt {outcome}"))
        span.end()
        self._context.detach(token)


def _attributes(job: Job) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "messaging.system": "jobrunner",
        "messaging.operation.type": "process",
        "messaging.destination.name": job.queue,
        "messaging.message.id": str(job.id),
        "jobrunner.job.id": job.id,
        "jobrunner.job.type": job.type,
        "jobrunner.job.queue": job.queue,
        "jobrunner.job.attempt": job.attempts,
    }
    if job.user_id is not None:
        attributes["jobrunner.job.user_id"] = job.user_id
    return attributes
