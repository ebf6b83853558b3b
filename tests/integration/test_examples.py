"""The examples work: the ASGI web app's lifespan and endpoints, and the plugin-hello package."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest

from jobrunner import Runner
from jr_support import JOBRUNNER, REPO

pytestmark = pytest.mark.anyio

EXAMPLES = REPO / "examples"


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as an import does: pydantic resolves annotations through it
    spec.loader.exec_module(module)
    return module


class Lifespan:
    """Drives an ASGI app's lifespan the way a server does, without a server."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.to_app, self._app_inbox = anyio.create_memory_object_stream[dict](4)
        self._app_outbox, self.from_app = anyio.create_memory_object_stream[dict](4)

    async def run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        await self.app(scope, self._app_inbox.receive, self._app_outbox.send)

    async def event(self, kind: str) -> str:
        await self.to_app.send({"type": f"lifespan.{kind}"})
        with anyio.fail_after(60):
            return (await self.from_app.receive())["type"]


async def request(app: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One HTTP request through the ASGI callable; returns (status, decoded JSON body)."""
    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    incoming = [{"type": "http.request", "body": raw, "more_body": False}]
    sent: list[dict] = []

    async def receive() -> dict:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": [], "query_string": b""}
    await app(scope, receive, send)
    start, content = sent
    assert start["type"] == "http.response.start"
    assert (b"content-type", b"application/json") in start["headers"]
    return start["status"], json.loads(content["body"])


async def get_until(app: Any, path: str, done: Any) -> dict:
    """GET `path` until `done(job)`; the worker runs in the app's lifespan meanwhile."""
    with anyio.fail_after(30):
        while True:
            status, job = await request(app, "GET", path)
            assert status == 200, job
            if done(job):
                return job
            await anyio.sleep(0.05)


async def test_webapp_runs_jobs_between_startup_and_shutdown(pg_url, pg_schema):
    webapp = load_module(EXAMPLES / "webapp" / "app.py", "example_webapp")
    app = webapp.create_app(pg_url, schema=pg_schema, shutdown_timeout=0.5, env={})
    status, body = await request(app, "GET", "/jobs/1")
    assert status == 503, "no runner before the lifespan starts"

    lifespan = Lifespan(app)
    async with anyio.create_task_group() as tg:
        tg.start_soon(lifespan.run)
        assert await lifespan.event("startup") == "lifespan.startup.complete"

        job = {"type": "diag.sleep", "payload": {"seconds": 0.2}, "user_id": "u1"}
        status, body = await request(app, "POST", "/jobs", job)
        assert status == 201, body
        done = await get_until(app, f"/jobs/{body['id']}", lambda j: j["status"] == "completed")
        assert (done["result"], done["user_id"], done["attempts"]) == ({"slept": 0.2}, "u1", 1)

        assert (await request(app, "POST", "/jobs", {"type": "nope.nothing"}))[0] == 400
        assert (await request(app, "POST", "/jobs", b"{not json"))[0] == 400
        too_big = {"type": "diag.noop", "payload": {"x": "y" * 2_000_000}}
        assert (await request(app, "POST", "/jobs", too_big))[0] == 413
        assert (await request(app, "GET", "/jobs/999999"))[0] == 404

        # A job still running at shutdown is handed back, not left running.
        long = {"type": "diag.sleep", "payload": {"seconds": 60}}
        status, body = await request(app, "POST", "/jobs", long)
        long_id = body["id"]
        await get_until(app, f"/jobs/{long_id}", lambda j: j["status"] == "running")
        assert await lifespan.event("shutdown") == "lifespan.shutdown.complete"

    assert app.runner is None
    async with Runner(pg_url, schema=pg_schema, worker=False, env={}) as runner:
        handed_back = await runner.get_job(long_id)
    assert (handed_back.status, handed_back.attempts) == ("pending", 0)


async def test_webapp_reports_a_failed_startup():
    webapp = load_module(EXAMPLES / "webapp" / "app.py", "example_webapp")
    app = webapp.create_app("mysql://nowhere/db", env={})
    lifespan = Lifespan(app)
    async with anyio.create_task_group() as tg:
        tg.start_soon(lifespan.run)
        assert await lifespan.event("startup") == "lifespan.startup.failed"


async def test_plugin_hello_handler_runs(pg_url, pg_schema):
    hello = load_module(EXAMPLES / "plugin-hello" / "src" / "jobrunner_hello" / "__init__.py", "h")
    assert set(hello.plugin.handlers) == {"hello.greet"}
    async with Runner(pg_url, schema=pg_schema, plugins=[hello.plugin], env={}) as runner:
        good = await runner.enqueue("hello.greet", {"name": "Ada"})
        bad = await runner.enqueue("hello.greet", {"nom": "Ada"})
        ok = await runner.wait_for(good, timeout=30)
        failed = await runner.wait_for(bad, timeout=30)
    assert (ok.status, ok.result) == ("completed", {"greeting": "Hello, Ada!", "attempt": 1})
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert failed.error.startswith("PermanentFailure: ")


def test_plugin_hello_installs_and_registers_its_entry_point(pg_url, pg_schema, tmp_path):
    site = tmp_path / "site"
    options = ["--quiet", "--no-deps", "--no-build-isolation", "--no-index", "--target", str(site)]
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", *options, str(EXAMPLES / "plugin-hello")],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert pip.returncode == 0, pip.stderr
    env = dict(os.environ, DATABASE_URL=pg_url, JOBRUNNER_SCHEMA=pg_schema)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    env.pop("JOBRUNNER_PLUGINS", None)

    def jr(*args: str) -> str:
        out = subprocess.run(
            [JOBRUNNER, *args], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
        )
        assert out.returncode == 0, f"jobrunner {' '.join(args)}\n{out.stderr}"
        return out.stdout

    listed = {p["name"]: p for p in json.loads(jr("plugins", "--json"))}
    assert listed["hello"]["distribution"] == "jobrunner-hello"
    assert listed["hello"]["job_types"]["hello.greet"]["ready"] is True
    job_id = jr("enqueue", "hello.greet", "--payload", '{"name": "Grace"}').strip()
    jr("run", "--plugin", "hello", "--burst")
    shown = json.loads(jr("jobs", "show", job_id, "--json"))
    assert (shown["status"], shown["result"]["greeting"]) == ("completed", "Hello, Grace!")


async def test_the_plugins_md_test_of_plugin_hello_passes(monkeypatch):
    """docs/plugins.md#testing-a-plugin: `run_job` on the example plugin, as written."""
    from jr_docs import code_blocks

    monkeypatch.syspath_prepend(str(EXAMPLES / "plugin-hello" / "src"))
    text = (REPO / "docs" / "plugins.md").read_text("utf-8")
    section = text.split("## Testing a plugin", 1)[1]
    [source] = [body for lang, body in code_blocks(section) if lang == "python"]
    namespace: dict[str, Any] = {}
    exec(compile(source, "plugins.md", "exec"), namespace)
    await namespace["test_greet"]()


def poll(client: Any, path: str, done: Any) -> dict:
    """GET `path` until `done(job)` (a sync client: the app's event loop runs in its thread)."""
    for _ in range(1200):
        job = client.get(path).json()
        if done(job):
            return job
        time.sleep(0.05)
    raise AssertionError(f"{path} never got there: {job}")


def test_fastapi_app_runs_jobs_in_its_lifespan(pg_url, pg_schema):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    example = load_module(EXAMPLES / "fastapi" / "app.py", "example_fastapi")
    app = example.create_app(pg_url, schema=pg_schema, shutdown_timeout=0.5, env={})
    with TestClient(app) as client:  # runs the lifespan: startup here, shutdown at the end
        created = client.post(
            "/jobs", json={"type": "diag.sleep", "payload": {"seconds": 0.1}, "user_id": "u1"}
        )
        assert created.status_code == 201, created.text
        job = poll(client, f"/jobs/{created.json()['id']}", lambda j: j["status"] == "completed")
        assert (job["result"], job["user_id"], job["attempts"]) == ({"slept": 0.1}, "u1", 1)
        bad = client.post("/jobs", json={"type": "diag.sleep", "payload": {"seconds": -1}})
        assert bad.status_code == 422
        assert bad.json()["detail"] == (
            "diag.sleep payload: seconds: Input should be greater than or equal to 0 (got -1)"
        )
        assert client.post("/jobs", json={"type": "nope.nothing"}).status_code == 400
        assert client.get("/jobs/999999").status_code == 404
        long = client.post("/jobs", json={"type": "diag.sleep", "payload": {"seconds": 60}})
        long_id = long.json()["id"]
        poll(client, f"/jobs/{long_id}", lambda j: j["status"] == "running")
    # The lifespan ended: the running job went back to the queue, its attempt not counted.
    with TestClient(example.create_app(pg_url, schema=pg_schema, worker=False, env={})) as c:
        handed_back = c.get(f"/jobs/{long_id}").json()
    assert (handed_back["status"], handed_back["attempts"]) == ("pending", 0)
