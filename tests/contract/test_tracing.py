"""OpenTelemetry on each backend, with the SDK's in-memory exporter: a span per attempt, whose
parent is the span that enqueued the job, from Python or from a `traceparent` written by SQL."""

from __future__ import annotations

import anyio
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from jobrunner import (
    ClaimSlot,
    JobContext,
    NewJob,
    PermanentFailure,
    Plugin,
    RetryPolicy,
    TracingObserver,
)
from jobrunner._tracing import current_traceparent

pytestmark = pytest.mark.anyio

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
PARENT_ID = 0xB7AD6B7169203331
TRACEPARENT = f"00-{TRACE_ID:032x}-{PARENT_ID:016x}-01"


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def make_plugin(tracer: trace.Tracer) -> Plugin:
    plugin = Plugin("tr")

    @plugin.handler("tr.parent")
    async def parent(ctx: JobContext) -> str | None:
        with tracer.start_as_current_span("inner work"):
            await ctx.enqueue("tr.child", {"n": 1})
        return current_traceparent()

    @plugin.handler("tr.child")
    async def child(ctx: JobContext) -> None:
        return None

    @plugin.handler("tr.broken", max_attempts=2, retry=RetryPolicy(base=30))
    async def broken(ctx: JobContext) -> None:
        raise RuntimeError("it broke")

    @plugin.handler("tr.never")
    async def never(ctx: JobContext) -> None:
        raise PermanentFailure("no")

    return plugin


