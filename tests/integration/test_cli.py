"""The `jobrunner` command against a real PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from jr_support import JOBRUNNER


@pytest.fixture
def cli_env(pg_url, pg_schema):
    env = dict(os.environ, DATABASE_URL=pg_url, JOBRUNNER_SCHEMA=pg_schema)
    env.pop("JOBRUNNER_PLUGINS", None)
    return env


def jr(env, *args, check=True, timeout=60):
    out = subprocess.run(
        [JOBRUNNER, *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and out.returncode != 0:
        raise AssertionError(f"jobrunner {' '.join(args)} → {out.returncode}\n{out.stderr}")
    return out


def test_enqueue_prints_only_the_id_and_run_burst_completes_it(cli_env):
    jr(cli_env, "migrate")
    out = jr(cli_env, "enqueue", "diag.sleep", "--payload", '{"seconds": 0.1}', "--user-id", "u1")
    job_id = int(out.stdout)
    assert out.stdout == f"{job_id}\n"
    jr(cli_env, "run", "--plugin", "diag", "--burst")
    shown = json.loads(jr(cli_env, "jobs", "show", str(job_id), "--json").stdout)
    assert shown["status"] == "completed"
    assert shown["result"] == {"slept": 0.1}
    assert (shown["attempts"], shown["user_id"]) == (1, "u1")


def test_enqueue_wait_follows_the_job_and_reports_failure(cli_env):
    jr(cli_env, "migrate")
    worker = subprocess.Popen(
        [JOBRUNNER, "run", "--plugin", "diag", "--poll-interval", "0.2"],
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ok = jr(cli_env, "enqueue", "diag.sleep", "--payload", '{"seconds": 0.3}', "--wait")
        lines = ok.stdout.splitlines()
        assert int(lines[0]) > 0
        assert json.loads("\n".join(lines[1:])) == {"slept": 0.3}
        assert "completed" in ok.stderr
        bad = jr(
            cli_env,
            "enqueue",
            "diag.fail",
            "--payload",
            '{"message": "nope", "permanent": true}',
            "--wait",
            check=False,
        )
        assert bad.returncode == 1
        assert "failed: PermanentFailure: nope" in bad.stderr
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err


def test_status_jobs_list_retry_and_cancel(cli_env):
    jr(cli_env, "migrate")
    a = int(jr(cli_env, "enqueue", "diag.noop").stdout)
    b = int(jr(cli_env, "enqueue", "diag.noop", "--delay", "1h").stdout)
    assert "is cancelled" in jr(cli_env, "jobs", "cancel", str(b)).stdout
    status = json.loads(jr(cli_env, "status", "--json").stdout)
    counts = {(s["type"], s["status"]): s["count"] for s in status}
    assert counts == {("diag.noop", "pending"): 1, ("diag.noop", "cancelled"): 1}
    listed = json.loads(jr(cli_env, "jobs", "list", "--status", "cancelled", "--json").stdout)
    assert [j["id"] for j in listed] == [b]
    assert "is pending" in jr(cli_env, "jobs", "retry", str(b)).stdout
    assert "diag.noop" in jr(cli_env, "status").stdout
    assert a != b


def test_errors_are_one_readable_line(cli_env):
    jr(cli_env, "migrate")
    bad_json = jr(cli_env, "enqueue", "diag.noop", "--payload", "{nope", check=False)
    assert bad_json.returncode == 2
    assert bad_json.stderr.startswith("jobrunner: error: --payload is not valid JSON")
    missing = jr(cli_env, "jobs", "show", "999999", check=False)
    assert (missing.returncode, missing.stderr) == (1, "jobrunner: error: no job with id 999999\n")
    unknown = jr(cli_env, "run", "--plugin", "nope", check=False)
    assert unknown.returncode == 2
    assert "no plugin named 'nope' is installed (installed: " in unknown.stderr
    assert "diag" in unknown.stderr
    scheme = jr(cli_env, "status", "--database-url", "mysql://u:pw@h/db", check=False)
    assert "unsupported database URL 'mysql://u:***@h/db'" in scheme.stderr
    assert "pw@" not in scheme.stderr


def test_broken_plugin_stops_start_up_naming_its_distribution(cli_env, plugin_env):
    env = {
        **plugin_env("broken-dist", "broken", "broken_mod", "import not_a_module\n"),
        **{k: v for k, v in cli_env.items() if k.startswith(("DATABASE", "JOBRUNNER"))},
    }
    out = jr(env, "run", "--plugin", "broken", check=False)
    assert out.returncode == 1
    assert "plugin 'broken' from broken-dist 1.0 failed to load" in out.stderr
    assert "No module named 'not_a_module'" in out.stderr
    listing = jr(env, "plugins")
    assert "BROKEN" in listing.stdout and "diag.noop" in listing.stdout


def test_sigterm_drains_running_jobs_and_exits_zero(cli_env):
    jr(cli_env, "migrate")
    ids = [
        int(jr(cli_env, "enqueue", "diag.sleep", "--payload", '{"seconds": 1}').stdout)
        for _ in range(3)
    ]
    long = int(jr(cli_env, "enqueue", "diag.sleep", "--payload", '{"seconds": 60}').stdout)
    worker = subprocess.Popen(
        [JOBRUNNER, "run", "--plugin", "diag", "--shutdown-timeout", "3"],
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 20
    while time.time() < deadline:
        status = json.loads(jr(cli_env, "status", "--json").stdout)
        if sum(s["count"] for s in status if s["status"] == "running") == 4:
            break
        time.sleep(0.1)
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert "stopping gracefully" in err
    for job_id in ids:
        assert json.loads(jr(cli_env, "jobs", "show", str(job_id), "--json").stdout)["status"] == (
            "completed"
        )
    handed_back = json.loads(jr(cli_env, "jobs", "show", str(long), "--json").stdout)
    assert (handed_back["status"], handed_back["attempts"]) == ("pending", 0)


def test_psycopgs_pure_python_implementation_is_named_with_its_fix(cli_env):
    """A plain `pip install jobrunner` takes psycopg without a compiled part: the worker then
    costs about three times the CPU per job, so `run` and `doctor` say so and name the fix;
    with the compiled implementation neither says a word."""
    jr(cli_env, "migrate")
    slow = dict(cli_env, PSYCOPG_IMPL="python")  # psycopg's own switch (needs the system libpq)
    ran = jr(slow, "run", "--plugin", "diag", "--burst")
    assert "pure-Python implementation" in ran.stderr
    assert "jobrunner[binary]" in ran.stderr
    doctor = jr(slow, "doctor", "--json", check=False)
    [driver] = [c for c in json.loads(doctor.stdout) if c["name"] == "driver"]
    assert driver["status"] == "warn" and "jobrunner[binary]" in driver["fix"]
    fast = jr(cli_env, "run", "--plugin", "diag", "--burst")
    assert "pure-Python" not in fast.stderr
    checks = json.loads(jr(cli_env, "doctor", "--json", check=False).stdout)
    assert "driver" not in {c["name"] for c in checks}


def test_limits_pause_and_resume_from_the_command_line(cli_env):
    jr(cli_env, "migrate")
    jr(cli_env, "limits", "set", "diag.noop", "--concurrency", "2", "--rate", "5/1s")
    jr(cli_env, "limits", "set", "diag.noop", "--per-user", "1")  # adds to what was set
    [row] = json.loads(jr(cli_env, "limits", "show", "--json").stdout)["types"]
    assert row["type"] == "diag.noop"
    assert row["effective"] == {"concurrency": 2, "per_user": 1, "rate": "5/1s"}
    assert (row["paused"], row["fair"]) == (False, True)

    assert jr(cli_env, "pause", "diag.noop").stdout == "paused: diag.noop\n"
    jr(cli_env, "pause", "--queue", "slow")
    shown = json.loads(jr(cli_env, "limits", "show", "--json").stdout)
    assert shown["types"][0]["paused"] is True and "slow" in shown["paused_queues"]
    status = jr(cli_env, "status").stdout
    assert "diag.noop: paused" in status and "queue slow: paused" in status
    job_id = int(jr(cli_env, "enqueue", "diag.noop").stdout)
    jr(cli_env, "run", "--plugin", "diag", "--burst")  # a paused type's job stays pending
    assert json.loads(jr(cli_env, "jobs", "show", str(job_id), "--json").stdout)["status"] == (
        "pending"
    )

    jr(cli_env, "resume", "diag.noop")
    jr(cli_env, "resume", "--queue", "slow")
    jr(cli_env, "limits", "clear", "diag.noop")
    shown = json.loads(jr(cli_env, "limits", "show", "--json").stdout)
    assert not shown["paused_queues"]
    assert all(not t["paused"] and t["configured"]["concurrency"] is None for t in shown["types"])
    jr(cli_env, "run", "--plugin", "diag", "--burst")
    assert json.loads(jr(cli_env, "jobs", "show", str(job_id), "--json").stdout)["status"] == (
        "completed"
    )
