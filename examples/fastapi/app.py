"""A FastAPI app with a jobrunner worker in its lifespan.

    POST /jobs      {"type": "diag.sleep", "payload": {"seconds": 2}, "user_id": "u1"}
                    → 201 {"id": 1}; 422 when the payload does not fit the job type's
    GET  /jobs/1    → 200 the job as JSON (status, progress, result, error, …); 404

The lifespan opens `Runner(...)`, which creates the job table if needed and starts a worker in
the background, and hands it to the endpoints as lifespan state (`request.state.runner`). On
shutdown the `async with` block ends: the worker stops claiming, running jobs get
`shutdown_timeout` to finish, and the rest go back to the queue.

Run it with uvicorn (`pip install fastapi uvicorn`), from the repository root:

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        uvicorn app:app --app-dir examples/fastapi
    curl -X POST localhost:8000/jobs -H 'content-type: application/json' \\
        -d '{"type": "diag.sleep", "payload": {"seconds": 2}}'
    curl localhost:8000/jobs/1

Without DATABASE_URL the jobs go to ./jobrunner.db.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel, Field

from jobrunner import JobNotFound, PayloadError, Runner


class EnqueueRequest(BaseModel):
    type: str = Field(description="A job type the app's worker runs, e.g. diag.sleep.")
    payload: Any = Field(default_factory=dict, description="The job's payload (JSON).")
    user_id: str | None = None


def create_app(
    database_url: str | None = None, *, plugins: Iterable[str] = ("diag",), **runner_options: Any
) -> FastAPI:
    """The app; `runner_options` go to `Runner` (`concurrency=`, `shutdown_timeout=`, …).
    Nothing connects until the lifespan starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Runner]]:
        async with Runner(database_url, plugins=list(plugins), **runner_options) as runner:
            yield {"runner": runner}

    app = FastAPI(title="jobs", lifespan=lifespan)

    @app.post("/jobs", status_code=201)
    async def enqueue(body: EnqueueRequest, request: Request) -> dict[str, int]:
        runner: Runner = request.state.runner
        if body.type not in runner.handlers:
            raise HTTPException(400, f"type must be one of: {', '.join(sorted(runner.handlers))}")
        try:
            # The runner knows the handler, so a payload its type refuses raises here,
            # naming the field, and nothing is written.
            job_id = await runner.enqueue(body.type, body.payload, user_id=body.user_id)
        except PayloadError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"id": job_id}

    @app.get("/jobs/{job_id}")
    async def show(job_id: int, request: Request) -> dict[str, Any]:
        runner: Runner = request.state.runner
        try:
            job = await runner.get_job(job_id)
        except JobNotFound:
            raise HTTPException(404, f"no job {job_id}") from None
        return job.as_dict()

    return app


app = create_app()

if __name__ == "__main__":
    import uvicorn  # not a dependency of jobrunner: pip install uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
