"""Limits, pauses, schedules and budgets in a real browser (Debian's Chromium, Playwright),
against `jobrunner dashboard` over one SQLite file: the panels show the database's state, the
controls change it, and a viewer has none of them.

The state is stored before this module's dashboard first reads it: the overview reads
schedules and budgets every 30 s (an action reads them again at once).
"""

from __future__ import annotations

import pytest
from browser_support import enqueue, new_page, run
from dash_support import VIEWER, VIEWER_PASSWORD

from jobrunner import NewJob
from jobrunner._budgets import UsageEntry

try:
    from playwright.sync_api import expect
except ImportError:  # the `chrome` fixture says what is missing (and fails under CI=true)
    expect = None

WAIT = 15_000
POST = """async ([path, body]) => (await fetch(path, {method: "POST",
          headers: {"Content-Type": "application/x-www-form-urlencoded"}, body})).status"""


@pytest.fixture(scope="module")
def seeded(site):
    """Limits, pauses, schedules and budgets, stored before the first page of the module."""
    store = site.store
    ids = enqueue(store, *[NewJob(type="p.limited", user_id="p-user") for _ in range(3)])
    store.start(ids[:1])

    async def plan() -> None:
        async with store.runner() as runner:
            await runner.set_limits("p.limited", concurrency=4, rate="30/1m")
            await runner.pause(queues=["p-queue"], reason="p <maintenance>")
            await runner.add_schedule("p-nightly", type="p.report", cron="30 2 * * *")
            await runner.add_schedule("p-often", type="p.poll", every="15m")
            await runner.set_budget(user_id="p-user", unit="tokens", amount=50)
            await runner.backend.usage_add(
                [UsageEntry(job_id=ids[0], user_id="p-user", amounts={"tokens": 64})]
            )

    run(plan)
    return ids


def _row_text(page, selector: str) -> str:
    row = page.locator(selector)
    row.wait_for(timeout=WAIT)
    return " ".join(row.inner_text().split())


def test_the_panels_show_the_databases_state(page, site, seeded):
    page.goto("/")
    limited = _row_text(page, '#limits tr[data-type="p.limited"]')
    assert "1 / 4" in limited and "30/1m*" in limited
    queue = _row_text(page, '#pauses tr[data-queue="p-queue"]')
    assert "p <maintenance>" in queue and "by hand" in queue  # text, not markup
    nightly = _row_text(page, '#schedules tr[data-schedule="p-nightly"]')
    assert "cron 30 2 * * *" in nightly and "02:30:00 UTC" in nightly and "active" in nightly
    assert "p.report" in nightly and "UTC" in nightly
    often = _row_text(page, '#schedules tr[data-schedule="p-often"]')
    assert "every 15m" in often
    budget = _row_text(page, '#budgets tr[data-budget-user="p-user"][data-unit="tokens"]')
    assert "50" in budget and "64" in budget and "p-user's pending jobs" in budget
    page.click('#budgets tr[data-budget-user="p-user"] td[data-held] a')
    page.locator("#job-list").wait_for(timeout=WAIT)
    shown = page.locator("#job-list tbody tr").evaluate_all("rows => rows.map(r => r.dataset.id)")
    assert sorted(int(i) for i in shown) == seeded[1:]  # its pending jobs, the running one not


def test_pausing_a_type_from_the_page_pauses_it_and_resume_lifts_it(page, site, seeded):
    page.goto("/")
    page.fill("#pause-form input[name=type]", "p.pausable")
    page.fill("#pause-form input[name=reason]", "deploy")
    page.click("#pause-form button")
    page.locator("#notice").wait_for(timeout=WAIT)
    assert site.store.sql(
        "SELECT paused, pause_reason FROM {job}_limits WHERE type = ?", "p.pausable"
    ) == [(1, "deploy")]
    row = page.locator('#pauses tr[data-paused-type="p.pausable"]')
    expect(row).to_contain_text("until resumed", timeout=WAIT)
    row.locator("button").click()
    page.locator("#notice").wait_for(timeout=WAIT)
    paused = site.store.sql("SELECT paused FROM {job}_limits WHERE type = ?", "p.pausable")
    assert paused in ([], [(0,)])
    expect(page.locator('#pauses tr[data-paused-type="p.pausable"]')).to_have_count(0)


