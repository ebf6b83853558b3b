"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against
`jobrunner dashboard` (and `jobrunner run` for live progress) over one SQLite file.

Without Chromium these tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import re

import pytest
from browser_support import enqueue, file_server, new_page, run, status_of, worker
from cineqo_data import CAST, insert_pipeline
from dash_support import PASSWORD, USER, VIEWER, VIEWER_PASSWORD

from jobrunner import NewJob

try:
    from playwright.sync_api import Error, expect
except ImportError:  # the `chrome` fixture says what is missing (and fails under CI=true)
    Error = expect = None

XSS_PAYLOAD = "<script>window.__pwned = 1; alert('payload')</script>"
XSS_ERROR = "<img src=x onerror=\"window.__pwned = 2; alert('error')\">"
WAIT = 15_000  # ms: the longest a test waits for the page to show something


def test_a_login_is_required(chrome, site):
    anonymous = new_page(chrome, site.url, http_credentials=None)
    try:
        # The browser asks for a login; headless, nobody gives one: the navigation fails.
        with pytest.raises(Error, match="ERR_INVALID_AUTH_CREDENTIALS"):
            anonymous.goto("/")
        assert anonymous.request.get(f"{site.url}/jobs").status == 401
    finally:
        anonymous.context.close()
    wrong = new_page(chrome, site.url, http_credentials={"username": USER, "password": "nope"})
    try:
        answer = wrong.goto("/")
        assert answer is not None and answer.status == 401
        assert wrong.locator("h1").count() == 0
    finally:
        wrong.context.close()


def test_the_overview_counts_match_the_database(page, site):
    ids = enqueue(site.store, *[NewJob(type="b.count", queue="q-count") for _ in range(7)])
    site.store.start(ids[:2])
    site.store.finish(ids[2:5], "completed", ago=30)
    site.store.finish(ids[5:6], "failed", ago=30, error="boom")
    page.goto("/")
    row = page.locator('tr[data-type="b.count"][data-queue="q-count"]')
    row.wait_for(timeout=WAIT)
    counts = dict(
        site.store.sql("SELECT status, count(*) FROM {job} WHERE type = 'b.count' GROUP BY status")
    )
    for status in ("pending", "running", "completed", "failed"):
        shown = row.locator(f'td[data-status="{status}"]').inner_text()
        assert int(shown.replace(",", "")) == counts.get(status, 0), status
    # Live: a change shows without reloading the page.
    page.evaluate("window.__same_page = true")
    site.store.finish(ids[:1], "completed", ago=1)
    expected = str(counts["completed"] + 1)
    expect(row.locator('td[data-status="completed"]')).to_have_text(expected, timeout=WAIT)
    assert page.evaluate("window.__same_page") is True


def test_filtering_the_jobs(page, site):
    ids = enqueue(site.store, *[NewJob(type="b.filter", user_id=f"u{n % 2}") for n in range(6)])
    site.store.finish(ids[:3], "failed", error="ValueError: the filter test")
    page.goto("/jobs")
    page.select_option('select[name="status"]', "failed")
    page.fill('input[name="type"]', "b.filter")
    page.click("#filters button")
    page.wait_for_url(re.compile(r"status=failed"))
    shown = [
        int(n)
        for n in page.locator("#job-list tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.id)"
        )
    ]
    assert shown == ids[:3][::-1]
    page.fill('input[name="user"]', "u1")
    page.click("#filters button")
    page.wait_for_url(re.compile(r"user=u1"))
    shown = [
        int(n)
        for n in page.locator("#job-list tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.id)"
        )
    ]
    assert shown == [ids[1]]  # failed, and of user u1


