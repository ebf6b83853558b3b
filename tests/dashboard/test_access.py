"""Who gets in and who may act: Basic auth, loopback-only without a password, read-only users,
CSRF tokens and the Origin check, security headers, and escaping of every job value."""

from __future__ import annotations

import re

import pytest
from dash_support import (
    HOST,
    PASSWORD,
    USER,
    VIEWER,
    VIEWER_PASSWORD,
    client,
    csrf_of,
    post,
)

from jobrunner import JobStatus
from jobrunner.dashboard import Access
from jobrunner.dashboard._access import same_origin

pytestmark = pytest.mark.anyio

XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


async def test_a_login_is_required(make_app):
    app = make_app()
    async with client(app, auth=None) as c:
        refused = await c.get("/")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith('Basic realm="jobrunner"')
    async with client(app, auth=(USER, "wrong")) as c:
        assert (await c.get("/jobs")).status_code == 401
    async with client(app, auth=("nobody", PASSWORD)) as c:
        assert (await c.get("/jobs")).status_code == 401
    async with client(app) as c:
        assert (await c.get("/")).status_code == 200
    async with client(app, auth=None) as c:  # static files too
        assert (await c.get("/static/dashboard.js")).status_code == 401


async def test_without_a_password_only_loopback_clients_get_in_and_the_page_says_so(make_app):
    app = make_app(access=Access())
    async with client(app, auth=None, peer="10.1.2.3") as c:
        refused = await c.get("/")
    assert refused.status_code == 403
    assert "JOBRUNNER_DASHBOARD_PASSWORD" in refused.text
    async with client(app, auth=None, peer="127.0.0.1") as c:
        page = await c.get("/")
    assert page.status_code == 200
    assert 'id="no-password"' in page.text
    async with client(app, auth=None, peer="::1") as c:
        assert (await c.get("/jobs")).status_code == 200


async def test_the_read_only_user_sees_no_action_and_every_action_is_refused(store, make_app):
    async with store.runner() as runner:
        job_id = await runner.enqueue("t.a")
    store.finish([job_id], "failed", error="x")
    app = make_app()
    async with client(app, auth=(VIEWER, VIEWER_PASSWORD)) as c:
        page = await c.get(f"/jobs/{job_id}")
        assert 'id="read-only"' in page.text
        assert 'id="retry"' not in page.text and 'id="delete"' not in page.text
        jobs = await c.get("/jobs")
        assert 'id="bulk"' not in jobs.text
        overview = await c.get("/")
        assert 'id="controls"' not in overview.text
        token = csrf_of(page.text)
        for path, data in [
            (f"/jobs/{job_id}/retry", {}),
            (f"/jobs/{job_id}/delete", {}),
            ("/jobs/bulk", {"action": "retry"}),
            ("/jobs/bulk/apply", {"action": "delete", "max_id": job_id}),
            ("/pause", {"type": "t.a"}),
            ("/limits/set", {"type": "t.a", "concurrency": "1"}),
        ]:
            answer = await c.post(
                path, data={"csrf": token, **data}, headers={"origin": f"http://{HOST}"}
            )
            assert answer.status_code == 403, path
    async with store.runner() as runner:
        assert (await runner.get_job(job_id)).status is JobStatus.FAILED
        assert await runner.limits() == []


async def test_read_only_mode_makes_the_admin_a_viewer_too(store, make_app):
    async with store.runner() as runner:
        job_id = await runner.enqueue("t.a")
    app = make_app(read_only=True)
    async with client(app) as c:
        page = await c.get(f"/jobs/{job_id}")
        assert 'id="read-only"' in page.text and 'id="cancel"' not in page.text
        assert (await post(c, f"/jobs/{job_id}/cancel", {})).status_code == 403
    async with store.runner() as runner:
        assert (await runner.get_job(job_id)).status is JobStatus.PENDING


async def test_a_post_without_the_csrf_token_or_from_another_site_is_refused(store, make_app):
    async with store.runner() as runner:
        job_id = await runner.enqueue("t.a")
    app = make_app()
    origin = {"origin": f"http://{HOST}"}
    async with client(app) as c:
        token = csrf_of((await c.get("/jobs")).text)
        no_token = await c.post(f"/jobs/{job_id}/cancel", data={}, headers=origin)
        wrong = await c.post(f"/jobs/{job_id}/cancel", data={"csrf": "0" * 64}, headers=origin)
        elsewhere = await c.post(
            f"/jobs/{job_id}/cancel",
            data={"csrf": token},
            headers={"origin": "https://evil.example"},
        )
        null_origin = await c.post(
            f"/jobs/{job_id}/cancel", data={"csrf": token}, headers={"origin": "null"}
        )
        assert [r.status_code for r in (no_token, wrong, elsewhere, null_origin)] == [403] * 4
        assert "CSRF" in no_token.text
        async with store.runner() as runner:
            assert (await runner.get_job(job_id)).status is JobStatus.PENDING
        done = await c.post(f"/jobs/{job_id}/cancel", data={"csrf": token}, headers=origin)
    assert done.status_code == 303
    async with store.runner() as runner:
        assert (await runner.get_job(job_id)).status is JobStatus.CANCELLED


