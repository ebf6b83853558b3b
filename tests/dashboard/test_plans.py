"""Limits, pauses, schedules and budgets on the overview, with their controls: each panel
shows the database's state (every value escaped), each control changes it through the same
`Runner` calls as the CLI, is logged, and is hidden and refused for a viewer or without the
CSRF token. A pending job's page says what it waits for."""

from __future__ import annotations

import logging
import re

import pytest
from dash_support import HOST, USER, VIEWER, VIEWER_PASSWORD, client, csrf_of, post

from jobrunner._budgets import UsageEntry

pytestmark = pytest.mark.anyio

ACTIONS = [
    ("/schedules/pause", {"name": "nightly"}),
    ("/schedules/resume", {"name": "nightly"}),
    ("/schedules/run-now", {"name": "nightly"}),
    ("/schedules/remove", {"name": "nightly"}),
    ("/budgets/set", {"user": "u1", "unit": "tokens", "amount": "5", "period": "daily"}),
    ("/budgets/remove", {"user": "u1", "unit": "tokens", "period": "daily"}),
    ("/pause", {"type": "t.a"}),
    ("/limits/set", {"type": "t.a", "concurrency": "1"}),
]


def back_pressure(store, job_type: str, seconds: float, reason: str) -> None:
    """A pause as a `RateLimited` outcome leaves it: `paused_until`, not `paused`."""
    store.sql(
        f"INSERT INTO {{job}}_limits (type, paused_until, pause_reason)"
        f" VALUES (?, {store.ago(-seconds)}, ?)",
        job_type,
        reason,
    )


async def test_the_panels_show_limits_pauses_schedules_and_budgets(store, make_app):
    async with store.runner() as runner:
        ids = [await runner.enqueue("t.limited", user_id="u<1>") for _ in range(3)]
        await runner.set_limits("t.limited", concurrency=2, per_user=1, rate="10/1m")
        await runner.pause("t.hand", reason="vendor <incident>")
        await runner.pause(queues=["bulk"], reason="night <run>")
        await runner.add_schedule("nightly", type="t.report", cron="0 3 * * *", tz="Asia/Shanghai")
        await runner.add_schedule("<often>", type="t.poll", every="10m")
        await runner.pause_schedule("<often>")
        await runner.set_budget(user_id="u<1>", unit="tokens", amount=100, types=["t.limited"])
        await runner.set_budget(user_id=None, unit="cost_usd", amount=2.5, period="monthly")
        await runner.backend.usage_add(
            [UsageEntry(job_id=ids[0], user_id="u<1>", amounts={"tokens": 120})]
        )
    store.start(ids[:2])
    back_pressure(store, "t.pressed", 120, "RateLimited: 429 <slow down>")
    async with client(make_app()) as c:
        cluster = (await c.get("/overview/cluster")).text
        plans = (await c.get("/overview/plans")).text
        page = (await c.get("/")).text
    limited = re.search(r'<tr data-type="t.limited" class="full">(.*?)</tr>', cluster, re.DOTALL)
    assert limited, "a type at its concurrency is marked full"
    cells = re.findall(r"<td[^>]*>(.*?)</td>", limited[1], re.DOTALL)
    assert [c.strip() for c in cells[1:5]] == ["2 / 2", "2*", "1*", "10/1m*"]
    hand = re.search(r'data-paused-type="t.hand">(.*?)</tr>', cluster, re.DOTALL)
    assert hand and "by hand" in hand[1] and "until resumed" in hand[1]
    assert "vendor &lt;incident&gt;" in hand[1]
    pressed = re.search(r'data-paused-type="t.pressed">(.*?)</tr>', cluster, re.DOTALL)
    assert pressed and "back-pressure (RateLimited)" in pressed[1]
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", pressed[1])
    assert "429 &lt;slow down&gt;" in pressed[1]
    assert 'data-queue="bulk"' in cluster and "night &lt;run&gt;" in cluster
    nightly = re.search(r'data-schedule="nightly">(.*?)</tr>', plans, re.DOTALL)
    assert nightly and "cron 0 3 * * *" in nightly[1] and "Asia/Shanghai" in nightly[1]
    assert "t.report" in nightly[1] and "active" in nightly[1]
    # 03:00 in Shanghai is 19:00 UTC.
    assert re.search(r"data-next>\d{4}-\d\d-\d\d 19:00:00 UTC", nightly[1])
    often = re.search(r'data-schedule="&lt;often&gt;">(.*?)</tr>', plans, re.DOTALL)
    assert often and "every 10m" in often[1] and "paused" in often[1]
    assert "<often>" not in plans
    user = re.search(r'data-budget-user="u&lt;1&gt;"[^>]*>(.*?)</tr>', plans, re.DOTALL)
    assert user and "data-used>120<" in user[1] and ">100<" in user[1] and "t.limited" in user[1]
    assert "u&lt;1&gt;&#39;s pending jobs" in user[1] and "status=pending" in user[1]
    default = re.search(r'data-budget-user=""[^>]*>(.*?)</tr>', plans, re.DOTALL)
    assert default and "(default)" in default[1] and "2.5" in default[1]
    assert "monthly" in default[1] and "nobody" in default[1]
    assert 'id="set-budget"' in page and 'id="schedules"' in page and 'id="pauses"' in page


