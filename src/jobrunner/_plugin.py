"""Plugins: a named set of handlers and the shared resources they use."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import ConfigurationError
from ._job import DEFAULT_QUEUE
from ._limits import Rate, TypeLimits
from ._payload import PayloadModel, as_payload_model
from ._retry import DEFAULT_RETRY, RetryPolicy
from ._schedules import Missed, Schedule
from ._settings import parse_duration

if TYPE_CHECKING:
    from ._job import Job

HandlerFunc = Callable[..., Any]
RUN_IN = ("loop", "thread", "process")
ResourceFactory = Callable[[Mapping[str, str]], AbstractAsyncContextManager[Any]]
ReadinessCheck = Callable[[Mapping[str, str]], str | None]
Probe = Callable[[Any], Awaitable[str | None]]
ViewContext = Callable[["Job", Sequence["Job"]], Mapping[str, Any]]


def _rate(value: str | Rate | None) -> Rate | None:
    return None if value is None else Rate.parse(value)


@attrs.frozen(kw_only=True)
class Handler:
    """A job type's code and policy."""

    type: str
    func: HandlerFunc = attrs.field(repr=False)
    concurrency: int | None = attrs.field(default=None)
    timeout: float | None = None
    max_attempts: int = 3
    lease: float = 30.0
    retry: RetryPolicy = DEFAULT_RETRY
    requires: tuple[str, ...] = ()
    run_in: str = attrs.field(default="loop", validator=attrs.validators.in_(RUN_IN))
    description: str = ""
    # Defaults of the cluster-wide limits (overridden by `jobrunner limits set`).
    global_concurrency: int | None = attrs.field(default=None)
    per_user_concurrency: int | None = attrs.field(default=None)
    rate: Rate | None = attrs.field(default=None, converter=_rate)
    # The payload's type (a pydantic model, a dataclass, a TypedDict): checked before the
    # handler runs, handed to it as `ctx.data`, published as JSON Schema. None: any JSON.
    payload: PayloadModel | None = attrs.field(default=None, converter=as_payload_model)

    @concurrency.validator
    @global_concurrency.validator
    @per_user_concurrency.validator
    def _positive(self, field: attrs.Attribute[int | None], value: int | None) -> None:
        if value is not None and value < 1:
            raise ConfigurationError(f"{self.type}: {field.name} must be at least 1")

    @property
    def limits(self) -> TypeLimits:
        """The cluster-wide limits this handler declares as defaults."""
        return TypeLimits(
            concurrency=self.global_concurrency,
            per_user=self.per_user_concurrency,
            rate=self.rate,
        )


@attrs.frozen(kw_only=True)
class Resource:
    """Something opened once per worker (an API client), closed on stop."""

    name: str
    factory: ResourceFactory = attrs.field(repr=False)
    check: ReadinessCheck | None = attrs.field(default=None, repr=False)
    probe: Probe | None = attrs.field(default=None, repr=False)


@attrs.frozen(kw_only=True)
class View:
    """How the dashboard shows the jobs of one type: `template`, a Jinja file found beside the
    module that defines `context` (relative to its folder), rendered with autoescaping and the
    mapping `context(job, children)` returns. `children` are the job's child jobs, results
    included, when `with_children` is set (else empty)."""

    type: str
    template: str
    context: ViewContext = attrs.field(repr=False)
    module: str
    title: str = ""
    with_children: bool = False