async def test_a_token_belongs_to_its_user():
    one = Access(password="pw", readonly_user="v", readonly_password="pw2")
    admin, viewer = one.identify(_basic("admin", "pw")), one.identify(_basic("v", "pw2"))
    assert admin and viewer and admin.can_act and not viewer.can_act
    assert one.csrf_valid(admin, one.csrf_token(admin))
    assert not one.csrf_valid(admin, one.csrf_token(viewer))
    other = Access(password="pw")  # another secret: another token
    assert not other.csrf_valid(admin, one.csrf_token(admin))
    same = Access.from_env(
        {"JOBRUNNER_DASHBOARD_PASSWORD": "pw", "JOBRUNNER_DASHBOARD_SECRET": "s"}
    )
    again = Access.from_env(
        {"JOBRUNNER_DASHBOARD_PASSWORD": "pw", "JOBRUNNER_DASHBOARD_SECRET": "s"}
    )
    assert same.csrf_token(admin) == again.csrf_token(admin)  # replicas agree


def _basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_the_origin_check():
    host = {"host": "dash.example:8080"}
    assert same_origin({**host, "origin": "http://dash.example:8080"})
    assert same_origin({**host, "origin": "https://dash.example:8080"})
    assert not same_origin({**host, "origin": "http://dash.example.evil:8080"})
    assert not same_origin({**host, "origin": "null"})
    assert same_origin({**host, "referer": "http://dash.example:8080/jobs"})
    assert not same_origin({**host, "referer": "http://evil.example/"})
    assert same_origin(
        {"host": "internal:8080", "origin": "https://ops.example"},
        frozenset({"https://ops.example"}),
    )


async def test_every_response_carries_a_strict_policy_and_pages_have_no_inline_script(make_app):
    app = make_app()
    async with client(app) as c:
        for path in ("/", "/jobs", "/overview/live", "/static/dashboard.css"):
            answer = await c.get(path)
            csp = answer.headers["content-security-policy"]
            assert "script-src 'self';" in csp and "default-src 'none'" in csp
            assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["referrer-policy"] == "same-origin"
            scripts = re.findall(r"<script[^>]*>", answer.text)
            assert all(" src=" in tag for tag in scripts), scripts
            assert not re.search(r"\son[a-z]+=", answer.text), "no inline event handler"


async def test_job_values_are_shown_as_text(store, make_app):
    async with store.runner() as runner:
        parent = await runner.enqueue("t.parent")
        job_id = await runner.enqueue(
            f"t.{XSS}", {"html": XSS}, user_id=f"u{XSS}", queue=f"q{XSS}", parent_id=parent
        )
    store.finish([job_id], "failed", error=f"ValueError: {XSS}")
    store.sql(
        "UPDATE {job} SET result = ? WHERE id = ?",
        '{"r": "' + XSS.replace('"', '\\"') + '"}',
        job_id,
    )
    app = make_app()
    async with client(app) as c:
        pages = [
            await c.get(f"/jobs/{job_id}"),
            await c.get(f"/jobs/{job_id}/live"),
            await c.get(f"/jobs/{parent}"),
            await c.get("/jobs"),
            await c.get("/jobs", params={"type": f"t.{XSS}"}),
            await c.get("/"),
        ]
    for page in pages:
        assert page.status_code == 200
        assert "<script>window" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in pages[0].text
    assert "&lt;img src=x onerror=" in pages[3].text


async def test_secrets_in_errors_and_messages_are_redacted(store, make_app):
    async with store.runner() as runner:
        job_id = await runner.enqueue("t.a", {"db": "postgresql://app:hunter2secret@db/app"})
    store.start([job_id], progress=0.5, message="password=hunter2secret connecting")
    store.sql(
        "UPDATE {job} SET error = ? WHERE id = ?",
        "OperationalError: postgresql://app:hunter2secret@db/app refused",
        job_id,
    )
    app = make_app()
    async with client(app) as c:
        for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/live", "/jobs"):
            page = await c.get(path)
            assert "hunter2secret" not in page.text, path
