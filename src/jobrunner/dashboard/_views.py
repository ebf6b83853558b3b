"""Plugin views: a plugin's own way of showing the results of its job types.

A plugin registers `@plugin.view("novel.split", template="views/split.html")` on a function
`(job, children) -> mapping`; the dashboard renders that template (found beside the function's
module, autoescaped like every other) with the mapping, the job and the page's translator `t`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import jinja2
from markupsafe import Markup

from .._discovery import installed, load
from .._errors import PluginError
from .._job import Job
from .._plugin import Plugin, View

log = logging.getLogger("jobrunner.dashboard")


def load_plugins(names: Iterable[str]) -> list[Plugin]:
    """The plugins named, each loaded on its own: one that fails to load is logged and left
    out (its jobs are shown without a view), the dashboard still starts."""
    plugins = []
    for name in names:
        try:
            plugins.append(load(name))
        except PluginError as exc:
            log.warning("dashboard: no views from plugin %s: %s", name, exc)
    return plugins


def plugin_names(env: Mapping[str, str]) -> list[str]:
    """JOBRUNNER_PLUGINS when set, else every installed plugin."""
    given = [n.strip() for n in env.get("JOBRUNNER_PLUGINS", "").split(",") if n.strip()]
    return given or [p.name for p in installed()]


@attrs.define
class Views:
    """The views of the plugins given (a list, or a function returning it on first use)."""

    plugins: Callable[[], Sequence[Plugin]]
    _views: dict[str, View] | None = attrs.field(default=None, init=False)

    def _all(self) -> dict[str, View]:
        if self._views is None:
            self._views = {t: v for p in self.plugins() for t, v in p.views.items()}
        return self._views

    def get(self, job_type: str) -> View | None:
        return self._all().get(job_type)

    def source(self, name: str) -> tuple[str, str | None, Callable[[], bool]] | None:
        """A template for the environment's `view:` loader: `view:<type>` is the view of that
        job type; `view:<type>/<file>` a file beside it (for `include` and `import`)."""
        job_type, _, sibling = name.partition("/")
        view = self.get(job_type)
        if view is None:
            return None
        module = importlib.import_module(view.module)
        path = (Path(module.__file__ or ".").parent / view.template).resolve()
        if sibling:
            folder = path.parent
            path = (folder / sibling).resolve()
            if not path.is_relative_to(folder) or not path.is_file():
                return None
        source = path.read_text("utf-8")
        mtime = path.stat().st_mtime
        return source, str(path), lambda: path.stat().st_mtime == mtime

    async def render(
        self,
        env: jinja2.Environment,
        job: Job,
        children: Callable[[], Awaitable[list[Job]]],
        context: dict[str, Any],
    ) -> Markup | None:
        """The view of `job` as markup, None when its type has none. A view that fails shows
        what went wrong instead (and logs it), the rest of the page still renders."""
        view = self.get(job.type)
        if view is None:
            return None
        try:
            kids = await children() if view.with_children else []
            values = dict(view.context(job, kids))
            template = env.get_template(f"view:{job.type}")
            return Markup(template.render({**context, **values, "job": job}))
        except Exception as exc:
            log.exception("dashboard: the view of %s failed on job %s", job.type, job.id)
            failed = env.get_template("_view_failed.html")
            return Markup(failed.render({**context, "error": f"{type(exc).__name__}: {exc}"}))
