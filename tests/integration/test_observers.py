"""The observer interface and the Prometheus observer and server are public: an embedding
service serves metrics and health without importing anything private."""

from __future__ import annotations

import json
import urllib.request

import anyio
import pytest

from jobrunner import (
    Job,
    MetricsServer,
    Observer,
    Observers,
    OutcomeKind,
    Plugin,
    PrometheusObserver,
    Runner,
)

pytestmark = pytest.mark.anyio


class Recorder(Observer):
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def job_started(self, job: Job) -> None:
        self.calls.append(("started", job.type))

    def job_running(self, job: Job) -> None:
        self.calls.append(("running", job.type))

    def job_raised(self, job: Job, exc: BaseException, kind: OutcomeKind) -> None:
        self.calls.append(("raised", kind.value))

    def job_ended(self, job: Job, kind: OutcomeKind, duration: float) -> None:
        self.calls.append(("ended", kind.value))


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


async def test_an_embedded_runner_serves_metrics_and_health(tmp_path):
    plugin = Plugin("obs")

    @plugin.handler("obs.boom", max_attempts=1)
    async def boom(ctx) -> None:
        raise ValueError("boom")

    recorder, metrics = Recorder(), PrometheusObserver()
    url = f"sqlite:///{tmp_path}/jobs.db"
    async with (
        Runner(url, plugins=[plugin], observer=Observers([recorder, metrics]), env={}) as runner,
        anyio.create_task_group() as tg,
    ):
        server = MetricsServer(runner=runner, observer=metrics, port=0)
        server.start()
        tg.start_soon(server.refresh_queue_gauges)
        try:
            job = await runner.wait_for(await runner.enqueue("obs.boom"), timeout=30)
            status, text = await anyio.to_thread.run_sync(
                get, f"http://127.0.0.1:{server.port}/metrics"
            )
            health = await anyio.to_thread.run_sync(get, f"http://127.0.0.1:{server.port}/healthz")
        finally:
            server.close()
            tg.cancel_scope.cancel()
    assert job.status == "failed"
    assert status == 200
    assert 'jobrunner_jobs_total{outcome="failed",type="obs.boom"} 1.0' in text
    assert health[0] == 200 and json.loads(health[1])["database"] == "ok"
    assert recorder.calls == [
        ("started", "obs.boom"),
        ("running", "obs.boom"),
        ("raised", "failed"),
        ("ended", "failed"),
    ]
