"""Prometheus metrics, `/healthz` and `/readyz` on one small HTTP port (`--metrics-port`)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from ._backend import Rescued
from ._errors import ConfigurationError, DatabaseError
from ._job import Job
from ._observe import Observer
from ._status import ACTIVE_STATUSES, JobStatus, OutcomeKind

if TYPE_CHECKING:
    from ._runner import Runner
    from ._worker import Worker

log = logging.getLogger("jobrunner.metrics")

#: A worker is healthy while its loops reached the database this recently.
HEALTHY_WITHIN = 60.0
QUEUE_REFRESH = 15.0


class PrometheusObserver(Observer):
    """Counts what the worker does into a private prometheus registry."""

    def __init__(self) -> None:
        try:
            import prometheus_client as prom
        except ImportError:
            raise ConfigurationError(
                "--metrics-port needs prometheus-client: pip install 'jobrunner[metrics]'"
            ) from None
        self.prom = prom
        self.registry = prom.CollectorRegistry()
        r = self.registry
        self.jobs = prom.Counter(
            "jobrunner_jobs",
            "Job attempts ended, by type and outcome",
            ["type", "outcome"],
            registry=r,
        )
        self.duration = prom.Histogram(
            "jobrunner_job_duration_seconds",
            "Time a job attempt ran",
            ["type"],
            registry=r,
            buckets=(0.005, 0.05, 0.25, 1, 5, 15, 60, 300, 900, 3600),
        )
        self.running = prom.Gauge("jobrunner_running_jobs", "Jobs running now", registry=r)
        self.rescued = prom.Counter(
            "jobrunner_lease_rescues", "Expired leases taken back, by type", ["type"], registry=r
        )
        self.retries = prom.Counter(
            "jobrunner_retries", "Attempts that failed and will be retried", ["type"], registry=r
        )
        self.loop_errors = prom.Counter(
            "jobrunner_loop_errors", "Database errors in the worker loop", ["doing"], registry=r
        )
        self.depth = prom.Gauge(
            "jobrunner_queue_depth", "Jobs by type and status", ["type", "status"], registry=r
        )
        self.oldest = prom.Gauge(
            "jobrunner_oldest_pending_seconds",
            "Age of the oldest runnable pending job",
            ["type"],
            registry=r,
        )

    def job_started(self, job: Job) -> None:
        self.running.inc()

    def job_ended(self, job: Job, kind: OutcomeKind, duration: float) -> None:
        self.running.dec()
        self.jobs.labels(job.type, kind.value).inc()
        self.duration.labels(job.type).observe(duration)
        if kind is OutcomeKind.RETRIED:
            self.retries.labels(job.type).inc()

    def jobs_rescued(self, rescued: Sequence[Rescued]) -> None:
        for job in rescued:
            self.rescued.labels(job.type).inc()

    def loop_error(self, doing: str) -> None:
        self.loop_errors.labels(doing).inc()

    def render(self) -> bytes:
        return self.prom.generate_latest(self.registry)


def health(worker: Worker | None) -> tuple[bool, bool, dict[str, Any]]:
    """(healthy, ready, details) of a worker: healthy = its loop reached the database lately."""
    if worker is None:
        return False, False, {"worker": "not started"}
    since_ok = time.monotonic() - worker.outage.last_ok
    healthy = not worker.outage.down or since_ok < HEALTHY_WITHIN
    ready = healthy and not worker.outage.down and not worker.stopping
    details = {
        "worker": worker.id,
        "database": "down" if worker.outage.down else "ok",
        "seconds_since_database_ok": round(since_ok, 1),
        "running_jobs": worker.running,
        "stopping": worker.stopping,
    }
    return healthy, ready, details


@attrs.define(eq=False)
class MetricsServer:
    """`/metrics` (the observer's), `/healthz` and `/readyz` (the runner's worker) over HTTP:
    a stdlib server in a daemon thread, so the event loop never blocks on it. `start()`,
    then `close()`; `port=0` takes a free port (read `port` after `start()`)."""

    runner: Runner
    observer: PrometheusObserver
    port: int
    server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer._respond(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("0.0.0.0", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        log.info("metrics, /healthz and /readyz on port %d", self.port)

    def _respond(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?")[0]
        if path == "/metrics":
            body, status, ctype = self.observer.render(), 200, "text/plain; version=0.0.4"
        elif path in {"/healthz", "/readyz"}:
            healthy, ready, details = health(self.runner.worker)
            ok = healthy if path == "/healthz" else ready
            body, status = json.dumps({"ok": ok, **details}).encode(), 200 if ok else 503
            ctype = "application/json"
        else:
            body, status, ctype = b"not found\n", 404, "text/plain"
        request.send_response(status)
        request.send_header("Content-Type", ctype)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    async def refresh_queue_gauges(self) -> None:
        """Keep the queue depth and oldest-pending gauges fresh, until cancelled (run it in
        a task beside the Runner)."""
        await refresh_queue_gauges(self.runner, self.observer)


async def refresh_queue_gauges(runner: Runner, observer: PrometheusObserver) -> None:
    """Keep queue depth and oldest-pending gauges fresh (one cheap query every 15 s)."""
    while True:
        try:
            stats = await runner.stats(active_only=True)
        except DatabaseError:
            stats = None
        if stats is not None:
            observer.depth.clear()
            observer.oldest.clear()
            for s in stats:
                if s.status in ACTIVE_STATUSES:
                    observer.depth.labels(s.type, s.status).set(s.count)
                if s.status is JobStatus.PENDING and s.oldest_pending_seconds is not None:
                    observer.oldest.labels(s.type).set(s.oldest_pending_seconds)
        await anyio.sleep(QUEUE_REFRESH)
