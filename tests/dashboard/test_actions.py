"""The actions over HTTP: on one job, on a filtered set (asked first), on limits and pauses;
each changes the rows it should, and is logged with who did it and to which jobs."""

from __future__ import annotations

import datetime as dt
import logging
import re

import pytest
from dash_support import USER, client, csrf_of, post

from jobrunner import JobStatus, NewJob

pytestmark = pytest.mark.anyio


async def statuses(store) -> dict[int, JobStatus]:
    async with store.runner() as runner:
        return {j.id: j.status for j in await runner.list_jobs(limit=1000)}


async def test_retry_cancel_run_now_and_delete_change_the_job(store, make_app, caplog):
    async with store.runner() as runner:
        failed, pending, running, later = await runner.enqueue_many(
            [
                NewJob(type="t.a"),
                NewJob(type="t.a"),
                NewJob(type="t.a"),
                NewJob(type="t.a", delay=3600),
            ]
        )
    store.finish([failed], "failed", error="boom")
    store.start([running])
    caplog.set_level(logging.INFO, logger="jobrunner.dashboard")
    async with client(make_app()) as c:
        retried = await post(c, f"/jobs/{failed}/retry", {})
        assert retried.status_code == 303 and retried.headers["location"].endswith(
            f"/jobs/{failed}?done=retry&n=1"
        )
        assert (await post(c, f"/jobs/{pending}/cancel", {})).status_code == 303
        assert (await post(c, f"/jobs/{running}/cancel", {})).status_code == 303
        assert (await post(c, f"/jobs/{later}/run-now", {})).status_code == 303
        notice = await c.get(f"/jobs/{failed}?done=retry&n=1")
        assert 'id="notice"' in notice.text
        assert (await post(c, "/jobs/1/explode", {})).status_code == 404
    async with store.runner() as runner:
        assert (await runner.get_job(failed)).status is JobStatus.PENDING
        assert (await runner.get_job(failed)).attempts == 0
        assert (await runner.get_job(pending)).status is JobStatus.CANCELLED
        stopping = await runner.get_job(running)
        assert stopping.status is JobStatus.RUNNING and stopping.cancel_requested
        assert (await runner.get_job(later)).run_at <= dt.datetime.now(dt.UTC)
    async with client(make_app()) as c:
        deleted = await post(c, f"/jobs/{pending}/delete", {})
        assert deleted.headers["location"].endswith("/jobs?done=delete&n=1")
        assert (await post(c, f"/jobs/{running}/delete", {})).status_code == 303  # refused: left
    assert set(await statuses(store)) == {failed, running, later}
    lines = [r.getMessage() for r in caplog.records if r.name == "jobrunner.dashboard"]
    assert f"dashboard: {USER} retry job {failed}" in lines
    assert f"dashboard: {USER} delete job {pending}" in lines
    record = next(r for r in caplog.records if getattr(r, "action", None) == "run-now")
    assert record.user == USER and record.job_ids == [later]


async def test_a_bulk_action_says_how_many_first_then_changes_only_those(store, make_app, caplog):
    async with store.runner() as runner:
        ids = await runner.enqueue_many(
            [NewJob(type="t.a") for _ in range(6)] + [NewJob(type="t.b") for _ in range(2)]
        )
    store.finish(ids[:4], "failed", error="RuntimeError: upstream")
    store.finish(ids[4:5], "completed")
    store.finish(ids[6:7], "failed", error="RuntimeError: upstream")  # another type
    caplog.set_level(logging.INFO, logger="jobrunner.dashboard")
    async with client(make_app()) as c:
        asked = await post(c, "/jobs/bulk", {"action": "retry", "type": "t.a", "status": "failed"})
        assert asked.status_code == 200
        assert "Retry 4 jobs?" in asked.text
        max_id = re.search(r'name="max_id" value="(\d+)"', asked.text)
        assert max_id and int(max_id[1]) == ids[3]
        async with store.runner() as runner:  # a new failure after the question is left alone
            newer = await runner.enqueue("t.a")
        store.finish([newer], "failed", error="RuntimeError: upstream")
        done = await post(
            c,
            "/jobs/bulk/apply",
            {"action": "retry", "type": "t.a", "status": "failed", "max_id": max_id[1]},
        )
        assert done.status_code == 303
        assert "done=retry" in done.headers["location"] and "n=4" in done.headers["location"]
    found = await statuses(store)
    assert [found[i] for i in ids[:4]] == [JobStatus.PENDING] * 4
    assert found[ids[4]] is JobStatus.COMPLETED
    assert found[ids[6]] is JobStatus.FAILED
    assert found[newer] is JobStatus.FAILED
    line = next(r for r in caplog.records if getattr(r, "action", None) == "retry")
    assert line.getMessage() == f"dashboard: {USER} retry jobs {ids[0]}-{ids[3]}"
    assert line.filters["type"] == "t.a" and line.job_ids == ids[:4] and line.job_count == 4


