"""Behind a real PgBouncer (Debian's, started here on a free port) in transaction and session
pooling: two workers and every command work, with no setting but polling for the workers.

A pool of two server connections makes the CLI's short-lived clients share them, which is
what made prepared statements collide ("prepared statement "_pg3_0" already exists").
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from jr_support import JOBRUNNER

pytestmark = pytest.mark.timeout(240)


def _binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(p, os.X_OK)), None
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=["transaction", "session"])
def bouncer(request, pg_url: str) -> Iterator[str]:
    """A PgBouncer in front of the test database; yields its URL."""
    binary = _binary()
    if binary is None:
        message = "pgbouncer is not installed (apt-get install pgbouncer)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message + " (CI=true: failing, not skipping)")
        pytest.skip(message)
    upstream = psycopg.conninfo.conninfo_to_dict(pg_url)
    port = _free_port()
    # Not under tmp_path: pgbouncer runs as postgres, who cannot enter pytest's private dirs.
    home = Path(tempfile.mkdtemp(prefix="jobrunner-pgbouncer-"))
    (home / "users.txt").write_text('"postgres" ""\n')
    (home / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"{upstream['dbname']} = host={upstream.get('host', '127.0.0.1')} "
        f"port={upstream.get('port', 5432)} dbname={upstream['dbname']}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\n"
        f"auth_type = trust\nauth_file = {home / 'users.txt'}\n"
        f"pool_mode = {request.param}\n"
        # Transaction pooling: two server connections shared by every client. Session
        # pooling pins one per client connection, so it needs one for each.
        f"default_pool_size = {2 if request.param == 'transaction' else 40}\n"
        "max_client_conn = 200\n"
        f"logfile = {home / 'pgbouncer.log'}\npidfile = {home / 'pgbouncer.pid'}\n"
    )
    cmd = [binary, str(home / "pgbouncer.ini")]
    if os.geteuid() == 0:  # it refuses to run as root
        shutil.chown(home, "postgres")
        for path in home.iterdir():
            shutil.chown(path, "postgres")
        cmd = [binary, "-u", "postgres", str(home / "pgbouncer.ini")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"postgresql://postgres@127.0.0.1:{port}/{upstream['dbname']}"
    deadline = time.monotonic() + 20
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2, prepare_threshold=None) as conn:
                conn.execute("SELECT 1")
            break
        except psycopg.Error:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log = (
                    (home / "pgbouncer.log").read_text()
                    if (home / "pgbouncer.log").exists()
                    else ""
                )
                pytest.fail(f"pgbouncer did not start: {proc.stderr.read()!r} {log[-2000:]}")
            time.sleep(0.2)
    yield url
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(home, ignore_errors=True)


def _env(url: str, schema: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBRUNNER_")}
    env.update(DATABASE_URL=url, JOBRUNNER_SCHEMA=schema, JOBRUNNER_LOG_LEVEL="warning", **extra)
    return env


def _jr(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [JOBRUNNER, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"jobrunner {' '.join(args)}: {done.stdout}{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return done


def test_workers_and_every_command_work_through_pgbouncer(bouncer: str, pg_url: str, tmp_path):
    schema = f"t_{uuid.uuid4().hex[:12]}"
    env = _env(bouncer, schema)
    try:
        _jr(env, "migrate")
        ids = [int(_jr(env, "enqueue", "diag.noop").stdout) for _ in range(6)]
        ids.append(int(_jr(env, "enqueue", "diag.sleep", "--payload", '{"seconds": 30}').stdout))
        workers = [
            subprocess.Popen(
                [JOBRUNNER, "run", "--plugin", "diag", "--no-listen", "--poll-interval", "0.2"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=(tmp_path / f"w{i}.err").open("w"),
            )
            for i in range(2)
        ]
        try:
            waited = _jr(env, "enqueue", "diag.sleep", "--payload", '{"seconds": 0.2}', "--wait")
            assert '"slept": 0.2' in waited.stdout
            _jr(env, "status")
            _jr(env, "status", "--json")
            assert str(ids[0]) in _jr(env, "jobs", "list").stdout
            assert "completed" in _jr(env, "jobs", "show", str(ids[0])).stdout
            _jr(env, "jobs", "cancel", str(ids[-1]))
            _jr(env, "jobs", "retry", str(ids[0]))
            _jr(env, "workers")
            _jr(env, "prune", "--older-than", "7d")
            _jr(env, "healthcheck")
            _jr(env, "doctor")
            code = (
                "import anyio, sys\n"
                "from jobrunner import Runner\n"
                "async def main():\n"
                "    async with Runner(worker=False) as r:\n"
                "        job_id = await r.enqueue('diag.noop')\n"
                "        job = await r.wait_for(job_id, timeout=30)\n"
                "        print(job.status)\n"
                "anyio.run(main)\n"
            )
            embedded = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
            )
            assert embedded.stdout.strip() == "completed", embedded.stderr
            with psycopg.connect(pg_url) as conn:
                deadline = time.monotonic() + 30
                while True:
                    rows = dict(
                        conn.execute(
                            f'SELECT status, count(*) FROM "{schema}".job GROUP BY status'
                        ).fetchall()
                    )
                    if rows.get("pending", 0) == 0 and rows.get("running", 0) == 0:
                        break
                    assert time.monotonic() < deadline, rows
                    time.sleep(0.2)
            assert rows == {"completed": 8, "cancelled": 1}, rows
        finally:
            for w in workers:
                w.send_signal(signal.SIGTERM)
            for w in workers:
                assert w.wait(timeout=60) == 0
        for i in range(2):
            err = (tmp_path / f"w{i}.err").read_text()
            assert "Traceback" not in err and "error" not in err.lower(), err
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_a_worker_can_listen_past_the_pooler(bouncer: str, pg_url: str, tmp_path):
    """With --listen-url pointing at the database itself, a worker that reaches it through
    PgBouncer still starts new jobs on NOTIFY, not at its next poll."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    env = _env(bouncer, schema, JOBRUNNER_LISTEN_URL=pg_url, JOBRUNNER_POLL_INTERVAL="1h")
    try:
        _jr(env, "migrate")
        worker = subprocess.Popen(
            [JOBRUNNER, "run", "--plugin", "diag"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "w.err").open("w"),
        )
        try:
            time.sleep(2)  # listening
            _jr(env, "enqueue", "diag.noop", "--wait")  # polling alone: not within the hour
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=60) == 0
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
