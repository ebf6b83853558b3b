"""A job table altered by hand: the worker refuses to start, with a message that says what is
wrong and what to do, rather than run against it and corrupt data."""

from __future__ import annotations

import pytest
from rel_support import jr, migrate, sql, worker_env

RUN = ("run", "--plugin", "relbad", "--burst")


def _refused(env: dict[str, str], *flags: str) -> str:
    done = jr(env, *RUN, *flags, timeout=30)
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    return done.stderr


@pytest.fixture
def env(pg_url, pg_schema, site) -> dict[str, str]:
    return worker_env(site, pg_url, pg_schema)


def _with_job(url: str, schema: str) -> list[tuple[object, ...]]:
    sql(url, f"INSERT INTO \"{schema}\".job (type) VALUES ('bad.echo')")
    return sql(url, f'SELECT * FROM "{schema}".job')


def test_a_dropped_column_stops_the_worker_before_it_claims(env, pg_url, pg_schema):
    migrate(env)
    sql(pg_url, f'ALTER TABLE "{pg_schema}".job DROP COLUMN progress_message')
    before = _with_job(pg_url, pg_schema)
    err = _refused(env)
    assert (
        f"jobrunner: error: {pg_schema}.job lacks columns ['progress_message']: the table was "
        "altered by hand; refusing to run rather than corrupt data"
    ) in err
    assert sql(pg_url, f'SELECT * FROM "{pg_schema}".job') == before, "nothing was touched"


def test_a_dropped_job_table_is_named_as_such(env, pg_url, pg_schema):
    migrate(env)
    sql(pg_url, f'DROP TABLE "{pg_schema}".job CASCADE')
    err = _refused(env, "--no-auto-migrate")
    assert f"{pg_schema}.job" in err and ("missing" in err or "lacks columns" in err), err


def test_an_unmigrated_database_asks_for_jobrunner_migrate(env, pg_schema):
    err = _refused(env, "--no-auto-migrate")
    assert f"{pg_schema}.job is not set up; run `jobrunner migrate`" in err


def test_a_schema_from_a_newer_jobrunner_is_refused(env, pg_url, pg_schema):
    migrate(env)
    sql(
        pg_url,
        f'INSERT INTO "{pg_schema}".job_migrations (version, name, jobrunner_version) '
        "VALUES (99, 'future', '9.9.9')",
    )
    err = _refused(env)
    assert "the database schema is at version 99" in err, err
    assert "upgrade jobrunner to 9.9.9 or newer to run against it" in err


def test_a_column_of_the_wrong_type_is_refused(env, pg_url, pg_schema):
    migrate(env)
    sql(pg_url, f'ALTER TABLE "{pg_schema}".job ALTER COLUMN payload TYPE text')
    before = _with_job(pg_url, pg_schema)
    err = _refused(env)
    assert "payload" in err, err
    assert sql(pg_url, f'SELECT * FROM "{pg_schema}".job') == before