async def test_a_bulk_action_is_capped_and_says_so(store, make_app):
    async with store.runner() as runner:
        ids = await runner.enqueue_many([NewJob(type="t.a") for _ in range(5)])
    async with client(make_app(bulk_limit=3)) as c:
        asked = await post(c, "/jobs/bulk", {"action": "cancel"})
        assert "Cancel 3 jobs?" in asked.text and "More jobs match" in asked.text
        max_id = re.search(r'name="max_id" value="(\d+)"', asked.text)
        assert max_id
        await post(c, "/jobs/bulk/apply", {"action": "cancel", "max_id": max_id[1]})
    found = await statuses(store)
    assert [found[i] for i in ids] == [JobStatus.PENDING] * 2 + [JobStatus.CANCELLED] * 3


async def test_a_bulk_action_on_statuses_it_cannot_change_does_nothing(store, make_app):
    async with store.runner() as runner:
        await runner.enqueue("t.a")
    async with client(make_app()) as c:
        asked = await post(c, "/jobs/bulk", {"action": "delete", "status": "pending"})
        assert "Nothing to do" in asked.text and "confirm-form" not in asked.text
        assert (await post(c, "/jobs/bulk", {"action": "run-now"})).status_code == 400


async def test_limits_and_pauses_are_set_from_the_overview(store, make_app, caplog):
    caplog.set_level(logging.INFO, logger="jobrunner.dashboard")
    async with client(make_app()) as c:
        set_ = await post(
            c, "/limits/set", {"type": "t.a", "concurrency": "2", "rate": "30/1m", "order": "fifo"}
        )
        assert set_.status_code == 303 and set_.headers["location"].endswith("/?done=limits")
        assert (await post(c, "/pause", {"type": "t.b", "reason": "incident"})).status_code == 303
        assert (await post(c, "/pause", {"queue": "bulk"})).status_code == 303
        async with store.runner() as runner:
            states = {s.type: s for s in await runner.limits()}
            assert states["t.a"].configured.concurrency == 2
            assert str(states["t.a"].configured.rate) == "30/1m" and not states["t.a"].fair
            assert states["t.b"].paused and states["t.b"].pause_reason == "incident"
            assert await runner.paused_queues() == {"bulk": None}
        cluster = await c.get("/overview/cluster")
        assert 'action="/resume"' in cluster.text
        bad = await post(c, "/limits/set", {"type": "t.a", "rate": "fast"})
        assert bad.status_code == 400 and "not a rate" in bad.text
        assert (await post(c, "/limits/set", {"type": "t.a"})).status_code == 400
        assert (
            await post(c, "/limits/set", {"type": "t.a", "concurrency": "-1"})
        ).status_code == 400
        await post(c, "/limits/clear", {"type": "t.a"})
        await post(c, "/resume", {"type": "t.b"})
        await post(c, "/resume", {"queue": "bulk"})
    async with store.runner() as runner:
        states = {s.type: s for s in await runner.limits()}
        assert "t.a" not in states or not states["t.a"].configured.any
        assert "t.b" not in states or not states["t.b"].paused
        assert await runner.paused_queues() == {}
    actions = [getattr(r, "action", None) for r in caplog.records]
    assert actions.count("pause") == 2 and "limits set" in actions and "limits clear" in actions


async def test_the_language_switch_remembers_its_choice(make_app):
    async with client(make_app()) as c:
        page = await c.get("/jobs?status=failed")
        switched = await c.post(
            "/language",
            data={"csrf": csrf_of(page.text), "lang": "zh", "next": "/jobs?status=failed"},
            headers={"origin": "http://dash.test"},
        )
        assert switched.status_code == 303
        assert switched.headers["location"] == "/jobs?status=failed"
        assert "jobrunner_lang=zh" in switched.headers["set-cookie"]
        away = await c.post(
            "/language",
            data={"csrf": csrf_of(page.text), "lang": "en", "next": "//evil.example/"},
            headers={"origin": "http://dash.test"},
        )
        assert away.headers["location"] == "/"
