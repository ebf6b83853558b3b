"""`Runner`: jobrunner embedded in a service, or driven by the CLI."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import anyio
import attrs

from ._backend import Backend, JobFilter, TypeStats, Wakeup
from ._connect import backend_from_settings
from ._controls import Controls
from ._discovery import check_unique, load_many
from ._errors import ConfigurationError
from ._job import DEFAULT_QUEUE, Job, NewJob
from ._observe import Observer, Observers
from ._plugin import Handler, Plugin
from ._schema import check_schema, migrate
from ._secrets import register_secrets
from ._settings import Settings
from ._status import JobStatus
from ._tracing import available as tracing_available
from ._tracing import current_traceparent
from ._worker import Worker

log = logging.getLogger("jobrunner")


class Runner(Controls):
    """Runs jobs in the background of an async service, and enqueues them.

    ```python
    async with Runner("postgresql://localhost/app", plugins=["cineqo"], concurrency=10) as runner:
        job_id = await runner.enqueue("novel.split", {"text": "..."}, user_id="u1")
        ...  # the worker runs until the block exits, then stops gracefully
    ```

    Works under asyncio and trio. With `worker=False` it only enqueues and inspects jobs.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        plugins: Iterable[str | Plugin] = (),
        handlers: Iterable[Handler] = (),
        backend: Backend | None = None,
        worker: bool = True,
        env: Mapping[str, str] | None = None,
        observer: Observer | None = None,
        **settings: Any,
    ) -> None:
        self._env = dict(os.environ if env is None else env)
        register_secrets(self._env)  # so redaction also knows secrets passed as `env`
        self.settings = Settings.load(self._env, database_url=database_url, **settings)
        self.backend = backend or backend_from_settings(self.settings)
        self._plugin_specs = list(plugins)
        self._extra_handlers = list(handlers)
        self._run_worker = worker
        self._observer = observer or Observer()
        self._tracing = self.settings.tracing and tracing_available()
        self.plugins: list[Plugin] = []
        self.handlers: dict[str, Handler] = {}
        self.not_ready: dict[str, str] = {}
        self.worker: Worker | None = None
        self._stack: AsyncExitStack | None = None
        self._done: anyio.Event | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Runner:
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            await self._open(stack)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        if self._run_worker:
            group = await stack.enter_async_context(anyio.create_task_group())
            self._done = anyio.Event()
            group.start_soon(self._background)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.worker is not None:
            self.worker.stop()
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.__aexit__(exc_type, exc, tb)

    async def _open(self, stack: AsyncExitStack) -> None:
        self._load_handlers()  # a missing or broken plugin fails before touching the database
        await self.backend.open()
        stack.push_async_callback(self.backend.aclose)
        if self.settings.auto_migrate:
            applied = await migrate(self.backend)
            if applied:
                log.info("applied migrations: %s", ", ".join(applied))
        else:
            await check_schema(self.backend)
        self.worker = await self._open_worker(stack)

    def _load_handlers(self) -> None:
        self.handlers, self.not_ready = {}, {}
        names = [p for p in self._plugin_specs if isinstance(p, str)]
        self.plugins = load_many(names) + [p for p in self._plugin_specs if isinstance(p, Plugin)]
        check_unique(self.plugins)
        for plugin in self.plugins:
            for job_type, reason in plugin.readiness(self._env).items():
                if reason:
                    self.not_ready[job_type] = reason
                    log.warning(
                        "not claiming %s jobs: %s", job_type, reason, extra={"event": "not_ready"}
                    )
                else:
                    self.handlers[job_type] = plugin.handlers[job_type]
        for handler in self._extra_handlers:
            if handler.type in self.handlers:
                raise ConfigurationError(f"job type {handler.type!r} has two handlers")
            self.handlers[handler.type] = handler

    async def _open_worker(self, stack: AsyncExitStack) -> Worker:
        needed = {name for h in self.handlers.values() for name in h.requires}
        resources: dict[str, Any] = {}
        owners: dict[str, str] = {}
        for plugin in self.plugins:
            for name, resource in plugin.resources.items():
                if name in owners:
                    raise ConfigurationError(
                        f"plugins {owners[name]} and {plugin.name} both define a resource "
                        f"named {name!r}; rename one of them"
                    )
                owners[name] = plugin.name
                if name in needed:
                    resources[name] = await stack.enter_async_context(resource.factory(self._env))
        return Worker(
            backend=self.backend,
            handlers=self.handlers,
            settings=self.settings,
            resources=resources,
            memory_probe=_rss_bytes,
            observer=self._with_tracing(self._observer),
            schedules={
                f"plugin:{p.name}": list(p.schedules.values()) for p in self.plugins if p.schedules
            },
        )

    def _with_tracing(self, observer: Observer) -> Observer:
        """The observer, with a TracingObserver beside it when tracing is on and possible
        (and none was given)."""
        from . import _tracing

        given = observer.observers if isinstance(observer, Observers) else [observer]
        if any(isinstance(o, _tracing.TracingObserver) for o in given):
            return observer
        if not self._tracing or not _tracing.configured():
            return observer
        tracer = _tracing.TracingObserver()
        return tracer if type(observer) is Observer else Observers([*given, tracer])

    async def _background(self) -> None:
        assert self.worker is not None
        assert self._done is not None
        try:
            await self.worker.run()
        finally:
            self._done.set()

    async def run(self, *, burst: bool = False) -> int:
        """Run the worker in the foreground until `stop()` (or, with `burst`, until idle)."""
        if self.worker is None:
            raise ConfigurationError(
                "use `async with Runner(..., worker=False) as r: await r.run()`"
            )
        if not self.handlers:
            raise ConfigurationError(
                "no job types to run: load a plugin (e.g. --plugin diag) or pass handlers"
            )
        if self._run_worker:
            raise ConfigurationError(
                "this Runner already runs its worker in the background (worker=True): use "
                "`Runner(..., worker=False)` to call run() yourself"
            )
        return await self.worker.run(burst=burst)

    def stop(self) -> None:
        """Ask the worker to stop gracefully; a second call hands running jobs back at once."""
        if self.worker is not None:
            self.worker.stop()

    # -- enqueue ---------------------------------------------------------------------------

    async def enqueue(
        self,
        type: str,
        payload: Any = None,
        *,
        queue: str = DEFAULT_QUEUE,
        user_id: str | None = None,
        parent_id: int | None = None,
        priority: int = 0,
        max_attempts: int | None = None,
        run_at: dt.datetime | None = None,
        delay: float | None = None,
        key: str | None = None,
        connection: Any = None,
    ) -> int:
        """Enqueue one job and return its id. Pass `connection` to enqueue in your transaction.
        With tracing on, the job carries the current span's trace context. With `key` (an
        idempotency key), while a job with that key is pending or running this creates
        nothing and returns that job's id: a double click does not pay twice."""
        job = NewJob(
            type=type,
            payload={} if payload is None else payload,
            queue=queue,
            user_id=user_id,
            parent_id=parent_id,
            priority=priority,
            max_attempts=max_attempts,
            run_at=run_at,
            delay=delay,
            traceparent=current_traceparent() if self._tracing else None,
            key=key,
        )
        [job_id] = await self.enqueue_many([job], connection=connection)
        return job_id

    async def enqueue_many(self, jobs: Sequence[NewJob], *, connection: Any = None) -> list[int]:
        """Enqueue many jobs in one statement; ids in input order. A job whose type this
        runner's plugins declare a payload type for is checked against it first."""
        self._check_payloads(jobs)
        traceparent = current_traceparent() if self._tracing else None
        if traceparent is not None:
            jobs = [j if j.traceparent else attrs.evolve(j, traceparent=traceparent) for j in jobs]
        ids = await self.backend.job_insert_many(
            jobs, connection=connection, max_payload_bytes=self.settings.max_payload_bytes
        )
        if self.worker is not None and connection is None:
            self.worker.wake()
        return ids

    def _check_payloads(self, jobs: Sequence[NewJob]) -> None:
        """Refuse, before anything is written, a payload its handler's payload type refuses."""
        handlers = self.handlers
        if not handlers:
            return
        for job in jobs:
            handler = handlers.get(job.type)
            if handler is not None and handler.payload is not None:
                handler.payload.validate(job.payload, job_type=job.type)

    # -- inspection ------------------------------------------------------------------------

    async def get_job(self, job_id: int) -> Job:
        return await self.backend.job_get(job_id)

    async def list_jobs(self, **filters: Any) -> list[Job]:
        return await self.backend.job_list(JobFilter(**filters))

    async def cancel_job(self, job_id: int) -> Job:
        """Cancel a pending job; ask the worker running a running one to stop it."""
        job = await self.backend.job_cancel(job_id)
        if job.cancel_requested and job.status is JobStatus.RUNNING:
            await self.backend.notify(Wakeup(cancel_job_id=job_id))
        return job

    async def retry_job(self, job_id: int) -> Job:
        """Put a finished job back in the queue with fresh attempts (others are unchanged)."""
        job = await self.backend.job_retry(job_id)
        if job.status is JobStatus.PENDING:
            await self.backend.notify(Wakeup())
            if self.worker is not None:
                self.worker.wake()
        return job

    def _wake_workers(self) -> None:
        # The database wakes the other workers (a trigger on the limits tables).
        if self.worker is not None:
            self.worker.wake()

    async def migrate(self) -> list[str]:
        """Apply pending migrations (what `auto_migrate` does at start); their labels."""
        return await migrate(self.backend)

    async def stats(self, *, active_only: bool = False) -> list[TypeStats]:
        return await self.backend.job_stats(active_only=active_only)

    async def wait_for(
        self, job_id: int, *, poll: float = 0.05, timeout: float | None = None
    ) -> Job:
        """Wait until the job is final and return it."""
        with anyio.fail_after(timeout):
            while True:
                job = await self.backend.job_get(job_id)
                if job.status.is_final:
                    return job
                await anyio.sleep(poll)


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
