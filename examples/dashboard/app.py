"""A Starlette service with the jobrunner dashboard mounted at /admin/jobs.

The service opens one `Runner` in its lifespan (here a worker too, running the built-in `diag`
jobs) and hands it to `create_app`, so the dashboard shares its connections and plugins:

    pip install 'jobrunner[dashboard]'
    JOBRUNNER_DASHBOARD_PASSWORD=change-me uvicorn app:app --app-dir examples/dashboard
    open http://127.0.0.1:8000/admin/jobs/          # log in as admin / change-me

With FastAPI it is the same call: `app.mount("/admin/jobs", create_app(runner))`. Without
JOBRUNNER_DASHBOARD_PASSWORD the dashboard has no login and answers loopback clients only.
Without DATABASE_URL the jobs go to ./jobrunner.db.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from jobrunner import Runner
from jobrunner.dashboard import create_app

runner = Runner(plugins=["diag"])


async def enqueue(request: Request) -> JSONResponse:
    """POST /sleep: enqueue a diag.sleep job (something to watch in the dashboard)."""
    job_id = await runner.enqueue("diag.sleep", {"seconds": 5})
    return JSONResponse({"id": job_id}, status_code=201)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with runner:  # creates the job table if needed, runs the worker until shutdown
        yield


app = Starlette(
    routes=[
        Route("/sleep", enqueue, methods=["POST"]),
        Mount("/admin/jobs", app=create_app(runner)),
    ],
    lifespan=lifespan,
)
