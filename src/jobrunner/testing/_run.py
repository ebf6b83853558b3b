"""`run_job`: one attempt of one job through `run_attempt` and `settle`, the worker's own code,
with an in-memory stand-in for what a running job asks of the database (its checkpoint, its
children). Nothing here re-implements SQL: no database is under test."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from typing import Any

import attrs

from .._attempt import Attempt, SettlePolicy
from .._backend import JobFilter, Outcome
from .._context import JobContext, JobServices
from .._errors import ConfigurationError
from .._execute import run_attempt
from .._job import DEFAULT_QUEUE, Job, NewJob, encode_json, safe_json_loads
from .._plugin import Handler, Plugin
from .._status import RESCHEDULED, JobStatus, OutcomeKind

WORKER_ID = "jobrunner.testing"
_ANY: Any = object()


@attrs.frozen
class Progress:
    """One `ctx.progress(fraction, message)` call, as the worker would store it."""

    fraction: float
    message: str | None = None


@attrs.frozen(kw_only=True)
class JobRun:
    """How one attempt of a job ended, and what its handler did on the way."""

    #: The job as the handler saw it (its id, attempt, payload as stored, …).
    job: Job
    #: How the attempt ended; None when the handler raised `LeaseLost` (nothing is written).
    kind: OutcomeKind | None
    #: The result as stored: JSON values (a returned model becomes its JSON form).
    result: Any = None
    #: The error as stored: `Type: message`, secrets redacted.
    error: str | None = None
    #: Seconds until the next attempt (`retried`: the backoff, without its random shortening)
    #: or until the parent looks at its children again (`waiting`).
    delay: float | None = None
    #: An unexpected exception the handler raised (the worker logs its traceback); jobrunner's
    #: own (`Retry`, `PermanentFailure`, `PayloadError`, …) are told by `kind` and `error`.
    exception: BaseException | None = None
    #: Every `ctx.progress()` call, in order (a worker stores about one a second).
    progress: tuple[Progress, ...] = ()
    #: The job's checkpoint after the attempt: what it started with plus what it saved.
    checkpoint: dict[str, Any] = attrs.field(factory=dict)
    #: The jobs the handler enqueued, as they would be inserted (children carry `parent_id`).
    enqueued: tuple[NewJob, ...] = ()

    @property
    def status(self) -> JobStatus | None:
        """The job's status once the outcome is written (`pending` again when retried)."""
        return None if self.kind is None else self.kind.status


async def run_job(
    plugin: Plugin | Handler,
    type: str | None = None,
    payload: Any = None,
    *,
    resources: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    attempt: int = 1,
    max_attempts: int | None = None,
    checkpoint: Mapping[str, Any] | None = None,
    children: Sequence[Job] = (),
    user_id: str | None = None,
    queue: str = DEFAULT_QUEUE,
    job_id: int = 1,
    max_result_bytes: int = 1 << 20,
) -> JobRun:
    """Run one attempt of a `type` job with `payload` the way a worker does, and say how it
    ended; retries are not run, the outcome says whether there would be one.

    The real path: the payload goes through JSON as an enqueue would store it, its payload
    type checks it, the handler runs where it asked (`run_in`) within its timeout, and the
    result is encoded and limited as a worker does. `resources` are the handler's resources
    by name; with `env`, those not given are opened from the plugin's own factories (and
    closed after). `attempt`, `max_attempts` and `checkpoint` set up a later attempt;
    `children` are the jobs `ctx.children()` returns besides those the handler enqueues.
    """
    handler = _handler(plugin, type)
    async with AsyncExitStack() as stack:
        opened = await _resources(plugin, handler, resources or {}, env, stack)
        store = _Recorder(first_id=job_id + 1, checkpoint=dict(checkpoint or {}), given=children)
        job = _job(handler, payload, job_id, attempt, max_attempts, checkpoint, user_id, queue)
        services = JobServices(
            worker_id=WORKER_ID,
            backend=store,
            enqueue_many=store.enqueue_many,
            resources=opened,
            max_result_bytes=max_result_bytes,
        )
        ctx = _RecordingContext(job=job, services=services)
        held = Attempt(job=job, handler=handler, ctx=ctx)
        outcome = await run_attempt(
            held, SettlePolicy(max_result_bytes=max_result_bytes, rand=_none)
        )
    return JobRun(
        job=job,
        **_outcome(outcome),
        exception=held.failure,
        progress=tuple(ctx.reports),
        checkpoint=store.checkpoint,
        enqueued=tuple(store.enqueued),
    )


def assert_enqueued(
    source: JobRun | Iterable[Job | NewJob],
    type: str,
    payload: Any = _ANY,
    *,
    count: int | None = None,
) -> list[Any]:
    """The jobs of `type` that a handler enqueued (a `JobRun`'s, or jobs listed from a real
    runner, e.g. `await runner.list_jobs(parent_id=…)`); AssertionError, listing what was
    enqueued, when there is none, or not `count` of them. `payload` compares with `==`, as given
    or after a JSON round trip (a model, a tuple), and `unittest.mock.ANY` stands for a field
    that does not matter."""
    jobs = list(source.enqueued if isinstance(source, JobRun) else source)
    found = [j for j in jobs if j.type == type and _matches(j.payload, payload)]
    expected = f"{count}" if count is not None else "at least one"
    if (count is None and not found) or (count is not None and len(found) != count):
        listed = "\n".join(f"  {j.type} {json.dumps(_plain(j.payload))}" for j in jobs)
        what = f"{type} job" + ("" if payload is _ANY else f" with payload {payload!r}")
        raise AssertionError(
            f"expected {expected} {what}, found {len(found)}; enqueued:\n{listed or '  nothing'}"
        )
    return found


