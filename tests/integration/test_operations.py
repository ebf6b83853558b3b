"""Operating workers: heartbeats, `workers`, `healthcheck`, `doctor`, metrics and health URLs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from jr_support import JOBRUNNER


@pytest.fixture
def env(pg_url, pg_schema):
    return dict(os.environ, DATABASE_URL=pg_url, JOBRUNNER_SCHEMA=pg_schema)


def jr(env, *args, check=True):
    out = subprocess.run([JOBRUNNER, *args], env=env, capture_output=True, text=True, timeout=60)
    if check and out.returncode != 0:
        raise AssertionError(f"{args} → {out.returncode}\n{out.stdout}\n{out.stderr}")
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return None, ""


def test_worker_heartbeats_metrics_health_and_doctor(env):
    jr(env, "migrate")
    assert jr(env, "healthcheck", check=False).returncode == 1  # no worker yet
    port = free_port()
    worker = subprocess.Popen(
        [JOBRUNNER, "run", "--plugin", "diag", "--metrics-port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: get(f"http://127.0.0.1:{port}/readyz")[0] == 200)
        listed = wait_until(lambda: json.loads(jr(env, "workers", "--json").stdout))
        assert listed[0]["host"] == socket.gethostname()
        assert listed[0]["pid"] == worker.pid
        assert "diag.noop" in listed[0]["job_types"]
        probe = jr(env, "healthcheck", "--probe")
        assert probe.stdout.startswith("healthy")
        jr(env, "enqueue", "diag.fail", "--payload", '{"permanent": true}', "--wait", check=False)
        status, metrics = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert 'jobrunner_jobs_total{outcome="completed",type="diag.noop"} 1.0' in metrics
        assert 'jobrunner_jobs_total{outcome="failed",type="diag.fail"} 1.0' in metrics
        assert "jobrunner_job_duration_seconds_bucket" in metrics
        status, body = get(f"http://127.0.0.1:{port}/healthz")
        assert (status, json.loads(body)["database"]) == (200, "ok")
        assert jr(env, "healthcheck", "--url", f"http://127.0.0.1:{port}/healthz").returncode == 0
        report = json.loads(jr(env, "doctor", "--json").stdout)
        by_name = {c["name"]: c for c in report}
        assert by_name["database"]["status"] == "ok"
        assert by_name["workers"]["status"] == "ok"
        assert by_name["plugin diag"]["status"] == "ok"
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=30)
    assert worker.returncode == 0
    # A clean stop removes the heartbeat row.
    assert json.loads(jr(env, "workers", "--json").stdout) == []


def test_doctor_fails_on_an_unreachable_database_without_printing_secrets(env):
    env = dict(env, DATABASE_URL="postgresql://app:topsecret-pw@127.0.0.1:1/none")
    out = jr(env, "doctor", check=False)
    assert out.returncode == 1
    assert "[FAIL] database" in out.stdout
    assert "topsecret-pw" not in out.stdout + out.stderr
