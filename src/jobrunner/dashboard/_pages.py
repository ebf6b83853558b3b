"""The pages (GET): the overview, the jobs list, a job, and the fragments their tabs poll."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import attrs
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from .._errors import JobNotFound
from .._job import Job
from .._status import JobStatus
from ._chart import chart
from ._filters import BadFilter, parse
from ._i18n import translator
from ._render import json_size, split_traceback
from ._site import Site

PAGE_SIZE = 50
#: What a redirect after an action may say was done (`?done=`).
NOTICES = frozenset(
    {"retry", "cancel", "delete", "run-now", "limits", "pause", "resume", "schedule", "budget"}
)
MAX_CHILDREN = 200  # children given to a plugin view that asks for them


@attrs.frozen(kw_only=True)
class Node:
    """A job in its family tree."""

    job: Job
    children: list[Node]


def family_tree(family: list[Job], job_id: int) -> Node | None:
    """The tree of `family` from its topmost ancestor (None when the job is not in it)."""
    by_id = {j.id: j for j in family}
    if job_id not in by_id:
        return None
    kids: dict[int, list[Job]] = defaultdict(list)
    for j in family:
        if j.parent_id is not None and j.parent_id in by_id and j.id != j.parent_id:
            kids[j.parent_id].append(j)
    top, seen = by_id[job_id], {job_id}
    while top.parent_id in by_id and top.parent_id not in seen:
        seen.add(top.parent_id)
        top = by_id[top.parent_id]

    def build(job: Job, depth: int) -> Node:
        below = kids.get(job.id, []) if depth < 20 else []
        return Node(job=job, children=[build(k, depth + 1) for k in below])

    return build(top, 0)


@attrs.define
class Pages:
    site: Site

    async def overview(self, request: Request) -> Response:
        values = await self._overview(request, plans=True)
        return self.site.page(request, "overview.html", done=_notice(request), **values)

    async def overview_live(self, request: Request) -> Response:
        return self._fragment(request, "_board.html", **await self._overview(request))

    async def overview_cluster(self, request: Request) -> Response:
        return self._fragment(request, "_cluster.html", **await self._overview(request))

    async def overview_plans(self, request: Request) -> Response:
        return self._fragment(request, "_plans.html", **await self._overview(request, plans=True))

    async def _overview(self, request: Request, *, plans: bool = False) -> dict[str, Any]:
        snapshots = self.site.snapshots
        board, cluster = await snapshots.board(), await snapshots.cluster()
        t = translator(self.site.language(request))
        now = dt.datetime.fromtimestamp(board.now, dt.UTC)
        return {
            "board": board,
            "cluster": cluster,
            "plans": await snapshots.plans() if plans else None,
            "chart": chart(board.minutes, (t("completed"), t("failed"))),
            "paused_types": cluster.paused_types(now),
            "now": now,
        }

    async def jobs(self, request: Request) -> Response:
        try:
            filters = parse(request.query_params, limit=PAGE_SIZE)
        except BadFilter as exc:
            return self.site.problem(request, 400, str(exc))
        runner = await self.site.runner()
        page = await runner.backend.job_browse(filters.query)
        board = await self.site.snapshots.last_board()
        return self.site.page(
            request,
            "jobs.html",
            filters=filters,
            page=page,
            types=sorted({line.type for line in board.lines}),
            queues=sorted({line.queue for line in board.lines}),
            done=_notice(request),
        )

    async def job(self, request: Request) -> Response:
        job_id = int(request.path_params["job_id"])
        runner = await self.site.runner()
        try:
            job = await runner.get_job(job_id)
        except JobNotFound:
            return self.site.problem(request, 404, "There is no job {id}.", id=job_id)
        family = await runner.backend.job_family(job_id)
        waiting = await runner.pending_reasons(job)
        summary, trace = split_traceback(job.error)
        view = await self.site.views.render(
            self.site.env,
            job,
            lambda: runner.list_jobs(parent_id=job_id, limit=MAX_CHILDREN),
            self.site.context(request),
        )
        return self.site.page(
            request,
            "job.html",
            job=job,
            live=job,
            tree=family_tree(family, job_id),
            error_summary=summary,
            traceback=trace,
            checkpoint_size=json_size(job.checkpoint),
            waiting=waiting,
            view=view,
            view_title=self._view_title(job),
            done=_notice(request),
        )

    async def job_live(self, request: Request) -> Response:
        job_id = int(request.path_params["job_id"])
        family = await self.site.snapshots.family(job_id)
        tree = family_tree(family, job_id)
        if tree is None:
            return HTMLResponse("", status_code=404)
        [live] = [j for j in family if j.id == job_id]
        return self._fragment(request, "_job_live.html", live=live, tree=tree, job_id=job_id)

    async def job_view(self, request: Request) -> Response:
        job_id = int(request.path_params["job_id"])
        runner = await self.site.runner()
        try:
            job = await runner.get_job(job_id)
        except JobNotFound:
            return HTMLResponse("", status_code=404)
        view = await self.site.views.render(
            self.site.env,
            job,
            lambda: runner.list_jobs(parent_id=job_id, limit=MAX_CHILDREN),
            self.site.context(request),
        )
        return self._fragment(request, "_view.html", job=job, view=view)

    def _view_title(self, job: Job) -> str:
        view = self.site.views.get(job.type)
        return (view.title or job.type) if view else ""

    def _fragment(self, request: Request, template: str, **values: Any) -> Response:
        html = self.site.env.get_template(template).render(self.site.context(request, **values))
        return HTMLResponse(html, headers={"cache-control": "no-store"})


def _notice(request: Request) -> dict[str, Any] | None:
    """What the last action did, from the redirect that followed it (`done`, `n`)."""
    action = request.query_params.get("done")
    if action not in NOTICES:
        return None
    try:
        count = int(request.query_params.get("n", "0"))
    except ValueError:
        count = 0
    return {"action": action, "count": count}


def is_final(job: Job) -> bool:
    return JobStatus(job.status).is_final