# -- the parts ------------------------------------------------------------------------------


@attrs.define(eq=False)
class _RecordingContext(JobContext[Any]):
    """A job context that also keeps every progress report."""

    reports: list[Progress] = attrs.field(factory=list, init=False)

    def progress(self, fraction: float, message: str | None = None) -> None:
        super().progress(fraction, message)
        self.reports.append(Progress(self.progress_value or 0.0, self.progress_message))


@attrs.define(eq=False)
class _Recorder:
    """What a running job asks of the database, kept in memory: the checkpoint it saves, the
    jobs it enqueues (ids counted from `first_id`), and the children it lists."""

    first_id: int
    checkpoint: dict[str, Any]
    given: Sequence[Job]
    enqueued: list[NewJob] = attrs.field(factory=list)

    async def job_checkpoint_set(
        self, *, worker: str, job_id: int, attempt: int, key: str, value_json: str
    ) -> bool:
        self.checkpoint[key] = json.loads(value_json)
        return True

    async def job_list(self, query: JobFilter) -> list[Job]:
        mine = [
            Job(
                id=self.first_id + i,
                type=j.type,
                queue=j.queue,
                user_id=j.user_id,
                parent_id=j.parent_id,
                priority=j.priority,
                payload=safe_json_loads(j.payload_json()),
                max_attempts=j.max_attempts,
            )
            for i, j in enumerate(self.enqueued)
        ]
        return [j for j in [*self.given, *mine] if j.parent_id == query.parent_id][: query.limit]

    async def enqueue_many(self, jobs: Sequence[NewJob]) -> list[int]:
        for job in jobs:
            job.payload_json()  # refused here as the database insert would refuse it
        start = self.first_id + len(self.enqueued)
        self.enqueued.extend(jobs)
        return list(range(start, start + len(jobs)))


def _handler(plugin: Plugin | Handler, type: str | None) -> Handler:
    if isinstance(plugin, Handler):
        if type is not None and type != plugin.type:
            raise ConfigurationError(f"run_job: the handler is for {plugin.type!r}, not {type!r}")
        return plugin
    if type is None:
        raise ConfigurationError(f"run_job: which job type of plugin {plugin.name}?")
    try:
        return plugin.handlers[type]
    except KeyError:
        known = ", ".join(sorted(plugin.handlers)) or "none"
        raise ConfigurationError(
            f"plugin {plugin.name} has no job type {type!r} (it has: {known})"
        ) from None


async def _resources(
    plugin: Plugin | Handler,
    handler: Handler,
    given: Mapping[str, Any],
    env: Mapping[str, str] | None,
    stack: AsyncExitStack,
) -> dict[str, Any]:
    opened = dict(given)
    missing = [name for name in handler.requires if name not in opened]
    factories = plugin.resources if isinstance(plugin, Plugin) else {}
    if env is not None:
        for name in [m for m in missing if m in factories]:
            opened[name] = await stack.enter_async_context(factories[name].factory(env))
        missing = [name for name in missing if name not in opened]
    if missing:
        raise ConfigurationError(
            f"{handler.type} requires the resources {missing}: pass resources={{name: value}}"
            + (", or env= to open the plugin's own" if factories else "")
        )
    return opened


def _job(
    handler: Handler,
    payload: Any,
    job_id: int,
    attempt: int,
    max_attempts: int | None,
    checkpoint: Mapping[str, Any] | None,
    user_id: str | None,
    queue: str,
) -> Job:
    """The claimed job, its payload as it would come back from the database."""
    new = NewJob(
        type=handler.type, payload={} if payload is None else payload, queue=queue, user_id=user_id
    )
    now = dt.datetime.now(dt.UTC)
    return Job(
        id=job_id,
        type=handler.type,
        queue=queue,
        user_id=user_id,
        status=JobStatus.RUNNING,
        payload=safe_json_loads(new.payload_json()),
        checkpoint=json.loads(json.dumps(dict(checkpoint))) if checkpoint else None,
        attempts=attempt,
        max_attempts=max_attempts or handler.max_attempts,
        created_at=now,
        started_at=now,
        locked_by=WORKER_ID,
    )


def _outcome(outcome: Outcome | None) -> dict[str, Any]:
    """The JobRun fields that the outcome decides, as a worker would store them."""
    if outcome is None:  # the handler raised LeaseLost: a worker would write nothing
        return {"kind": None}
    return {
        "kind": outcome.kind,
        "result": None if outcome.result_json is None else json.loads(outcome.result_json),
        "error": outcome.error,
        "delay": outcome.delay if outcome.kind in RESCHEDULED else None,
    }


def _none() -> float:
    """No random shortening of a retry's backoff: `delay` is its upper bound."""
    return 0.0


def _matches(actual: Any, wanted: Any) -> bool:
    return wanted is _ANY or bool(actual == wanted) or bool(_plain(actual) == wanted)


def _plain(value: Any) -> Any:
    """`value` as JSON would bring it back (tuples as lists, models as their JSON)."""
    return json.loads(encode_json(value, what="payload", max_bytes=1 << 30))
