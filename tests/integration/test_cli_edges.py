"""The command line's rough edges, as users met them: each ends in one readable line and the
documented exit code (docs/cli.md), never a traceback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from jr_support import JOBRUNNER


@pytest.fixture
def env(pg_url, pg_schema):
    env = dict(os.environ, DATABASE_URL=pg_url, JOBRUNNER_SCHEMA=pg_schema)
    for name in ("JOBRUNNER_PLUGINS", "JOBRUNNER_CONCURRENCY", "JOBRUNNER_LOG_LEVEL"):
        env.pop(name, None)
    return env


def jr(env, *args, check=True, timeout=60, **kwargs):
    out = subprocess.run(
        [JOBRUNNER, *args], env=env, capture_output=True, text=True, timeout=timeout, **kwargs
    )
    if check and out.returncode != 0:
        raise AssertionError(f"jobrunner {' '.join(args)} → {out.returncode}\n{out.stderr}")
    return out


def no_traceback(out: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in out.stderr, out.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_bad_flag_value_names_the_flag_not_the_variable(env):
    out = jr({**env, "JOBRUNNER_CONCURRENCY": "7"}, "run", "--concurrency", "abc", check=False)
    assert out.returncode == 2
    assert out.stderr.splitlines()[-1] == (
        "jobrunner run: error: argument --concurrency: not a whole number: 'abc'"
    )
    assert "JOBRUNNER_CONCURRENCY" not in out.stderr.splitlines()[-1]
    from_env = jr({**env, "JOBRUNNER_CONCURRENCY": "abc"}, "run", "-p", "diag", check=False)
    assert from_env.returncode == 2
    assert from_env.stderr == "jobrunner: error: JOBRUNNER_CONCURRENCY: not a whole number: 'abc'\n"


@pytest.mark.parametrize("how", ["flag", "env"])
def test_an_unknown_log_level_is_a_usage_error(env, how):
    if how == "flag":
        out = jr(env, "run", "-p", "diag", "--log-level", "verbose", check=False)
    else:
        out = jr({**env, "JOBRUNNER_LOG_LEVEL": "verbose"}, "run", "-p", "diag", check=False)
    no_traceback(out)
    assert out.returncode == 2
    assert "not one of debug, info, warning, error: 'verbose'" in out.stderr.splitlines()[-1]


def test_jobs_list_refuses_an_unknown_status(env):
    out = jr(env, "jobs", "list", "--status", "bogus", check=False)
    assert out.returncode == 2
    assert "invalid choice: 'bogus'" in out.stderr
    assert "'pending', 'running', 'completed', 'failed', 'cancelled'" in out.stderr


def test_a_job_that_is_not_there_exits_1(env):
    jr(env, "migrate")
    out = jr(env, "jobs", "show", "999999", check=False)
    assert (out.returncode, out.stderr) == (1, "jobrunner: error: no job with id 999999\n")


def test_migrate_prune_and_healthcheck_speak_json(env):
    migrated = json.loads(jr(env, "migrate", "--json").stdout)
    assert migrated["applied"][0] == "0001_initial"
    assert json.loads(jr(env, "migrate", "--json").stdout) == {"applied": []}
    assert json.loads(jr(env, "prune", "--older-than", "7d", "--json").stdout) == {
        "deleted": 0,
        "older_than_seconds": 604800.0,
    }
    health = jr(env, "healthcheck", "--json", check=False)
    assert health.returncode == 1
    verdict = json.loads(health.stdout)
    assert (verdict["healthy"], verdict["workers"]) == (False, 0)
    assert verdict["message"].startswith("no worker heartbeat from ")


def test_the_metrics_port_comes_from_the_environment_too(env):
    """Instances of a templated systemd unit get their ports from per-instance env files."""
    jr(env, "migrate")
    port = free_port()
    worker = subprocess.Popen(
        [JOBRUNNER, "run", "--plugin", "diag"],
        env={**env, "JOBRUNNER_METRICS_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/readyz"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the metrics server never answered"
                time.sleep(0.1)
        verdict = json.loads(jr(env, "healthcheck", "--url", url, "--json").stdout)
        assert verdict["healthy"] is True
        assert verdict["endpoint"]["database"] == "ok"
        assert json.loads(jr(env, "healthcheck", "--json").stdout)["workers"] == 1
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err


def test_enqueue_wait_says_at_once_that_no_worker_runs_the_type_and_times_out(env):
    jr(env, "migrate")
    out = jr(env, "enqueue", "diag.noop", "--wait", "--timeout", "1s", check=False)
    job_id = int(out.stdout)
    assert out.returncode == 1
    lines = out.stderr.splitlines()
    assert lines[0] == (
        "jobrunner: warning: no live worker runs diag.noop jobs; waiting for one to start "
        "(--timeout to give up)"
    )
    assert lines[-1] == f"job {job_id} is not done after 1s; it stays in the queue"
    shown = json.loads(jr(env, "jobs", "show", str(job_id), "--json").stdout)
    assert shown["status"] == "pending"
    bad = jr(env, "enqueue", "diag.noop", "--wait", "--timeout", "soon", check=False)
    assert bad.returncode == 2
    assert "argument --timeout: not a duration: 'soon'" in bad.stderr


def test_a_closed_stdout_ends_the_command_quietly(env):
    """`jobrunner jobs show 2 | head -1`: the reader goes away, the command ends like a Unix
    tool killed by SIGPIPE, without a traceback."""
    jr(env, "migrate")
    job_id = jr(env, "enqueue", "diag.noop").stdout.strip()
    for args in (["jobs", "show", job_id], ["plugins"], ["jobs", "list"]):
        read, write = os.pipe()
        os.close(read)  # nobody will read: the first write fails
        try:
            out = subprocess.run(
                [JOBRUNNER, *args], env=env, stdout=write, stderr=subprocess.PIPE, timeout=60
            )
        finally:
            os.close(write)
        assert (out.returncode, out.stderr) == (141, b""), args


def test_completion_scripts_load_and_complete(tmp_path):
    for shell in ("bash", "zsh", "fish"):
        script = jr(os.environ, "completion", shell).stdout
        assert "jobrunner" in script and "_ARGCOMPLETE" in script, shell
    loaded = subprocess.run(
        ["bash", "-c", f'eval "$({JOBRUNNER} completion bash)" && complete -p jobrunner'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "_python_argcomplete jobrunner" in loaded.stdout

    def complete(line: str) -> set[str]:
        answer = tmp_path / "completions"
        env = {
            **os.environ,
            "_ARGCOMPLETE": "1",
            "_ARGCOMPLETE_IFS": "\n",
            "COMP_LINE": line,
            "COMP_POINT": str(len(line)),
            "_ARGCOMPLETE_STDOUT_FILENAME": str(answer),
        }
        subprocess.run([JOBRUNNER], env=env, check=True, timeout=60)
        return {word.strip() for word in answer.read_text().splitlines()}

    assert {"run", "jobs", "enqueue", "completion"} <= complete("jobrunner ")
    assert {"show", "list"} <= complete("jobrunner jobs ")
    assert "diag" in complete("jobrunner run --plugin ")
    assert "--log-level" in complete("jobrunner run --log-l")
