"""Secrets never leak: a worker runs with known secret values through failures, and every byte
it and the CLI produce is searched for them.

The database password (with URL-special characters) belongs to a real role of the private
cluster, so the worker logs in with it; the API keys are marker values.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import attrs
import pytest
from rel_cluster import Cluster, free_port
from rel_support import jr, sql, start_worker, wait_until, worker_env

from jr_support import JOBRUNNER

JOB_TYPES = ("secret.raise", "secret.chain", "secret.log")


@attrs.frozen
class Secrets:
    password: str
    values: dict[str, str]  # env name -> value

    def url(self, cluster: Cluster) -> str:
        password = quote(self.password, safe="")
        return f"postgresql://jr_secret:{password}@127.0.0.1:{cluster.port}/postgres"

    def needles(self) -> dict[str, str]:
        """Every form a secret could take in output."""
        found = {name: value for name, value in self.values.items() if name != "DATABASE_URL"}
        found["password"] = self.password
        found["password (URL-encoded)"] = quote(self.password, safe="")
        return found


@pytest.fixture
def secrets(cluster: Cluster, cluster_schema: str) -> Iterator[Secrets]:
    marker = uuid.uuid4().hex[:12]
    password = f"Pw/{marker}@x:y%z"
    made = Secrets(
        password=password,
        values={
            "OPENAI_API_KEY": f"sk-proj-openai{marker}",
            "FAL_KEY": f"falid{marker}:falsecret{marker}",
            "R2_SECRET_ACCESS_KEY": f"r2secret{marker}",
            "R2_ACCESS_KEY_ID": f"r2keyid{marker}",
        },
    )
    admin = cluster.url()
    sql(admin, "DROP ROLE IF EXISTS jr_secret")
    sql(admin, f"CREATE ROLE jr_secret LOGIN PASSWORD '{password}'")
    sql(admin, "GRANT CREATE ON DATABASE postgres TO jr_secret")
    sql(admin, f'CREATE SCHEMA "{cluster_schema}" AUTHORIZATION jr_secret')
    yield made
    sql(admin, f'DROP SCHEMA IF EXISTS "{cluster_schema}" CASCADE')
    sql(admin, "REVOKE CREATE ON DATABASE postgres FROM jr_secret")
    sql(admin, "DROP ROLE IF EXISTS jr_secret")


def _env(site: Path, secrets: Secrets, url: str, schema: str, **extra: str) -> dict[str, str]:
    return worker_env(site, url, schema, **secrets.values, **extra)


def _run_jobs(
    env: dict[str, str], logs: Path, name: str, url: str, schema: str, *flags: str
) -> str:
    """Enqueue one job of each type, run a worker until they are final, stop it; its stderr."""
    for job_type in JOB_TYPES:
        assert jr(env, "enqueue", job_type).returncode == 0
    worker = start_worker(env, logs, name, *flags, plugin="relsecret")
    query = f'SELECT count(*) FROM "{schema}".job WHERE status IN (%s, %s)'
    wait_until(lambda: sql(url, query, ["pending", "running"]) == [(0,)], 30, "jobs to end")
    assert worker.stop(timeout=30) == 0, worker.stderr()
    return worker.stdout() + worker.stderr()


def _briefly(env: dict[str, str], logs: Path, name: str) -> str:
    """A worker that cannot reach its database, stopped after its first complaints."""
    worker = start_worker(env, logs, name, "--error-retry-delay", "1", plugin="relsecret")
    wait_until(lambda: "unavailable" in worker.stderr() or not worker.alive(), 30, "a complaint")
    worker.stop(timeout=30)
    return worker.stdout() + worker.stderr()


def _outputs(env: dict[str, str], logs: Path, url: str, admin: str, schema: str) -> dict[str, str]:
    out = {"worker text/debug": _run_jobs(env, logs, "text", url, schema, "--log-level", "debug")}
    json_env = {**env, "JOBRUNNER_LOG_FORMAT": "json"}
    out["worker json"] = _run_jobs(json_env, logs, "json", url, schema)
    ids = [str(i) for (i,) in sql(admin, f'SELECT id FROM "{schema}".job ORDER BY id')]
    commands = [("jobs", "show", i) for i in ids] + [("jobs", "show", i, "--json") for i in ids]
    commands += [
        ("jobs", "list"),
        ("jobs", "list", "--json"),
        ("status",),
        ("status", "--json"),
        ("workers",),
        ("doctor",),
        ("doctor", "--json"),
        ("plugins", "--json"),
    ]
    running = {" ".join(args): _popen(env, *args) for args in commands}  # all at once
    out |= {name: "".join(proc.communicate(timeout=60)) for name, proc in running.items()}
    for table in ("job", "job_workers"):
        rows = sql(admin, f'SELECT row_to_json(t)::text FROM "{schema}"."{table}" AS t')
        out[f"{table} rows"] = "\n".join(r for (r,) in rows)
    return out


def _failure_outputs(
    env: dict[str, str], logs: Path, secrets: Secrets, port: int
) -> dict[str, str]:
    """Commands and workers against bad URLs, all at once (each waits out a pool timeout)."""
    pw = quote(secrets.password, safe="")
    urls = {
        "unreachable": f"postgresql://jr_secret:{pw}@127.0.0.1:{free_port()}/postgres",
        "wrong password": f"postgresql://jr_secret:{pw}X@127.0.0.1:{port}/postgres",
        "bad port": f"postgresql://jr_secret:{pw}@127.0.0.1:notaport/postgres",
        "unencoded password": f"postgresql://jr_secret:{secrets.password}@127.0.0.1:{port}/postgres",
        "key=value form": f"host=127.0.0.1 port={port} user=jr_secret password={pw}",
    }
    commands = {}
    workers = {}
    for n, (name, url) in enumerate(urls.items()):
        bad = {**env, "DATABASE_URL": url}
        if n % 2:
            bad["JOBRUNNER_LOG_FORMAT"] = "json"
        commands[f"{name}: status"] = _popen(bad, "status")
        workers[f"{name}: run"] = start_worker(
            bad, logs, f"bad{n}", "--error-retry-delay", "1", plugin="relsecret"
        )
    commands["unreachable: doctor"] = _popen({**env, "DATABASE_URL": urls["unreachable"]}, "doctor")
    out = {name: "".join(proc.communicate(timeout=60)) for name, proc in commands.items()}
    for name, worker in workers.items():
        wait_until(lambda w=worker: "unavailable" in w.stderr() or not w.alive(), 30, name)
        worker.stop(timeout=30)
        out[name] = worker.stdout() + worker.stderr()
    return out


def _popen(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [JOBRUNNER, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _leaks(outputs: dict[str, str], needles: dict[str, str]) -> list[str]:
    return [
        f"{secret} in {where}"
        for where, text in outputs.items()
        for secret, value in needles.items()
        if value in text
    ]


def test_no_secret_appears_in_anything_a_worker_or_the_cli_produces(
    cluster, cluster_schema, site, logs, secrets
):
    url = secrets.url(cluster)
    env = _env(site, secrets, url, cluster_schema)
    assert jr(env, "migrate").returncode == 0
    outputs = _outputs(env, logs, url, cluster.url(), cluster_schema)
    outputs |= _failure_outputs(env, logs, secrets, cluster.port)
    # The runs did go through the failures (so the search means something).
    text = outputs["worker text/debug"]
    assert "RuntimeError: upstream refused the request (OPENAI_API_KEY=***" in text, text
    assert "Traceback" in text and "KeyError" in text, "the chained traceback was logged"
    shown = json.loads(outputs["jobs show 1 --json"])
    assert shown["status"] == "failed" and "***" in shown["error"]
    assert "jobrunner: error: " in outputs["wrong password: status"]
    leaks = _leaks(outputs, secrets.needles())
    assert leaks == [], "\n".join(leaks)


def test_a_secret_logged_at_info_level_is_redacted(cluster, cluster_schema, site, logs, secrets):
    url = secrets.url(cluster)
    env = _env(site, secrets, url, cluster_schema)
    assert jr(env, "migrate").returncode == 0
    assert jr(env, "enqueue", "secret.log", "--payload", '{"info": true}').returncode == 0
    worker = start_worker(env, logs, "w", "--burst", "--log-level", "info", plugin="relsecret")
    assert worker.wait(timeout=60) == 0
    assert "using API key ***" in worker.stderr()
    assert _leaks({"stderr": worker.stderr()}, secrets.needles()) == []


def test_a_worker_with_a_wrong_password_says_so_without_the_password(
    cluster, cluster_schema, site, logs, secrets
):
    pw = quote(secrets.password, safe="")
    url = f"postgresql://jr_secret:{pw}nope@127.0.0.1:{cluster.port}/postgres"
    env = _env(site, secrets, url, cluster_schema)
    out = _briefly(env, logs, "w")
    assert 'password authentication failed for user "jr_secret"' in out
    assert _leaks({"out": out}, {**secrets.needles(), "wrong": f"{pw}nope"}) == []


def test_a_progress_message_naming_a_secret_is_redacted(
    cluster, cluster_schema, site, logs, secrets
):
    url = secrets.url(cluster)
    env = _env(site, secrets, url, cluster_schema)
    assert jr(env, "migrate").returncode == 0
    assert jr(env, "enqueue", "secret.progress").returncode == 0
    worker = start_worker(env, logs, "w", "--burst", plugin="relsecret")
    assert worker.wait(timeout=60) == 0
    shown = jr(env, "jobs", "show", "1", "--json").stdout
    assert json.loads(shown)["progress_message"].startswith("copying from postgresql://jr_secret:")
    assert _leaks({"jobs show": shown}, secrets.needles()) == []