async def test_schedules_are_paused_resumed_run_and_removed(store, make_app, caplog):
    async with store.runner() as runner:
        await runner.add_schedule(
            "nightly", type="t.report", cron="0 3 * * *", payload={"k": 1}, queue="q2"
        )
    caplog.set_level(logging.INFO, logger="jobrunner.dashboard")
    async with client(make_app()) as c:
        paused = await post(c, "/schedules/pause", {"name": "nightly"})
        assert paused.status_code == 303 and paused.headers["location"] == "/?done=schedule"
        async with store.runner() as runner:
            [s] = await runner.schedules()
            assert s.paused
        assert 'action="/schedules/resume"' in (await c.get("/overview/plans")).text
        await post(c, "/schedules/resume", {"name": "nightly"})
        async with store.runner() as runner:
            [s] = await runner.schedules()
            assert not s.paused
        ran = await post(c, "/schedules/run-now", {"name": "nightly"})
        again = await post(c, "/schedules/run-now", {"name": "nightly"})
        assert ran.status_code == again.status_code == 303
        job_path = ran.headers["location"].split("?")[0]
        assert again.headers["location"].split("?")[0] == job_path  # one job while it waits
        async with store.runner() as runner:
            job = await runner.get_job(int(job_path.rsplit("/", 1)[1]))
            assert (job.type, job.payload, job.queue) == ("t.report", {"k": 1}, "q2")
        missing = await post(c, "/schedules/pause", {"name": "nope"})
        assert missing.status_code == 404 and "There is no schedule nope." in missing.text
        assert (await post(c, "/schedules/explode", {"name": "nightly"})).status_code == 404
        assert (await post(c, "/schedules/remove", {"name": "nightly"})).status_code == 303
    async with store.runner() as runner:
        assert await runner.schedules() == []
    lines = [r.getMessage() for r in caplog.records if r.name == "jobrunner.dashboard"]
    assert f"dashboard: {USER} schedule pause schedule=nightly" in lines
    assert f"dashboard: {USER} schedule remove schedule=nightly" in lines
    record = next(r for r in caplog.records if getattr(r, "action", None) == "schedule run-now")
    assert record.user == USER and record.job_ids == [job.id]


