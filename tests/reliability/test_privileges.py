"""A worker runs under a role with only the privileges docs/security.md lists: no superuser,
no DDL after migration (`--no-auto-migrate`), nothing beyond its own tables."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from rel_cluster import Cluster
from rel_support import jr, sql, start_worker, worker_env

# Exactly what docs/security.md tells a DBA to grant (keep the two in step).
GRANTS = """
GRANT USAGE ON SCHEMA {schema} TO jr_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON {schema}.job, {schema}.job_workers,
    {schema}.job_limits, {schema}.job_queue_pauses, {schema}.job_turns,
    {schema}.job_usage, {schema}.job_budgets, {schema}.job_schedules TO jr_worker;
GRANT SELECT ON {schema}.job_migrations, {schema}.job_over_budget TO jr_worker;
"""


@pytest.fixture
def worker_role(cluster: Cluster, cluster_schema: str) -> Iterator[str]:
    """A login role with the documented grants on a schema migrated by the admin role;
    returns its database URL."""
    password = uuid.uuid4().hex
    admin = cluster.url()
    sql(admin, "DROP ROLE IF EXISTS jr_worker")
    sql(
        admin,
        f"CREATE ROLE jr_worker LOGIN PASSWORD '{password}' "
        "NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT",
    )
    sql(admin, "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    assert jr(worker_env(None, admin, cluster_schema), "migrate").returncode == 0
    for statement in GRANTS.format(schema=f'"{cluster_schema}"').split(";"):
        if statement.strip():
            sql(admin, statement)
    yield cluster.url("jr_worker", password)
    sql(admin, f'DROP SCHEMA IF EXISTS "{cluster_schema}" CASCADE')
    sql(admin, "DROP OWNED BY jr_worker")
    sql(admin, "DROP ROLE jr_worker")


def test_a_worker_needs_only_the_documented_privileges(worker_role, cluster_schema, site, logs):
    env = worker_env(site, worker_role, cluster_schema, JOBRUNNER_AUTO_MIGRATE="false")
    ids = []
    for seconds in (0.1, 0.2, 0.3):
        done = jr(env, "enqueue", "diag.sleep", "--payload", json.dumps({"seconds": seconds}))
        assert done.returncode == 0, done.stderr
        ids.append(done.stdout.strip())
    late = jr(env, "enqueue", "diag.noop", "--delay", "1h").stdout.strip()
    assert "is cancelled" in jr(env, "jobs", "cancel", late).stdout
    for args in (
        ("budgets", "set", "--user", "u1", "--daily", "100", "--unit", "tokens"),
        ("schedules", "add", "hourly", "--every", "1h", "--type", "diag.noop"),
    ):
        done = jr(env, *args)
        assert done.returncode == 0, (args, done.stderr)
    spent = jr(
        env, "enqueue", "diag.noop", "--user-id", "u1", "--key", "k",
        "--payload", json.dumps({"usage": {"tokens": 7}}),
    ).stdout.strip()  # fmt: skip
    assert jr(env, "enqueue", "diag.noop", "--key", "k").stdout.strip() == spent
    ids.append(spent)
    worker = start_worker(env, logs, "w", "--burst", "--log-level", "info", plugin="diag")
    assert worker.wait(timeout=60) == 0, worker.stderr()
    for job_id in ids:
        shown = json.loads(jr(env, "jobs", "show", job_id, "--json").stdout)
        assert shown["status"] == "completed"
    assert json.loads(jr(env, "usage", "--json").stdout)[0]["amount"] == 7
    assert "is pending" in jr(env, "jobs", "retry", ids[0]).stdout
    for args in (
        ("status",),
        ("workers",),
        ("prune", "--older-than", "0s"),
        ("doctor",),
        ("schedules", "list"),
        ("budgets", "show"),
    ):
        done = jr(env, *args)
        assert "permission denied" not in done.stdout + done.stderr, (args, done.stderr)
    assert "permission denied" not in worker.stderr()


DDL = (
    "CREATE TABLE {schema}.intruder (x int)",
    "DROP TABLE {schema}.job",
    "ALTER TABLE {schema}.job ADD COLUMN x int",
    "CREATE INDEX intruder ON {schema}.job (id)",
    "TRUNCATE {schema}.job",
    "CREATE SCHEMA intruder",
    "CREATE TABLE public.intruder (x int)",
)


def test_the_worker_role_cannot_change_the_schema(worker_role, cluster_schema):
    allowed = []
    for statement in DDL:
        try:
            sql(worker_role, statement.format(schema=f'"{cluster_schema}"'))
        except psycopg.errors.InsufficientPrivilege:
            continue
        allowed.append(statement)
    assert allowed == []


def test_without_no_auto_migrate_the_worker_runs_or_says_why(
    worker_role, cluster_schema, site, logs
):
    env = worker_env(site, worker_role, cluster_schema)
    worker = start_worker(env, logs, "w", "--burst", plugin="diag")
    try:
        code = worker.wait(timeout=6)
    except subprocess.TimeoutExpired:
        worker.kill()
        raise AssertionError(f"still retrying:\n{worker.stderr()[-2000:]}") from None
    assert code == 0 or "permission denied" in worker.stderr()


APP_GRANTS = """
GRANT USAGE ON SCHEMA {schema} TO jr_app;
GRANT SELECT, INSERT ON {schema}.job TO jr_app;
GRANT UPDATE (status, finished_at, cancel_requested) ON {schema}.job TO jr_app;
"""


def test_a_web_app_role_enqueues_reads_and_cancels_only(worker_role, cluster, cluster_schema):
    """The grants docs/security.md suggests for a web app using docs/sql-interface.md."""
    admin = cluster.url()
    sql(admin, "DROP ROLE IF EXISTS jr_app")
    sql(admin, "CREATE ROLE jr_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
    try:
        for statement in APP_GRANTS.format(schema=f'"{cluster_schema}"').strip().splitlines():
            sql(admin, statement)
        app = cluster.url("jr_app")
        job = f'"{cluster_schema}".job'
        [(job_id,)] = sql(
            app,
            f"INSERT INTO {job} (type, payload, user_id) VALUES (%s, %s::jsonb, %s) RETURNING id",
            ["diag.noop", "{}", "u1"],
        )
        cancel = (
            f"UPDATE {job} SET status = CASE WHEN status = 'pending' THEN 'cancelled' "
            "ELSE status END, finished_at = CASE WHEN status = 'pending' THEN now() "
            "ELSE finished_at END, cancel_requested = cancel_requested OR status = 'running' "
            "WHERE id = %s AND user_id = %s RETURNING status"
        )
        assert sql(app, cancel, [job_id, "u1"]) == [("cancelled",)]
        sql(app, "SELECT pg_notify(%s, %s)", ["jobrunner_x_job", f"cancel:{job_id}"])
        refused = []
        for statement in (
            f"UPDATE {job} SET result = '1'",
            f"UPDATE {job} SET locked_by = 'me'",
            f"DELETE FROM {job}",
            f'SELECT * FROM "{cluster_schema}".job_workers',
        ):
            try:
                sql(app, statement)
            except psycopg.errors.InsufficientPrivilege:
                refused.append(statement)
        assert len(refused) == 4
    finally:
        sql(admin, "DROP OWNED BY jr_app")
        sql(admin, "DROP ROLE jr_app")
