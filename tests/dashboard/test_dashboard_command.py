"""`jobrunner dashboard`: serves the app; refuses a public address without a password; and
`jobrunner --help` imports no web framework."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
from browser_support import dashboard, run
from dash_support import _sqlite_store

from jr_support import JOBRUNNER

NO_PASSWORD = {k: v for k, v in os.environ.items() if not k.startswith("JOBRUNNER_DASHBOARD_")}


def test_help_imports_no_web_framework():
    code = (
        "import sys\n"
        "from jobrunner._cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = {'starlette', 'jinja2', 'uvicorn', 'jobrunner.dashboard'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "dashboard" in done.stdout  # the command is listed
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_public_address_without_a_password_is_refused(tmp_path):
    env = {**NO_PASSWORD, "DATABASE_URL": f"sqlite:///{tmp_path / 'jobs.db'}"}
    done = subprocess.run(
        [JOBRUNNER, "dashboard", "--host", "0.0.0.0", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "without a password" in done.stderr and "JOBRUNNER_DASHBOARD_PASSWORD" in done.stderr


def test_without_a_password_it_serves_loopback_and_says_so(tmp_path):
    store = _sqlite_store(tmp_path / "jobs.db")

    async def migrate() -> None:
        async with store.runner(auto_migrate=True):
            pass

    run(migrate)
    log = tmp_path / "dash.log"
    env = {
        **store.env(),
        "JOBRUNNER_DASHBOARD_PASSWORD": "",  # set but empty: no password
        "JOBRUNNER_DASHBOARD_READONLY_PASSWORD": "",
    }
    with dashboard(env, log=log) as url:
        page = httpx.get(url + "/", timeout=10)
    assert page.status_code == 200 and 'id="no-password"' in page.text
    assert "no login, loopback clients only" in log.read_text()
    assert "dashboard on http://127.0.0.1:" in log.read_text()
