"""The actions (POST): on one job, on a filtered set of jobs, on limits and pauses (those on
schedules and budgets are in `_plan_actions`).

Each is refused unless the user may act, the form carries the user's CSRF token and the
request comes from one of the dashboard's own pages (its Origin); each is logged (who, what,
which jobs). A bulk action asks first, saying how many jobs it will change, and then changes
only jobs that matched when it asked (up to the newest id it counted).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .._backend import Wakeup
from .._errors import ConfigurationError
from .._status import ACTIVE_STATUSES, FINAL_STATUSES, JobStatus
from ._access import same_origin
from ._filters import BadFilter, for_action, form_fields, parse
from ._i18n import COOKIE, LANGUAGES
from ._site import Site

if TYPE_CHECKING:
    from .._runner import Runner

BATCH = 1000
MAX_CANCEL_NOTICES = 1000  # running jobs told at once; the others learn at their next lease renewal

#: The statuses each action applies to.
ACTIONS: dict[str, frozenset[JobStatus]] = {
    "retry": frozenset(FINAL_STATUSES),
    "cancel": frozenset(ACTIVE_STATUSES),
    "delete": frozenset(FINAL_STATUSES),
    "run-now": frozenset({JobStatus.PENDING}),
}


async def apply(runner: Runner, action: str, ids: Sequence[int]) -> list[int]:
    """Do `action` to the jobs `ids` (in batches), and wake whom it concerns; the ids changed."""
    backend = runner.backend
    done: list[int] = []
    told = 0
    for start in range(0, len(ids), BATCH):
        batch = list(ids[start : start + BATCH])
        if action == "retry":
            done += await backend.job_retry_many(batch)
        elif action == "run-now":
            done += await backend.job_run_now_many(batch)
        elif action == "delete":
            done += await backend.job_delete_many(batch)
        elif action == "cancel":
            for job in await backend.job_cancel_many(batch):
                done.append(job.id)
                if job.status is JobStatus.RUNNING and told < MAX_CANCEL_NOTICES:
                    await backend.notify(Wakeup(cancel_job_id=job.id))
                    told += 1
        else:
            raise ValueError(f"unknown action {action!r}")
    if done and action in {"retry", "run-now"}:
        await backend.notify(Wakeup())
    return done


async def checked_form(
    site: Site, request: Request, *, acting: bool = True
) -> dict[str, str] | Response:
    """The form of a POST that passed the checks (a user who may act, the request from one of
    our pages, the user's CSRF token), or the response refusing it."""
    identity = site.identity(request)
    if acting and not identity.can_act:
        return site.problem(request, 403, "Read-only: this dashboard changes nothing.")
    if not same_origin(request.headers, site.allowed_origins):
        return site.problem(request, 403, "Refused: the request came from another site.")
    try:
        form = form_fields(await request.body())
    except BadFilter as exc:
        return site.problem(request, 400, str(exc))
    if not site.access.csrf_valid(identity, form.get("csrf")):
        return site.problem(request, 403, "Refused: the form's CSRF token is missing or wrong.")
    return form


@attrs.define
class Actions:
    site: Site

    async def _form(self, request: Request, *, acting: bool = True) -> dict[str, str] | Response:
        return await checked_form(self.site, request, acting=acting)

    async def job(self, request: Request) -> Response:
        form = await self._form(request)
        if isinstance(form, Response):
            return form
        job_id, action = int(request.path_params["job_id"]), request.path_params["action"]
        if action not in ACTIONS:
            return self.site.problem(request, 404, "There is no action {action}.", action=action)
        runner = await self.site.runner()
        done = await apply(runner, action, [job_id])
        self.site.snapshots.invalidate()
        self.site.acted(request, action, [job_id], changed=len(done))
        if action == "delete" and done:
            return self.site.back(request, "/jobs", done=action, n=len(done))
        return self.site.back(request, f"/jobs/{job_id}", done=action, n=len(done))

    async def bulk_confirm(self, request: Request) -> Response:
        form = await self._form(request)
        if isinstance(form, Response):
            return form
        found = await self._bulk_query(request, form, max_id=None)
        if isinstance(found, Response):
            return found
        filters, query, action = found
        runner = await self.site.runner()
        newest = await runner.backend.job_ids_matching(attrs.evolve(query, limit=1))
        count = 0
        if newest:
            query = attrs.evolve(query, max_id=newest[0])
            count = await runner.backend.job_count_matching(query, cap=self.site.bulk_limit)
        return self.site.page(
            request,
            "confirm.html",
            action=action,
            filters=filters,
            count=min(count, self.site.bulk_limit),
            more=count > self.site.bulk_limit,
            max_id=newest[0] if newest else None,
            statuses=[s.value for s in query.statuses],
        )

    async def bulk_apply(self, request: Request) -> Response:
        form = await self._form(request)
        if isinstance(form, Response):
            return form
        try:
            max_id = int(form.get("max_id", ""))
        except ValueError:
            return self.site.problem(request, 400, "The form is incomplete: reload the page.")
        found = await self._bulk_query(request, form, max_id=max_id)
        if isinstance(found, Response):
            return found
        filters, query, action = found
        runner = await self.site.runner()
        ids = await runner.backend.job_ids_matching(attrs.evolve(query, limit=self.site.bulk_limit))
        done = await apply(runner, action, ids)
        self.site.snapshots.invalidate()
        self.site.acted(request, action, done, filters=filters.values, matched=len(ids))
        return self.site.back(request, "/jobs", **filters.values, done=action, n=len(done))

    async def _bulk_query(
        self, request: Request, form: dict[str, str], *, max_id: int | None
    ) -> tuple[Any, Any, str] | Response:
        action = form.get("action", "")
        if action not in ACTIONS or action == "run-now":
            return self.site.problem(request, 400, "There is no action {action}.", action=action)
        try:
            filters = parse(form)
        except BadFilter as exc:
            return self.site.problem(request, 400, str(exc))
        query = for_action(filters, ACTIONS[action], max_id)
        if query is None:
            return self.site.page(
                request,
                "confirm.html",
                action=action,
                filters=filters,
                count=0,
                more=False,
                max_id=None,
                statuses=[],
            )
        return filters, query, action

    async def limits_set(self, request: Request) -> Response:
        form = await self._form(request)
        if isinstance(form, Response):
            return form
        job_type = form.get("type", "").strip()
        try:
            concurrency = _count(form.get("concurrency"), "concurrency")
            per_user = _count(form.get("per_user"), "per user")
            rate = (form.get("rate") or "").strip() or None
            fair = {"fair": True, "fifo": False}.get(form.get("order", ""))
            if not job_type:
                raise ConfigurationError("name a job type")
            if concurrency is None and per_user is None and rate is None and fair is None:
                raise ConfigurationError("give a concurrency, a rate, a per-user limit or an order")
            runner = await self.site.runner()
            await runner.set_limits(
                job_type, concurrency=concurrency, per_user=per_user, rate=rate, fair=fair
            )
        except ConfigurationError as exc:
            return self.site.problem(request, 400, str(exc))
        self.site.snapshots.invalidate()
        self.site.acted(
            request,
            "limits set",
            [],
            type=job_type,
            concurrency=concurrency,
            per_user=per_user,
            rate=rate,
            fair=fair,
        )
        return self.site.back(request, "/", done="limits")

    async def limits_clear(self, request: Request) -> Response:
        form = await self._form(request)
        if isinstance(form, Response):
            return form
        job_type = form.get("type", "").strip()
        if not job_type:
            return self.site.problem(request, 400, "Name a job type.")
        runner = await self.site.runner()
        await runner.clear_limits(job_type)
        self.site.snapshots.invalidate()
        self.site.acted(request, "limits clear", [], type=job_type)
        return self.site.back(request, "/", done="limits")

    async def pause(self, request: Request) -> Response:
        return await self._pause(request, resume=False)

    async def resume(self, request: Request) -> Response:
        return await self._pause(request, resume=True)

    async def _pause(self, request: Request, *, resume: bool) -> Response:
        form = await self._form(request)
        if isinstance(form, Response):
            return form
        job_type, queue = form.get("type", "").strip(), form.get("queue", "").strip()
        if not job_type and not queue:
            return self.site.problem(request, 400, "Name a job type or a queue.")
        types, queues = ([job_type] if job_type else []), ([queue] if queue else [])
        runner = await self.site.runner()
        if resume:
            await runner.resume(*types, queues=queues)
        else:
            reason = form.get("reason", "").strip()[:200] or None
            await runner.pause(*types, queues=queues, reason=reason)
        self.site.snapshots.invalidate()
        verb = "resume" if resume else "pause"
        self.site.acted(request, verb, [], type=job_type, queue=queue)
        return self.site.back(request, "/", done=verb)

    async def language(self, request: Request) -> Response:
        form = await self._form(request, acting=False)
        if isinstance(form, Response):
            return form
        lang = form.get("lang", "")
        target = form.get("next", "")
        if not target.startswith("/") or target.startswith("//") or "\\" in target:
            target = self.site.url(request, "/")
        response = RedirectResponse(target, status_code=303)
        if lang in LANGUAGES:
            response.set_cookie(
                COOKIE,
                lang,
                max_age=365 * 86400,
                httponly=True,
                samesite="lax",
                path=(request.scope.get("root_path") or "/"),
            )
        return response


def _count(text: str | None, name: str) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, 0 or more: {text!r}") from None
    if value < 0:
        raise ConfigurationError(f"{name} must be a whole number, 0 or more: {text!r}")
    return value
