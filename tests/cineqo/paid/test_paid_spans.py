"""OpenTelemetry spans around the plugin's calls (OpenAI, fal, downloads, storage), children of
the worker's span for the attempt, with the SDK's in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from standins.fal_server import Reply

from jobrunner import TracingObserver
from jobrunner_cineqo import _spans

pytestmark = pytest.mark.anyio


@pytest.fixture
def provider(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(_spans, "_tracer", provider.get_tracer("jobrunner_cineqo"))
    yield provider, exporter
    provider.shutdown()


def children_of(spans: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


async def test_calls_are_spans_under_the_attempt(
    cineqo: Any, provider: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    tracer_provider, exporter = provider
    cineqo.fal.script.submit_replies = [Reply(status=503, body={"detail": "overloaded"})]
    observer = TracingObserver(tracer_provider=tracer_provider)
    async with cineqo.runner(observer=observer) as runner:
        image_id = await runner.enqueue("image.generate", {"prompt": "p"}, user_id="u1")
        cast_id = await runner.enqueue("character.extract", {"text": "第一回\n\n悟空。"})
        for job_id in (image_id, cast_id):
            assert (await runner.wait_for(job_id, timeout=60)).status == "completed"

    spans = exporter.get_finished_spans()
    [failed_attempt, image] = [s for s in spans if s.name == "process image.generate"]
    [failed_submit] = children_of(spans, failed_attempt)  # fal's 503: the job retried
    assert (failed_submit.name, failed_submit.status.status_code) == (
        "fal submit",
        StatusCode.ERROR,
    )
    names = [s.name for s in children_of(spans, image)]
    assert names == ["fal submit", "fal wait", "fal result", "image download", "storage put"]
    assert all(s.kind is SpanKind.CLIENT for s in children_of(spans, image))
    put = children_of(spans, image)[-1]
    assert put.attributes is not None and str(put.attributes["cineqo.key"]).endswith("/0.png")

    [cast] = [s for s in spans if s.name == "process character.extract"]
    [ask] = children_of(spans, cast)
    assert ask.name == "openai chat.completions"
    assert ask.attributes is not None and ask.attributes["cineqo.model"] == "stand-in-model"
    cineqo.assert_no_secrets(*(str(s.attributes) for s in spans))