def test_a_job_shows_payload_error_traceback_and_family(page, site):
    [parent] = enqueue(site.store, NewJob(type="b.parent", payload={"book": "西游记"}))
    [job_id] = enqueue(site.store, NewJob(type="b.detail", payload={"n": 42}, parent_id=parent))
    trace = 'Traceback (most recent call last):\n  File "h.py", line 3, in run\nKeyError: 42'
    site.store.finish([job_id], "failed", error=f"KeyError: 42\n{trace}")
    page.goto(f"/jobs/{job_id}")
    assert '"n": 42' in page.locator("#payload").inner_text()
    assert page.locator("#error").inner_text().startswith("KeyError: 42")
    page.click("#traceback summary")
    assert 'File "h.py", line 3' in page.locator("#traceback pre").inner_text()
    tree = page.locator("#job-tree")
    assert tree.locator("li.current > a").inner_text() == f"#{job_id}"
    tree.locator(f'a[href$="/jobs/{parent}"]').click()
    page.wait_for_url(re.compile(rf"/jobs/{parent}$"))
    assert "西游记" in page.locator("#payload").inner_text()


def test_retry_and_cancel_change_the_row(page, site):
    failed, pending = enqueue(site.store, NewJob(type="b.act"), NewJob(type="b.act"))
    site.store.finish([failed], "failed", error="boom")
    page.goto(f"/jobs/{failed}")
    page.click("#retry")
    page.locator("#notice").wait_for(timeout=WAIT)
    assert status_of(site.store, failed) == "pending"
    assert page.locator("#job-status").inner_text().strip() == "pending"
    page.goto(f"/jobs/{pending}")
    page.click("#cancel")  # asks first: the page's dialog handler accepts
    page.locator("#notice").wait_for(timeout=WAIT)
    assert status_of(site.store, pending) == "cancelled"
    page.goto("/jobs?type=b.act")
    assert page.locator(f'tr[data-id="{pending}"]').get_attribute("data-status") == "cancelled"


def test_a_bulk_retry_says_how_many_then_retries_them(page, site):
    ids = enqueue(site.store, *[NewJob(type="b.bulk") for _ in range(5)])
    site.store.finish(ids[:3], "failed", error="RuntimeError: flaky")
    site.store.finish(ids[3:], "completed")
    page.goto("/jobs?type=b.bulk&status=failed")
    page.click('#bulk button[value="retry"]')
    page.locator("#confirm").wait_for(timeout=WAIT)
    assert page.locator("#confirm h1").inner_text() == "Retry 3 jobs?"
    page.click("#confirm-button")
    page.locator("#notice").wait_for(timeout=WAIT)
    assert [status_of(site.store, i) for i in ids] == ["pending"] * 3 + ["completed"] * 2


def test_live_progress_of_a_running_job_shows_without_a_reload(page, site, tmp_path):
    [job_id] = enqueue(site.store, NewJob(type="diag.sleep", payload={"seconds": 6}))
    with worker(site.store.env(), "--plugin", "diag", log=tmp_path / "worker.log"):
        page.goto(f"/jobs/{job_id}")
        page.evaluate("window.__same_page = true")
        progress = page.locator("#job-progress")
        progress.wait_for(timeout=WAIT)
        first = progress.inner_text()
        expect(progress).not_to_have_text(first, timeout=WAIT)
        later = progress.inner_text()
        assert later != first and page.evaluate("window.__same_page") is True
        assert "slept" in page.locator("#job-message").inner_text()
        # Once the job is done the page reloads by itself to show its result.
        page.locator("#result").wait_for(timeout=WAIT)
        assert '"slept": 6' in page.locator("#result").inner_text()


def test_read_only_mode_hides_and_refuses_every_action(chrome, site):
    [job_id] = enqueue(site.store, NewJob(type="b.ro"))
    site.store.finish([job_id], "failed", error="x")
    for base, credentials in (
        (site.read_only_url, {"username": USER, "password": PASSWORD}),
        (site.url, {"username": VIEWER, "password": VIEWER_PASSWORD}),
    ):
        viewer = new_page(chrome, base, http_credentials=credentials)
        try:
            viewer.goto(f"/jobs/{job_id}")
            assert viewer.locator("#read-only").is_visible()
            assert viewer.locator("#job-actions").count() == 0
            viewer.goto("/jobs")
            assert viewer.locator("#bulk").count() == 0
            token = viewer.locator('input[name="csrf"]').first.get_attribute("value")
            status = viewer.evaluate(
                """async ([id, token]) => (await fetch(`/jobs/${id}/retry`, {method: "POST",
                   headers: {"Content-Type": "application/x-www-form-urlencoded"},
                   body: `csrf=${token}`})).status""",
                [job_id, token],
            )
            assert status == 403
        finally:
            viewer.context.close()
    assert status_of(site.store, job_id) == "failed"


