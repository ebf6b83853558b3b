"""Sentry reporting: handler failures arrive with their job's context and without secrets."""

from __future__ import annotations

import pytest

from jobrunner import JobContext, Plugin, Runner
from jobrunner._sentry import sentry_observer

pytestmark = pytest.mark.anyio

SECRET = "sk-sentry-test-secret-9876"


async def test_handler_failures_reach_sentry_with_job_context_and_no_secret(tmp_path):
    import sentry_sdk
    from sentry_sdk.transport import Transport

    captured: list[dict] = []

    class KeepTransport(Transport):
        def capture_envelope(self, envelope):
            for item in envelope.items:
                if item.type == "event":
                    captured.append(item.payload.json)

    plugin = Plugin("boom")

    @plugin.handler("boom.fail", max_attempts=1)
    async def fail(ctx: JobContext):
        raise RuntimeError(f"upstream refused key {SECRET}")

    env = {"SENTRY_DSN": "https://public@example.invalid/1", "OPENAI_API_KEY": SECRET}
    observer = sentry_observer(env, transport=KeepTransport)
    assert observer is not None
    try:
        url = f"sqlite:///{tmp_path / 'jobs.db'}"
        async with Runner(url, plugins=[plugin], env=env, observer=observer) as runner:
            job = await runner.wait_for(await runner.enqueue("boom.fail", user_id="u7"), timeout=10)
        sentry_sdk.flush()
    finally:
        sentry_sdk.init(dsn=None)
    assert job.status == "failed"
    assert len(captured) == 1
    event = captured[0]
    assert event["tags"]["job_type"] == "boom.fail"
    assert event["tags"]["job_outcome"] == "failed"
    assert event["contexts"]["job"]["id"] == job.id
    assert event["contexts"]["job"]["user_id"] == "u7"
    assert event["exception"]["values"][0]["type"] == "RuntimeError"
    assert SECRET not in repr(event)


def test_no_dsn_means_no_sentry():
    assert sentry_observer({}) is None
