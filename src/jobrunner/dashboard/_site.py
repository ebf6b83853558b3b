"""What every page and action shares: the runner, templates, users, shared reads, views, and
how a page is rendered for one request (its user, language, CSRF token and links)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import attrs
import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from ._access import Access, Identity
from ._i18n import COOKIE, LANGUAGES, choose, translator
from ._live import Snapshots
from ._views import Views

if TYPE_CHECKING:
    from .._runner import Runner

log = logging.getLogger("jobrunner.dashboard")
MAX_LOGGED_IDS = 1000


@attrs.define
class Site:
    access: Access
    env: jinja2.Environment
    snapshots: Snapshots
    views: Views
    runner: Callable[[], Awaitable[Runner]]
    bulk_limit: int = 10_000
    allowed_origins: frozenset[str] = frozenset()
    description: str = ""

    def identity(self, request: Request) -> Identity:
        identity: Identity = request.state.identity
        return identity

    def language(self, request: Request) -> str:
        return choose(request.cookies.get(COOKIE), request.headers.get("accept-language"))

    def url(self, request: Request, path: str, **query: Any) -> str:
        """`path` under wherever the dashboard is mounted, with the non-empty `query` values."""
        root = str(request.scope.get("root_path", "")).rstrip("/")
        given = {k: v for k, v in query.items() if v not in (None, "")}
        return root + path + ("?" + urlencode(given) if given else "")

    def context(self, request: Request, **values: Any) -> dict[str, Any]:
        identity = self.identity(request)
        language = self.language(request)
        return {
            "t": translator(language),
            "lang": language,
            "languages": LANGUAGES,
            "identity": identity,
            "can_act": identity.can_act,
            "open_access": self.access.open,
            "csrf": self.access.csrf_token(identity),
            "url": lambda path, **query: self.url(request, path, **query),
            "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            "description": self.description,
            **values,
        }

    def page(
        self, request: Request, template: str, status_code: int = 200, **values: Any
    ) -> HTMLResponse:
        html = self.env.get_template(template).render(self.context(request, **values))
        return HTMLResponse(html, status_code=status_code, headers={"cache-control": "no-store"})

    def problem(
        self, request: Request, status_code: int, message: str, **values: Any
    ) -> HTMLResponse:
        """An error page: `message` (English, with `{name}` fields from `values`) translated."""
        return self.page(
            request, "problem.html", status_code=status_code, message=message, values=values
        )

    def back(self, request: Request, path: str, **query: Any) -> RedirectResponse:
        """After a POST: see the result with a GET (303)."""
        return RedirectResponse(self.url(request, path, **query), status_code=303)

    def acted(self, request: Request, action: str, ids: list[int], **details: Any) -> None:
        """Log an operator's action: who, what, on which jobs (the line folds runs of ids; the
        `job_ids` field holds the first MAX_LOGGED_IDS, `job_count` how many)."""
        log.info(
            "dashboard: %s %s %s",
            self.identity(request).name,
            action,
            id_ranges(ids) if ids else _describe(details),
            extra={
                "event": "dashboard_action",
                "user": self.identity(request).name,
                "action": action,
                "job_ids": ids[:MAX_LOGGED_IDS],
                "job_count": len(ids),
                **details,
            },
        )


def _describe(details: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in details.items() if v not in (None, "", [], ()))


def id_ranges(ids: list[int]) -> str:
    """`jobs 3-7,9,12-13`: the ids an action touched, consecutive runs folded."""
    if not ids:
        return "no jobs"
    ordered = sorted(set(ids))
    runs: list[str] = []
    start = prev = ordered[0]
    for n in [*ordered[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        runs.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return f"job{'s' if len(ordered) > 1 else ''} " + ",".join(runs)
