"""The pages over HTTP (no browser): counts, filters, pages, a job's detail and live fragment."""

from __future__ import annotations

import html
import re

import pytest
from dash_support import client

from jobrunner import NewJob

pytestmark = pytest.mark.anyio


def cell(html: str, job_type: str, queue: str, status: str) -> str:
    row = re.search(
        rf'<tr data-type="{re.escape(job_type)}" data-queue="{re.escape(queue)}">(.*?)</tr>',
        html,
        re.DOTALL,
    )
    assert row, f"a row for {job_type} / {queue}"
    found = re.search(rf'data-status="{status}">(?:<a [^>]*>)?([\d,]+)', row[1])
    assert found, status
    return found[1]


def listed(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr data-id="(\d+)"', html)]


async def test_overview_counts_match_the_database(store, make_app):
    async with store.runner() as runner:
        ids = await runner.enqueue_many(
            [NewJob(type="t.a") for _ in range(5)] + [NewJob(type="t.b", queue="bulk")] * 3
        )
    store.start(ids[:2])
    store.finish(ids[2:4], "completed")
    store.finish(ids[4:5], "failed", error="x")
    store.finish(ids[5:6], "cancelled")
    expected = {
        (t, q, s): n
        for t, q, s, n in store.sql(
            "SELECT type, queue, status, count(*) FROM {job} GROUP BY type, queue, status"
        )
    }
    async with client(make_app()) as c:
        overview, live = await c.get("/"), await c.get("/overview/live")
    for page in (overview.text, live.text):
        for (job_type, queue, status), count in expected.items():
            assert cell(page, job_type, queue, status) == str(count)
        assert 'id="total-pending">2<' in page  # the three of t.b that are left, minus one
    assert cell(live.text, "t.a", "default", "pending") == "0"


async def test_overview_lists_workers_limits_and_paused_queues(store, make_app):
    async with store.runner() as runner:
        await runner.set_limits("t.limited", concurrency=3, rate="10/1m")
        await runner.pause("t.paused", reason="vendor <incident>")
        await runner.pause(queues=["bulk"], reason="night")
        from jobrunner._backend import WorkerInfo

        await runner.backend.worker_heartbeat(
            WorkerInfo(
                id="h:1:x",
                host="worker-7",
                pid=4242,
                version="9.9",
                job_types=("t.a",),
                concurrency=8,
                running=3,
                processed=1234,
            )
        )
    async with client(make_app()) as c:
        page = (await c.get("/overview/cluster")).text
    assert "worker-7" in page and "4242" in page and "3 / 8" in page and "1,234" in page
    assert re.search(r'data-type="t.limited">.*?>3\*<.*?10/1m\*', page, re.DOTALL)
    assert "vendor &lt;incident&gt;" in page
    assert 'data-queue="bulk"' in page and "night" in page


async def test_the_jobs_list_filters(store, make_app):
    async with store.runner() as runner:
        parent = await runner.enqueue("t.parent")
        child = await runner.enqueue("t.child", parent_id=parent, user_id="u1", queue="media")
        failed = await runner.enqueue("t.child", user_id="u2")
    store.finish([failed], "failed", error="RuntimeError: upstream said NO")
    async with client(make_app()) as c:

        async def ids(**params: str) -> list[int]:
            answer = await c.get("/jobs", params=params)
            assert answer.status_code == 200
            return listed(answer.text)

        assert await ids() == [failed, child, parent]
        assert await ids(status="failed") == [failed]
        assert await ids(type="t.child") == [failed, child]
        assert await ids(queue="media") == [child]
        assert await ids(user="u1") == [child]
        assert await ids(parent=str(parent)) == [child]
        assert await ids(error="said no") == [failed]
        assert await ids(type="t.child", status="pending") == [child]
        assert (await c.get("/jobs", params={"status": "lost"})).status_code == 400
        assert (await c.get("/jobs", params={"parent": "x"})).status_code == 400


async def test_the_jobs_list_pages_by_id(store, make_app):
    async with store.runner() as runner:
        ids = await runner.enqueue_many([NewJob(type="t.a") for _ in range(120)])
    seen: list[int] = []
    async with client(make_app()) as c:
        answer = await c.get("/jobs")
        while True:
            seen += listed(answer.text)
            older = re.search(r'href="([^"]+)" id="older"', answer.text)
            if not older:
                break
            answer = await c.get(older[1].replace("&amp;", "&"))
    assert seen == ids[::-1]


async def test_a_job_shows_its_values_timings_and_family(store, make_app):
    async with store.runner() as runner:
        root = await runner.enqueue("t.root", {"novel": "西游记"}, user_id="u9")
        job_id = await runner.enqueue("t.step", {"n": 1}, parent_id=root)
        child = await runner.enqueue("t.leaf", parent_id=job_id)
    trace = 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: bad'
    store.finish([job_id], "failed", error=f"ValueError: bad\n{trace}")
    store.sql(
        "UPDATE {job} SET result = ?, checkpoint = ? WHERE id = ?",
        '{"ok": [1, 2]}',
        '{"chunk:0": "abc"}',
        job_id,
    )
    async with client(make_app()) as c:
        page = (await c.get(f"/jobs/{job_id}")).text
        root_page = (await c.get(f"/jobs/{root}")).text
        missing = await c.get("/jobs/999999")
    text = html.unescape(page)
    assert '"n": 1' in text and '"ok": [' in text
    assert 'id="traceback"' in page and "ValueError: bad" in text
    assert "17 B, keys: chunk:0" in page  # {"chunk:0":"abc"}
    tree = re.search(r'<ul class="tree" id="job-tree">(.*)</ul>', page, re.DOTALL)
    assert tree and [int(n) for n in re.findall(r"/jobs/(\d+)", tree[1])] == [root, job_id, child]
    assert 'class="current"' in tree[1]
    assert "西游记" in root_page and 'data-live="' in root_page  # pending: polled
    assert 'data-live="' not in page.split('id="job-live"')[1].split(">")[0]  # final: not
    assert missing.status_code == 404


async def test_the_live_fragment_shows_progress(store, make_app):
    async with store.runner() as runner:
        job_id = await runner.enqueue("diag.sleep", {"seconds": 5})
    store.start([job_id], progress=0.4, message="chapter 12/30")
    async with client(make_app()) as c:
        live = (await c.get(f"/jobs/{job_id}/live")).text
        store.finish([job_id], "completed")
        app_state = c._transport.app.state.site.snapshots  # type: ignore[attr-defined]
        app_state.invalidate()
        final = (await c.get(f"/jobs/{job_id}/live")).text
    assert 'id="job-progress">40%' in live and "chapter 12/30" in live
    assert "data-final" not in live
    assert "data-final" in final