async def test_budgets_are_set_and_removed(store, make_app, caplog):
    caplog.set_level(logging.INFO, logger="jobrunner.dashboard")
    async with client(make_app()) as c:
        done = await post(
            c,
            "/budgets/set",
            {"user": "u1", "unit": "tokens", "amount": "1500", "period": "daily", "types": "a, b"},
        )
        assert done.status_code == 303 and done.headers["location"] == "/?done=budget"
        await post(c, "/budgets/set", {"unit": "cost_usd", "amount": "0", "period": "monthly"})
        for bad in ({"amount": "lots"}, {"amount": "-1"}, {"period": "weekly"}, {"unit": ""}):
            form = {"user": "u1", "unit": "tokens", "amount": "1", "period": "daily", **bad}
            refused = await post(c, "/budgets/set", form)
            assert refused.status_code == 400, bad
        async with store.runner() as runner:
            found = {(b.user_id, b.unit, b.period): b for b in await runner.budgets()}
        assert set(found) == {("u1", "tokens", "daily"), (None, "cost_usd", "monthly")}
        assert found[("u1", "tokens", "daily")].amount == 1500
        assert found[("u1", "tokens", "daily")].types == ("a", "b")
        assert found[(None, "cost_usd", "monthly")].amount == 0
        gone = await post(c, "/budgets/remove", {"user": "u1", "unit": "tokens", "period": "daily"})
        assert gone.status_code == 303
        again = await post(
            c, "/budgets/remove", {"user": "u1", "unit": "tokens", "period": "daily"}
        )
        assert again.status_code == 404
    async with store.runner() as runner:
        assert [(b.user_id, b.unit) for b in await runner.budgets()] == [(None, "cost_usd")]
    record = next(r for r in caplog.records if getattr(r, "action", None) == "budget set")
    assert record.user == USER and record.budget_user == "u1" and record.amount == 1500
    assert record.types == ["a", "b"]


async def test_a_viewer_sees_no_control_and_every_new_action_is_refused(store, make_app):
    async with store.runner() as runner:
        await runner.add_schedule("nightly", type="t.report", every="1h")
        await runner.set_budget(user_id="u1", unit="tokens", amount=5)
        await runner.pause("t.a")
    async with client(make_app(), auth=(VIEWER, VIEWER_PASSWORD)) as c:
        page = await c.get("/")
        for fragment in ("/overview/cluster", "/overview/plans"):
            text = (await c.get(fragment)).text
            assert "<form" not in text, fragment
        assert 'id="schedules"' in page.text and 'id="set-budget"' not in page.text
        token = csrf_of((await c.get("/jobs")).text)
        for path, data in ACTIONS:
            answer = await c.post(
                path, data={"csrf": token, **data}, headers={"origin": f"http://{HOST}"}
            )
            assert answer.status_code == 403, path
    async with store.runner() as runner:
        [s] = await runner.schedules()
        assert not s.paused
        assert [b.amount for b in await runner.budgets()] == [5]
        assert [(x.type, x.paused) for x in await runner.limits()] == [("t.a", True)]
        assert await runner.list_jobs() == []


async def test_the_new_actions_need_the_csrf_token_and_our_origin(store, make_app):
    async with store.runner() as runner:
        await runner.add_schedule("nightly", type="t.report", every="1h")
    async with client(make_app()) as c:
        token = csrf_of((await c.get("/jobs")).text)
        for path, data in ACTIONS:
            no_token = await c.post(path, data=data, headers={"origin": f"http://{HOST}"})
            elsewhere = await c.post(
                path, data={"csrf": token, **data}, headers={"origin": "https://evil.example"}
            )
            assert (no_token.status_code, elsewhere.status_code) == (403, 403), path
    async with store.runner() as runner:
        [s] = await runner.schedules()
        assert not s.paused
        assert await runner.budgets() == [] and await runner.limits() == []


async def test_a_pending_job_says_what_it_waits_for(store, make_app):
    async with store.runner() as runner:
        held = await runner.enqueue("t.a", queue="bulk", user_id="u<9>")
        free = await runner.enqueue("t.b")
        await runner.pause("t.a", reason="vendor <down>")
        await runner.pause(queues=["bulk"])
        await runner.set_budget(user_id="u<9>", unit="tokens", amount=0)
        expected = await runner.pending_reasons(await runner.get_job(held))
    assert len(expected) == 3
    async with client(make_app()) as c:
        held_page = (await c.get(f"/jobs/{held}")).text
        free_page = (await c.get(f"/jobs/{free}")).text
    waiting = re.search(r'<section class="waiting" id="waiting">(.*?)</section>', held_page, re.S)
    assert waiting
    shown = re.findall(r"<li>(.*?)</li>", waiting[1])
    escaped = [r.replace("<", "&lt;").replace(">", "&gt;") for r in expected]
    assert shown == escaped and any("vendor &lt;down&gt;" in r for r in shown)
    assert "Nothing holds it back" in free_page
