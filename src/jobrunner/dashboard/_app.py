"""`create_app`: the dashboard as an ASGI application (Starlette), to serve with
`jobrunner dashboard` or to mount inside your own FastAPI or Starlette service."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import attrs
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._errors import DatabaseError
from .._plugin import Plugin
from .._runner import Runner
from .._secrets import redact
from ._access import (
    Access,
    client_host,
    content_security_policy,
    is_loopback,
    security_headers,
)
from ._actions import Actions
from ._live import Snapshots
from ._pages import Pages
from ._plan_actions import PlanActions
from ._render import environment
from ._site import Site
from ._views import Views, load_plugins, plugin_names

log = logging.getLogger("jobrunner.dashboard")
STATIC = Path(__file__).parent / "static"


def create_app(
    runner: Runner | None = None,
    *,
    database_url: str | None = None,
    plugins: Iterable[str | Plugin] | None = None,
    access: Access | None = None,
    read_only: bool = False,
    env: Mapping[str, str] | None = None,
    image_sources: Sequence[str] = ("https:",),
    allowed_origins: Sequence[str] = (),
    bulk_limit: int = 10_000,
    **settings: Any,
) -> Starlette:
    """The dashboard as an ASGI app.

    `runner`: a `Runner` your service opens (`async with`) and shares; without one the app
    makes its own `Runner(database_url, worker=False, **settings)`, opened on the first request
    and closed when the app's lifespan ends. `plugins`: whose views to show (names or
    `Plugin`s; default `JOBRUNNER_PLUGINS`, else every installed plugin). `access`: the users
    (default from `JOBRUNNER_DASHBOARD_*`); without a password the app answers loopback
    clients only. `read_only`: nobody can change anything. `image_sources`: where plugin views
    may show images from (CSP `img-src`). `allowed_origins`: origins besides the request's own
    host that may post forms (a proxy that rewrites `Host`). `bulk_limit`: the most jobs one
    bulk action changes.
    """
    environ = dict(os.environ if env is None else env)
    access = access or Access.from_env(environ)
    if read_only:
        access = attrs.evolve(access, read_only=True)
    opener = _Opener(given=runner, make=lambda: _own_runner(database_url, environ, settings))
    views = Views(plugins=lambda: _plugins(plugins, runner, environ))
    site = Site(
        access=access,
        env=environment(views.source),
        snapshots=Snapshots(runner=opener.get),
        views=views,
        runner=opener.get,
        bulk_limit=bulk_limit,
        allowed_origins=frozenset(o.rstrip("/").lower() for o in allowed_origins),
    )
    pages, actions, plans = Pages(site), Actions(site), PlanActions(site)
    routes = [
        Route("/", pages.overview, name="overview"),
        Route("/overview/live", pages.overview_live),
        Route("/overview/cluster", pages.overview_cluster),
        Route("/overview/plans", pages.overview_plans),
        Route("/jobs", pages.jobs, name="jobs"),
        Route("/jobs/bulk", actions.bulk_confirm, methods=["POST"]),
        Route("/jobs/bulk/apply", actions.bulk_apply, methods=["POST"]),
        Route("/jobs/{job_id:int}", pages.job, name="job"),
        Route("/jobs/{job_id:int}/live", pages.job_live),
        Route("/jobs/{job_id:int}/view", pages.job_view),
        Route("/jobs/{job_id:int}/{action}", actions.job, methods=["POST"]),
        Route("/limits/set", actions.limits_set, methods=["POST"]),
        Route("/limits/clear", actions.limits_clear, methods=["POST"]),
        Route("/pause", actions.pause, methods=["POST"]),
        Route("/resume", actions.resume, methods=["POST"]),
        Route("/schedules/{action}", plans.schedule, methods=["POST"]),
        Route("/budgets/{action}", plans.budget, methods=["POST"]),
        Route("/language", actions.language, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    async def unavailable(request: Request, exc: Exception) -> Response:
        message = redact(str(exc))
        log.warning("dashboard: %s", message)
        return site.problem(request, 503, message)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await opener.aclose()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={DatabaseError: unavailable},
    )
    app.state.site = site
    csp = content_security_policy(tuple(image_sources))
    app.add_middleware(Guard, access=access, headers=security_headers(csp))
    if access.open:
        log.warning(
            "dashboard: no JOBRUNNER_DASHBOARD_PASSWORD set: no login, loopback clients only"
        )
    return app


class Guard:
    """Every request: the security headers; without a password, loopback clients only; with
    one, HTTP Basic (401 asks the browser for it). The user goes to `request.state.identity`."""

    def __init__(self, app: ASGIApp, *, access: Access, headers: list[tuple[bytes, bytes]]):
        self.app, self.access, self.headers = app, access, headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.headers]
            await send(message)

        if self.access.open and not is_loopback(client_host(scope)):
            refusal = PlainTextResponse(
                "This dashboard has no password (JOBRUNNER_DASHBOARD_PASSWORD), so it answers "
                "only on this machine (loopback).\n",
                status_code=403,
            )
            await refusal(scope, receive, send_secured)
            return
        identity = self.access.identify(Headers(scope=scope).get("authorization"))
        if identity is None:
            challenge = PlainTextResponse(
                "Log in to the jobrunner dashboard.\n",
                status_code=401,
                headers={"www-authenticate": 'Basic realm="jobrunner", charset="UTF-8"'},
            )
            await challenge(scope, receive, send_secured)
            return
        scope.setdefault("state", {})["identity"] = identity
        await self.app(scope, receive, send_secured)


@attrs.define
class _Opener:
    """The runner: the one given (the host service opens it), or our own, opened once."""

    given: Runner | None
    make: Any
    _own: Runner | None = None
    _lock: anyio.Lock = attrs.field(factory=anyio.Lock)

    async def get(self) -> Runner:
        if self.given is not None:
            return self.given
        if self._own is None:
            async with self._lock:
                if self._own is None:
                    runner = self.make()
                    await runner.__aenter__()
                    self._own = runner
        return self._own

    async def aclose(self) -> None:
        own, self._own = self._own, None
        if own is not None:
            await own.__aexit__(None, None, None)


def _own_runner(database_url: str | None, env: dict[str, str], settings: dict[str, Any]) -> Runner:
    options = {"auto_migrate": False, **settings}
    return Runner(database_url, worker=False, env=env, **options)


def _plugins(
    given: Iterable[str | Plugin] | None, runner: Runner | None, env: dict[str, str]
) -> list[Plugin]:
    if given is not None:
        specs = list(given)
        names = [p for p in specs if isinstance(p, str)]
        return load_plugins(names) + [p for p in specs if isinstance(p, Plugin)]
    if runner is not None and runner.plugins:
        return list(runner.plugins)
    return load_plugins(plugin_names(env))
