"""The operators' web dashboard: live counts, workers, limits and pauses; jobs to filter,
inspect, retry, cancel or delete; plugins' own views of their results.

Serve it with `jobrunner dashboard`, or mount `create_app(...)` (an ASGI app) in your own
FastAPI or Starlette service. Needs the `dashboard` extra: `pip install 'jobrunner[dashboard]'`
(Starlette, Jinja2 and uvicorn). See docs/dashboard.md.
"""

from ._access import Access
from ._app import create_app

__all__ = ("Access", "create_app")
