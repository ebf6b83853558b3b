"""The dashboard mounted inside another service (examples/dashboard/app.py): it shares the
service's runner, and its links, forms and redirects stay under the mount's prefix."""

from __future__ import annotations

import importlib.util
import re

import httpx
import pytest
from dash_support import csrf_of

from jr_support import REPO

pytestmark = pytest.mark.anyio


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / "dashboard" / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_example_mounts_the_dashboard_under_its_prefix(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'jobs.db'}")
    monkeypatch.setenv("JOBRUNNER_DASHBOARD_PASSWORD", "change-me")
    example = load_example("dashboard_example")
    transport = httpx.ASGITransport(app=example.app, client=("127.0.0.1", 40002))
    async with (
        example.app.router.lifespan_context(example.app),
        httpx.AsyncClient(
            transport=transport, base_url="http://svc.test", auth=("admin", "change-me")
        ) as c,
    ):
        job_id = (await c.post("/sleep")).json()["id"]
        overview = await c.get("/admin/jobs/")
        assert overview.status_code == 200
        links = re.findall(r'(?:href|src|action)="(/[^"]*)"', overview.text)
        assert links and all(link.startswith("/admin/jobs/") for link in links), links
        assert 'data-live="/admin/jobs/overview/live"' in overview.text
        page = await c.get(f"/admin/jobs/jobs/{job_id}")
        assert page.status_code == 200 and "diag.sleep" in page.text
        done = await c.post(
            f"/admin/jobs/jobs/{job_id}/cancel",
            data={"csrf": csrf_of(page.text)},
            headers={"origin": "http://svc.test"},
        )
        assert done.status_code == 303
        assert done.headers["location"].startswith(f"/admin/jobs/jobs/{job_id}?done=cancel")
        job = await example.runner.get_job(job_id)
        assert job.status in {"cancelled", "running"}  # the example's worker may hold it
        assert (await c.get("/admin/jobs/", auth=None)).status_code == 401
