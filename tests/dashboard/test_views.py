"""Plugin views: a plugin's template and context function show its jobs' results, escaped."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from dash_support import client

from jobrunner import Job, Plugin

pytestmark = pytest.mark.anyio

plugin = Plugin("echo")


@plugin.view("echo.items", template="views/echo.html", title="Echoed items", children=True)
def echo_view(job: Job, children: Sequence[Job]) -> dict[str, Any]:
    result = job.result or {}
    return {
        "title": result.get("title", ""),
        "items": result.get("items", []),
        "children": children,
    }


@plugin.view("echo.broken", template="views/echo.html")
def broken_view(job: Job, children: Sequence[Job]) -> dict[str, Any]:
    raise KeyError("no such field")


async def test_a_plugin_view_renders_the_result_escaped(store, make_app):
    async with store.runner() as runner:
        job_id = await runner.enqueue("echo.items")
        await runner.enqueue("echo.child", parent_id=job_id)
        plain = await runner.enqueue("other.type")
        broken = await runner.enqueue("echo.broken")
    store.finish([job_id], "completed")
    store.sql(
        "UPDATE {job} SET result = ? WHERE id = ?",
        '{"title": "<b>bold</b>", "items": ["one", "<script>x()</script>"]}',
        job_id,
    )
    async with client(make_app(plugins=[plugin])) as c:
        page = (await c.get(f"/jobs/{job_id}")).text
        fragment = (await c.get(f"/jobs/{job_id}/view")).text
        other = (await c.get(f"/jobs/{plain}")).text
        failed = await c.get(f"/jobs/{broken}")
    assert "<h2>Echoed items</h2>" in page
    assert 'id="echo-title">Result: &lt;b&gt;bold&lt;/b&gt;' in page
    assert "<li>&lt;script&gt;x()&lt;/script&gt;</li>" in page
    assert 'id="echo-children">1<' in page
    assert 'id="echo-title"' in fragment
    assert 'id="plugin-view"' not in other
    assert failed.status_code == 200 and "KeyError" in failed.text
