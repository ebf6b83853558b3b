"""What a handler receives: the job, and ways to report on it."""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, Protocol, cast

import anyio
import anyio.to_process
import anyio.to_thread
import attrs

from ._backend import JobFilter
from ._budgets import check_amounts
from ._errors import ConfigurationError, LeaseLost
from ._job import DEFAULT_QUEUE, Job, NewJob, encode_json
from ._tracing import current_traceparent

if sys.version_info >= (3, 13):
    from typing import TypeVar
else:  # a TypeVar with a default: a bare `JobContext` is `JobContext[Any]`
    from typing_extensions import TypeVar

T = TypeVar("T")
#: The handler's payload type, as `ctx.data` returns it (`JobContext[SleepPayload]`).
P = TypeVar("P", default=Any)
_NO_DATA: Any = object()


class JobLogAdapter(logging.LoggerAdapter[logging.Logger]):
    """Adds the job's fields to each record, keeping the caller's own `extra` too
    (the stdlib adapter would replace it)."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


class JobStore(Protocol):
    """What a running job uses of the backend: its checkpoint and its children. A `Backend`
    is one; `jobrunner.testing` passes a recorder instead."""

    async def job_checkpoint_set(
        self, *, worker: str, job_id: int, attempt: int, key: str, value_json: str
    ) -> bool: ...

    async def job_list(self, query: JobFilter) -> list[Job]: ...


@attrs.frozen(kw_only=True)
class JobServices:
    """What a running job may use of the worker that runs it (one per worker)."""

    worker_id: str
    backend: JobStore  # checkpoints and children
    enqueue_many: Callable[[Sequence[NewJob]], Awaitable[list[int]]]
    resources: Mapping[str, Any] = attrs.field(factory=dict)
    max_result_bytes: int = 1 << 20
    #: Where `ctx.record_usage` sends what a job spent: (job id, user id, {unit: amount}).
    record_usage: Callable[[int, str | None, Mapping[str, float]], None] = lambda *_: None


@attrs.define(eq=False)
class JobContext(Generic[P]):
    """The running job as its handler sees it.

    - `payload`, `id`, `attempt`, `user_id`, `type`, `job` describe the job; `data` is the
      payload validated into the handler's payload type (`payload=` on the handler), so
      `ctx: JobContext[SleepPayload]` gives `ctx.data.seconds` a type;
    - `log` is a logger that adds the job's id, type and attempt to each line;
    - `progress(fraction, message)` reports progress (stored, throttled);
    - `await enqueue(...)` adds follow-up jobs, linked to this one as their parent;
      `await children()` lists them; `raise WaitForChildren()` parks this job until they end;
    - `checkpoint` holds what earlier attempts saved; `await save_checkpoint(key, value)`
      adds to it;
    - `resource(name)` returns a shared client opened by the plugin;
    - `cancel_requested` turns true when someone asked to cancel (the handler is also cancelled).
    """

    job: Job
    _services: JobServices = attrs.field(repr=False, alias="services")
    _log: logging.LoggerAdapter[logging.Logger] | None = attrs.field(default=None, init=False)
    progress_value: float | None = attrs.field(default=None, init=False)
    progress_message: str | None = attrs.field(default=None, init=False)
    progress_dirty: bool = attrs.field(default=False, init=False)
    cancel_requested: bool = attrs.field(default=False, init=False)
    #: What this attempt recorded with `record_usage`, by unit.
    usage: dict[str, float] = attrs.field(factory=dict, init=False)
    _saved: dict[str, Any] | None = attrs.field(default=None, init=False)
    _data: Any = attrs.field(default=_NO_DATA, init=False, repr=False)

    @property
    def _checkpoint(self) -> dict[str, Any]:
        if self._saved is None:  # copied on first use: most jobs never checkpoint
            self._saved = dict(self.job.checkpoint or {})
        return self._saved

    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger whose lines carry the job's id, type, attempt and user."""
        if self._log is None:  # built on first use: most jobs never log
            job = self.job
            self._log = JobLogAdapter(
                logging.getLogger("jobrunner.job"),
                {
                    "job_id": job.id,
                    "job_type": job.type,
                    "attempt": job.attempts,
                    "user_id": job.user_id,
                },
            )
        return self._log

    @property
    def id(self) -> int:
        return self.job.id

    @property
    def type(self) -> str:
        return self.job.type

    @property
    def attempt(self) -> int:
        return self.job.attempts

    @property
    def max_attempts(self) -> int:
        return self.job.max_attempts or 1

    @property
    def user_id(self) -> str | None:
        return self.job.user_id

    @property
    def payload(self) -> Any:
        """The payload as stored: plain JSON values."""
        return self.job.payload

    @property
    def data(self) -> P:
        """The payload as an instance of the handler's payload type, checked before the
        handler started."""
        if self._data is _NO_DATA:
            raise ConfigurationError(
                f"{self.type} declares no payload type (payload= on its handler): "
                "read ctx.payload instead"
            )
        return cast(P, self._data)

    @property
    def checkpoint(self) -> dict[str, Any]:
        """What this job saved so far, across attempts (read-only view of a copy)."""
        return dict(self._checkpoint)

    def record_usage(self, **amounts: float) -> None:
        """Record what this job spent, in any units: `ctx.record_usage(tokens=1200,
        cost_usd=0.02)`. Added to the job's `usage` and to its user's total for the UTC day
        (within a second), where budgets are checked; counted even if the job fails later."""
        checked = check_amounts(amounts)
        if not checked:
            return
        for unit, amount in checked.items():
            self.usage[unit] = self.usage.get(unit, 0.0) + amount
        self._services.record_usage(self.id, self.user_id, checked)

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report progress between 0 and 1; cheap to call often (writes are throttled)."""
        self.progress_value = min(max(float(fraction), 0.0), 1.0)
        if message is not None:
            # NUL and lone surrogates cannot be stored in PostgreSQL text: escape them.
            self.progress_message = (
                message[:500].replace("\x00", "\\0").encode("utf-8", "backslashreplace").decode()
            )
        self.progress_dirty = True

    def resource(self, name: str) -> Any:
        try:
            return self._services.resources[name]
        except KeyError:
            raise ConfigurationError(f"resource {name!r} is not open in this worker") from None

    async def save_checkpoint(self, key: str, value: Any) -> None:
        """Store `value` under `key` on the job now, so a later attempt can resume from it."""
        services = self._services
        text = encode_json(value, what=f"checkpoint {key!r}", max_bytes=services.max_result_bytes)
        ok = await services.backend.job_checkpoint_set(
            worker=services.worker_id,
            job_id=self.id,
            attempt=self.attempt,
            key=key,
            value_json=text,
        )
        if not ok:
            raise LeaseLost(
                f"job {self.id} attempt {self.attempt} is no longer held by this worker"
            )
        self._checkpoint[key] = value

    async def enqueue(
        self,
        type: str,
        payload: Any = None,
        *,
        queue: str | None = None,
        priority: int = 0,
        delay: float | None = None,
        max_attempts: int | None = None,
        child: bool = True,
        key: str | None = None,
    ) -> int:
        """Enqueue a follow-up job (same user; linked as a child unless `child=False`; in the
        current trace, when there is one). With `key`, an idempotency key: while a job with it
        is pending or running, nothing is created and that job's id comes back."""
        new = NewJob(
            type=type,
            payload={} if payload is None else payload,
            queue=queue or self.job.queue or DEFAULT_QUEUE,
            user_id=self.user_id,
            parent_id=self.id if child else None,
            priority=priority,
            delay=delay,
            max_attempts=max_attempts,
            traceparent=current_traceparent(),
            key=key,
        )
        [job_id] = await self._services.enqueue_many([new])
        return job_id

    async def enqueue_many(self, jobs: list[NewJob], *, child: bool = True) -> list[int]:
        """Enqueue follow-up jobs in one statement (same user; children unless `child=False`)."""
        traceparent = current_traceparent()
        linked = [
            attrs.evolve(
                job,
                user_id=job.user_id or self.user_id,
                parent_id=self.id if child else job.parent_id,
                traceparent=job.traceparent or traceparent,
            )
            for job in jobs
        ]
        return await self._services.enqueue_many(linked)

    async def children(self) -> list[Job]:
        """The jobs enqueued with this one as their parent, oldest first."""
        found = await self._services.backend.job_list(JobFilter(parent_id=self.id, limit=10_000))
        return sorted(found, key=lambda j: j.id)

    async def run_in_thread(self, func: Callable[..., T], *args: Any) -> T:
        """Run blocking or CPU-bound `func` in a thread so leases keep being renewed."""
        return await anyio.to_thread.run_sync(func, *args, abandon_on_cancel=True)

    async def run_in_process(self, func: Callable[..., T], *args: Any) -> T:
        """Run CPU-bound `func` in a worker process (it must be importable and picklable)."""
        return await anyio.to_process.run_sync(func, *args, cancellable=True)


def bind_data(ctx: JobContext[Any], data: Any) -> None:
    """Give the context its validated payload (before the handler runs)."""
    ctx._data = data