@attrs.define
class Plugin:
    """A set of handlers, registered through the `jobrunner.plugins` entry-point group.

    ```python
    plugin = Plugin("example")

    @plugin.handler("example.hello", concurrency=2, timeout=30)
    async def hello(ctx: JobContext) -> dict:
        return {"greeting": f"hello {ctx.payload['name']}"}
    ```
    """

    name: str
    handlers: dict[str, Handler] = attrs.field(factory=dict)
    resources: dict[str, Resource] = attrs.field(factory=dict)
    schedules: dict[str, Schedule] = attrs.field(factory=dict)
    views: dict[str, View] = attrs.field(factory=dict)

    def schedule(
        self,
        name: str,
        *,
        type: str,
        cron: str | None = None,
        every: str | float | None = None,
        payload: Any = None,
        queue: str = DEFAULT_QUEUE,
        priority: int = 0,
        tz: str = "UTC",
        missed: Missed = "once",
    ) -> Schedule:
        """Enqueue a job of `type` at each tick: `cron="0 3 * * *"` (in `tz`) or `every="10m"`.
        Workers running this plugin record it in the database; each tick is enqueued once,
        however many run. A tick missed while no worker ran is enqueued once at start-up
        (`missed="once"`) or skipped (`missed="skip"`)."""
        if name in self.schedules:
            raise ConfigurationError(f"plugin {self.name}: schedule {name!r} declared twice")
        declared = Schedule(
            name=name,
            type=type,
            payload={} if payload is None else payload,
            queue=queue,
            priority=priority,
            cron=cron,
            every=parse_duration(every) if every is not None else None,
            tz=tz,
            missed=missed,
            origin=f"plugin:{self.name}",
        )
        self.schedules[name] = declared
        return declared

    def handler(
        self,
        type: str,
        *,
        concurrency: int | None = None,
        timeout: float | None = None,
        max_attempts: int = 3,
        lease: float = 30.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        requires: tuple[str, ...] | list[str] = (),
        run_in: str = "loop",
        global_concurrency: int | None = None,
        per_user_concurrency: int | None = None,
        rate: str | Rate | None = None,
        payload: Any = None,
    ) -> Callable[[HandlerFunc], HandlerFunc]:
        """Register the decorated function as the handler of `type`.

        `run_in` says where it runs: "loop" (default) awaits an `async def f(ctx)` on the event
        loop; "thread" calls a plain `def f(ctx)` in a worker thread (blocking I/O); "process"
        calls a plain, importable `def f(payload)` in a worker process (CPU-bound work: the
        event loop, and so lease renewal, never stalls, and a timeout kills the process).

        `concurrency` limits this type in one worker process; `global_concurrency`,
        `per_user_concurrency` (per `user_id`) and `rate` (`"60/1m"`: starts per period,
        spaced evenly) hold across every worker of the cluster. These are defaults:
        `jobrunner limits set` overrides them at run time (docs/limits.md).

        `payload` declares the payload's type (a pydantic model, a dataclass or a TypedDict):
        a job whose payload does not fit fails at once with a `PayloadError` naming the field,
        the handler reads the validated value as `ctx.data` (a "process" handler receives it
        instead of the raw payload), and `jobrunner schema` publishes it as JSON Schema.
        """

        def register(func: HandlerFunc) -> HandlerFunc:
            self.add(
                Handler(
                    type=type,
                    func=func,
                    concurrency=concurrency,
                    timeout=timeout,
                    max_attempts=max_attempts,
                    lease=lease,
                    retry=retry,
                    requires=tuple(requires),
                    run_in=run_in,
                    description=(func.__doc__ or "").strip().split("\n")[0],
                    global_concurrency=global_concurrency,
                    per_user_concurrency=per_user_concurrency,
                    rate=_rate(rate),
                    payload=payload,
                )
            )
            return func

        return register

    def add(self, handler: Handler) -> None:
        if handler.type in self.handlers:
            raise ConfigurationError(
                f"plugin {self.name}: job type {handler.type!r} registered twice"
            )
        self.handlers[handler.type] = handler

    def resource(
        self, name: str, *, check: ReadinessCheck | None = None, probe: Probe | None = None
    ) -> Callable[[Callable[[Mapping[str, str]], AsyncIterator[Any]]], ResourceFactory]:
        """Register an async generator `(env) -> value` as a resource named `name`.

        `check(env)` returns None when the resource can be built, or the reason it cannot
        (e.g. "OPENAI_API_KEY is not set"); handlers that require it are then not ready.
        `probe(value)` makes one cheap authenticated call for `jobrunner doctor` and returns
        None when it worked, or what went wrong.
        """

        def register(func: Callable[[Mapping[str, str]], AsyncIterator[Any]]) -> ResourceFactory:
            factory = asynccontextmanager(func)
            self.resources[name] = Resource(name=name, factory=factory, check=check, probe=probe)
            return factory

        return register

    def view(
        self, type: str, *, template: str, title: str = "", children: bool = False
    ) -> Callable[[ViewContext], ViewContext]:
        """Register the decorated `(job, children) -> mapping` as the dashboard's view of
        `type`'s jobs: `template` (a path relative to the function's module's folder) is
        rendered with that mapping, every value escaped. With `children=True` the function
        gets the job's child jobs, with their results (docs/dashboard.md).
        """

        def register(func: ViewContext) -> ViewContext:
            if type in self.views:
                raise ConfigurationError(f"plugin {self.name}: a view of {type!r} exists")
            self.views[type] = View(
                type=type,
                template=template,
                context=func,
                module=func.__module__,
                title=title,
                with_children=children,
            )
            return func

        return register

    def readiness(self, env: Mapping[str, str]) -> dict[str, str | None]:
        """For each job type: None when ready, else why it cannot run here."""
        reasons: dict[str, str | None] = {}
        for name, resource in self.resources.items():
            reasons[name] = resource.check(env) if resource.check else None
        out: dict[str, str | None] = {}
        for handler in self.handlers.values():
            missing = [r for r in handler.requires if r not in self.resources]
            if missing:
                out[handler.type] = f"unknown resources {missing}"
                continue
            why = [reasons[r] for r in handler.requires if reasons[r]]
            out[handler.type] = "; ".join(w for w in why if w) or None
        return out