def traceparent(context: trace.SpanContext) -> str:
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def by_name(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


async def test_the_attempt_span_continues_the_trace_that_enqueued_the_job(engine, spans):
    provider, exporter = spans
    tracer = provider.get_tracer("test")
    observer = TracingObserver(tracer_provider=provider)
    async with engine.runner(plugins=[make_plugin(tracer)], observer=observer) as runner:
        with tracer.start_as_current_span("POST /novels") as request:
            job_id = await runner.enqueue("tr.parent", user_id="u1")
        job = await runner.wait_for(job_id, timeout=30)
        [child] = await runner.list_jobs(parent_id=job_id)
        await runner.wait_for(child.id, timeout=30)
    assert job.status == "completed", job.error
    request_context = request.get_span_context()
    assert job.traceparent == traceparent(request_context)
    [attempt] = by_name(exporter, "process tr.parent")
    assert attempt.kind is SpanKind.CONSUMER
    assert attempt.parent is not None and attempt.parent.span_id == request_context.span_id
    assert attempt.context.trace_id == request_context.trace_id
    assert dict(attempt.attributes) == {
        "messaging.system": "jobrunner",
        "messaging.operation.type": "process",
        "messaging.destination.name": "default",
        "messaging.message.id": str(job_id),
        "jobrunner.job.id": job_id,
        "jobrunner.job.type": "tr.parent",
        "jobrunner.job.queue": "default",
        "jobrunner.job.attempt": 1,
        "jobrunner.job.user_id": "u1",
        "jobrunner.outcome": "completed",
    }
    assert attempt.status.status_code is StatusCode.UNSET
    # The handler saw its attempt's span as the current one.
    assert job.result == traceparent(attempt.context)
    [inner] = by_name(exporter, "inner work")
    assert inner.parent is not None and inner.parent.span_id == attempt.context.span_id
    # The child job was enqueued inside "inner work": its attempt continues from there.
    assert child.traceparent is not None and f"{inner.context.span_id:016x}" in child.traceparent
    [child_attempt] = by_name(exporter, "process tr.child")
    assert child_attempt.parent is not None
    assert child_attempt.parent.span_id == inner.context.span_id
    assert child_attempt.context.trace_id == request_context.trace_id


async def test_a_traceparent_written_with_sql_is_continued(engine, spans):
    provider, exporter = spans
    observer = TracingObserver(tracer_provider=provider)
    await engine.sql(
        "INSERT INTO {job} (type, traceparent) VALUES ('tr.child', ?), ('tr.child', ?)",
        TRACEPARENT,
        "not a traceparent",
    )
    async with engine.runner(plugins=[make_plugin(trace.get_tracer("x"))], observer=observer) as r:
        jobs = [await r.wait_for(j.id, timeout=30) for j in await r.list_jobs()]
    assert [j.status for j in jobs] == ["completed", "completed"]
    continued, fresh = sorted(
        by_name(exporter, "process tr.child"), key=lambda s: s.attributes["jobrunner.job.id"]
    )
    assert continued.context.trace_id == TRACE_ID
    assert continued.parent is not None and continued.parent.span_id == PARENT_ID
    assert continued.parent.is_remote
    assert fresh.parent is None, "an unreadable traceparent starts a new trace"
    assert fresh.context.trace_id != TRACE_ID


async def test_failed_and_retried_attempts_are_error_spans(engine, spans):
    provider, exporter = spans
    observer = TracingObserver(tracer_provider=provider)
    async with engine.runner(plugins=[make_plugin(trace.get_tracer("x"))], observer=observer) as r:
        broken = await r.enqueue("tr.broken")
        never = await r.enqueue("tr.never")
        await r.wait_for(never, timeout=30)
        # tr.broken waits 30 s before its second attempt: its first is enough here.
        with anyio.fail_after(30):
            while not by_name(exporter, "process tr.broken"):
                await anyio.sleep(0.02)
    [retried] = by_name(exporter, "process tr.broken")
    assert retried.attributes["jobrunner.outcome"] == "retried"
    assert retried.status.status_code is StatusCode.ERROR
    [event] = retried.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "RuntimeError"
    assert event.attributes["exception.message"] == "it broke"
    [failed] = by_name(exporter, "process tr.never")
    assert failed.attributes["jobrunner.outcome"] == "failed"
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.events == (), "a PermanentFailure is an outcome, not an unexpected exception"
    assert broken != never


async def test_without_an_sdk_or_with_tracing_off_nothing_is_traced(engine, spans):
    provider, _ = spans
    tracer = provider.get_tracer("test")
    async with engine.runner(plugins=[make_plugin(tracer)], worker=False) as runner:
        with tracer.start_as_current_span("request"):
            traced = await runner.enqueue("tr.child")
            [many] = await runner.enqueue_many([NewJob(type="tr.child")])
        untraced = await runner.enqueue("tr.child")
        assert (await runner.get_job(traced)).traceparent is not None
        assert (await runner.get_job(many)).traceparent is not None
        assert (await runner.get_job(untraced)).traceparent is None
    async with engine.runner(plugins=[make_plugin(tracer)], tracing=False) as runner:
        with tracer.start_as_current_span("request"):
            job_id = await runner.enqueue("tr.child")
        assert (await runner.wait_for(job_id, timeout=30)).traceparent is None
        # No SDK set up globally in this process: the worker adds no tracing observer.
        assert runner.worker is not None
        assert not isinstance(runner.worker.observer, TracingObserver)


async def test_the_backend_stores_each_jobs_traceparent(backend):
    one = f"00-{TRACE_ID:032x}-{1:016x}-01"
    two = f"00-{TRACE_ID:032x}-{2:016x}-00"
    mixed = await backend.job_insert_many(
        [NewJob(type="t", traceparent=one), NewJob(type="t"), NewJob(type="t", traceparent=two)]
    )
    same = await backend.job_insert_many([NewJob(type="t", traceparent=two)] * 2)
    [single] = await backend.job_insert_many([NewJob(type="t", traceparent=one)])
    ids = [*mixed, *same, single]
    assert [(await backend.job_get(i)).traceparent for i in ids] == [one, None, two, two, two, one]
    claimed = await backend.job_claim(
        worker="w",
        slots=[ClaimSlot(type="t", free=10, max_attempts=1, lease=30)],
        limit=10,
        queues=None,
    )
    assert {j.id: j.traceparent for j in claimed} == dict(
        zip(ids, [one, None, two, two, two, one], strict=True)
    )