def test_a_schedule_is_paused_and_resumed_from_the_page(page, site, seeded):
    page.goto("/")
    row = page.locator('#schedules tr[data-schedule="p-often"]')
    row.locator('form[action="/schedules/pause"] button').click()
    page.locator("#notice").wait_for(timeout=WAIT)
    assert site.store.sql("SELECT paused FROM {job}_schedules WHERE name = ?", "p-often") == [(1,)]
    expect(row.locator("td[data-state]")).to_have_text("paused", timeout=WAIT)
    row.locator('form[action="/schedules/resume"] button').click()
    page.locator("#notice").wait_for(timeout=WAIT)
    assert site.store.sql("SELECT paused FROM {job}_schedules WHERE name = ?", "p-often") == [(0,)]


def test_a_budget_is_set_from_the_page(page, site, seeded):
    page.goto("/")
    page.fill("#set-budget input[name=user]", "p-buyer")
    page.fill("#set-budget input[name=unit]", "images")
    page.fill("#set-budget input[name=amount]", "12")
    page.select_option("#set-budget select[name=period]", "monthly")
    page.fill("#set-budget input[name=types]", "image.generate")
    page.click("#set-budget button")
    page.locator("#notice").wait_for(timeout=WAIT)
    assert site.store.sql(
        "SELECT amount, types FROM {job}_budgets WHERE user_id = ? AND unit = ? AND period = ?",
        "p-buyer",
        "images",
        "monthly",
    ) == [(12, '["image.generate"]')]
    row = _row_text(page, '#budgets tr[data-budget-user="p-buyer"]')
    assert "12" in row and "image.generate" in row and "monthly" in row


def test_a_viewer_has_no_control_and_posts_are_refused(chrome, site, seeded):
    for base, credentials in ((site.read_only_url, None), (site.url, VIEWER)):
        options = (
            {}
            if credentials is None
            else {"http_credentials": {"username": VIEWER, "password": VIEWER_PASSWORD}}
        )
        viewer = new_page(chrome, base, **options)
        try:
            viewer.goto("/")
            viewer.locator("#schedules").wait_for(timeout=WAIT)
            assert viewer.locator("#controls").count() == 0
            for panel in ("#cluster", "#plans"):
                assert viewer.locator(f"{panel} form").count() == 0, panel
            token = viewer.locator('input[name="csrf"]').first.get_attribute("value")
            for path, body in (
                ("/schedules/pause", f"csrf={token}&name=p-nightly"),
                ("/budgets/set", f"csrf={token}&user=p-user&unit=tokens&amount=999&period=daily"),
                ("/pause", f"csrf={token}&type=p.limited"),
            ):
                assert viewer.evaluate(POST, [path, body]) == 403, (base, path)
        finally:
            viewer.context.close()
    assert site.store.sql("SELECT paused FROM {job}_schedules WHERE name = ?", "p-nightly") == [
        (0,)
    ]
    assert site.store.sql("SELECT amount FROM {job}_budgets WHERE user_id = ?", "p-user") == [(50,)]


def test_the_new_controls_refuse_a_post_without_the_csrf_token(page, site, seeded):
    page.goto("/")
    for path, body in (
        ("/schedules/remove", "name=p-nightly"),
        ("/schedules/run-now", "name=p-nightly"),
        ("/budgets/remove", "user=p-user&unit=tokens&period=daily"),
        ("/limits/clear", "type=p.limited"),
    ):
        assert page.evaluate(POST, [path, body]) == 403, path
    assert site.store.sql("SELECT count(*) FROM {job}_schedules WHERE name = ?", "p-nightly") == [
        (1,)
    ]
    assert site.store.sql("SELECT count(*) FROM {job} WHERE type = ?", "p.report") == [(0,)]
    assert site.store.sql("SELECT count(*) FROM {job}_budgets WHERE user_id = ?", "p-user") == [
        (1,)
    ]