def test_markup_in_a_payload_and_an_error_is_shown_as_text(chrome, site):
    [job_id] = enqueue(
        site.store, NewJob(type="b.xss", payload={"html": XSS_PAYLOAD}, user_id=XSS_ERROR)
    )
    site.store.finish([job_id], "failed", error=f"ValueError: {XSS_ERROR} {XSS_PAYLOAD}")
    dialogs: list[str] = []
    errors: list[str] = []
    page = new_page(chrome, site.url)
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        for path in (f"/jobs/{job_id}", "/jobs?type=b.xss", "/"):
            page.goto(path)
            page.wait_for_timeout(1500)  # a live refresh or two
            assert page.evaluate("typeof window.__pwned") == "undefined", path
        page.goto(f"/jobs/{job_id}")
        assert XSS_PAYLOAD in page.locator("#payload").inner_text()
        assert XSS_ERROR in page.locator("#error").inner_text()
        assert XSS_ERROR in page.locator("#job-user").inner_text()
        assert page.locator("#payload script, #error img, #job-user img").count() == 0
    finally:
        page.context.close()
    assert dialogs == []
    assert not [m for m in errors if "Content Security Policy" in m]


def test_a_post_without_the_csrf_token_is_refused(page, site, tmp_path):
    [job_id] = enqueue(site.store, NewJob(type="b.csrf"))
    page.goto(f"/jobs/{job_id}")
    status = page.evaluate(
        """async (id) => (await fetch(`/jobs/${id}/cancel`, {method: "POST",
           headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: ""})).status""",
        job_id,
    )
    assert status == 403
    # A page of another site posting the form (the browser sends the saved login along).
    (tmp_path / "evil.html").write_text(
        f'<form method="post" action="{site.url}/jobs/{job_id}/cancel">'
        '<input type="hidden" name="csrf" value="guessed">'
        '<button id="go">win a prize</button></form>'
    )
    with file_server(tmp_path) as evil:
        page.goto(f"{evil}/evil.html")
        with page.expect_navigation():
            page.click("#go")
        assert "Refused" in page.content()
    assert status_of(site.store, job_id) == "pending"


def test_the_interface_in_chinese(chrome, site):
    chinese = new_page(chrome, site.url, locale="zh-CN")
    try:
        chinese.goto("/")
        assert chinese.locator("html").get_attribute("lang") == "zh-CN"
        assert chinese.locator("header nav").inner_text().split() == ["概览", "任务"]
        assert chinese.locator("h1").inner_text() == "概览"
        chinese.click('form.lang button[value="en"]')
        chinese.wait_for_load_state()
        assert chinese.locator("h1").inner_text() == "Overview"
        chinese.reload()
        assert chinese.locator("h1").inner_text() == "Overview"  # remembered in a cookie
        chinese.click('form.lang button[value="zh"]')
        chinese.wait_for_load_state()
        assert chinese.locator("h1").inner_text() == "概览"
    finally:
        chinese.context.close()


def test_the_cineqo_views_show_chapters_cast_and_portraits(page, site):
    ids = run(insert_pipeline, site.store, site.media)
    page.goto(f"/jobs/{ids['parent']}")
    view = page.locator("#plugin-view")
    assert view.locator("#stages").is_visible()
    portraits = view.locator("#portraits img")
    assert portraits.count() == 4
    page.wait_for_function(
        "() => [...document.querySelectorAll('#portraits img')].every(i => i.naturalWidth > 0)",
        timeout=WAIT,
    )
    names = view.locator("#cast td.name").all_inner_texts()
    assert names == [name for name, *_ in CAST]
    assert view.locator("#chapters tbody tr").count() == 8
    page.goto(f"/jobs/{ids['split']}")
    assert page.locator("#plugin-view #chapter-count").inner_text() == "8"
