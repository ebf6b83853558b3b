"""Tests of the benchmark harness itself: table, discovery, helpers, one real scenario.

Run with ``.venv/bin/python -m pytest benchmarks/tests`` from the repository root;
the database tests need PostgreSQL on 127.0.0.1:5432 and use only ``bench_harness_*``.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import psycopg
import pytest

from benchmarks import _db, _plain, _procfs
from benchmarks._measure import check_result
from benchmarks._table import Measurement, Table, format_value, higher_is_better
from benchmarks._wirecount import FrontendParser, counting_proxy
from benchmarks.run import defines_run, discover, select
from benchmarks.scenarios._jobrunner_cli import JobrunnerCliAdapter

TEST_DB = "bench_harness_test"


def _m(library: str, scenario: str, **metrics: float) -> Measurement:
    return Measurement(library=library, scenario=scenario, metrics=metrics)


def _row(table: Table, label: str) -> dict[str, str]:
    header = table.header()
    for row in table.rows():
        if row[0] == label:
            return dict(zip(header, row, strict=True))
    raise AssertionError(f"no row {label!r} in {table.rows()}")


def test_cells_are_medians_and_ratios_use_the_best_peer() -> None:
    table = Table(
        measurements=[
            _m("jobrunner", "drain", **{"jobs/s": 8000.0}),
            _m("jobrunner", "drain", **{"jobs/s": 9000.0}),
            _m("jobrunner", "drain", **{"jobs/s": 12000.0}),
            _m("pgqueuer", "drain", **{"jobs/s": 16000.0}),
            _m("graphile", "drain", **{"jobs/s": 30000.0}),
            _m("sql", "drain", **{"jobs/s": 45000.0}),
        ]
    )
    row = _row(table, "no-op drain: jobs/s")
    assert row["jobrunner"] == "9,000"
    assert row["jobrunner / best peer"] == "0.30×"
    assert row["jobrunner / ceiling"] == "0.20×"
    assert table.header()[1:5] == ["jobrunner", "PgQueuer", "graphile-worker", "bare SQL (ceiling)"]


def test_best_peer_is_the_lowest_for_latency_and_costs() -> None:
    table = Table(
        measurements=[
            _m("jobrunner", "latency", **{"median ms": 4.0}),
            _m("pgqueuer", "latency", **{"median ms": 2.0}),
            _m("graphile", "latency", **{"median ms": 8.0}),
        ]
    )
    assert _row(table, "enqueue→start latency: median ms")["jobrunner / best peer"] == "2.00×"
    assert not higher_is_better("RSS MiB")
    assert higher_is_better("bulk 10k jobs/s")


def test_failures_show_in_cells_and_notes() -> None:
    table = Table(
        measurements=[
            _m("pgqueuer", "drain", **{"jobs/s": 100.0}),
            Measurement(library="graphile", scenario="drain", failure="n/a", detail="no node"),
            Measurement(
                library="procrastinate",
                scenario="drain",
                failure="timeout",
                detail="over 210 s",
                note=None,
            ),
        ]
    )
    row = _row(table, "no-op drain: jobs/s")
    assert row["graphile-worker"] == "n/a"
    assert row["Procrastinate"] == "timeout"
    assert row["jobrunner / best peer"] == ""
    assert "graphile drain: n/a: no node" in table.notes()


def _drain_with_variants() -> Table:
    return Table(
        measurements=[
            _m("jobrunner", "drain", **{"jobs/s": 40000.0, "worker CPU µs/job": 20.0}),
            _m(
                "jobrunner-cli",
                "drain",
                **{"jobs/s": 3000.0, "worker CPU µs/job": 180.0, "log lines/job": 2.0},
            ),
            _m(
                "jobrunner-cli-json",
                "drain",
                **{"jobs/s": 2400.0, "worker CPU µs/job": 200.0, "log lines/job": 2.0},
            ),
            _m(
                "jobrunner-cli-quiet",
                "drain",
                **{"jobs/s": 12000.0, "worker CPU µs/job": 30.0, "log lines/job": 0.0},
            ),
            _m("pgqueuer", "drain", **{"jobs/s": 16000.0, "worker CPU µs/job": 60.0}),
            _m("graphile", "drain", **{"jobs/s": 30000.0, "worker CPU µs/job": 50.0}),
            _m("sql", "drain", **{"jobs/s": 60000.0, "worker CPU µs/job": 10.0}),
        ]
    )


def _rows(table: Table, label: str) -> dict[str, dict[str, str]]:
    """The rows of ``label``, by the "jobrunner as" column."""
    header = table.header()
    found = [dict(zip(header, row, strict=True)) for row in table.rows() if row[0] == label]
    return {row["jobrunner as"]: row for row in found}


def test_jobrunner_variants_are_rows_of_the_jobrunner_column_not_peers() -> None:
    table = _drain_with_variants()
    assert table.header() == [
        "scenario: metric",
        "jobrunner as",
        "jobrunner",
        "PgQueuer",
        "graphile-worker",
        "bare SQL (ceiling)",
        "jobrunner / best peer",
        "jobrunner / ceiling",
    ]
    rows = _rows(table, "no-op drain: jobs/s")
    assert list(rows) == [
        "tuned script",
        "`jobrunner run`",
        "`jobrunner run`, JSON logs",
        "`jobrunner run --log-level warning`",
    ]
    # Each variant against the best real peer (graphile-worker), never against the tuned row.
    assert rows["tuned script"]["jobrunner / best peer"] == "1.33×"
    assert rows["`jobrunner run`"]["jobrunner"] == "3,000"
    assert rows["`jobrunner run`"]["jobrunner / best peer"] == "0.10×"
    assert rows["`jobrunner run`"]["jobrunner / ceiling"] == "0.05×"
    assert rows["`jobrunner run`, JSON logs"]["jobrunner / best peer"] == "0.08×"
    # The peers' figures once per metric, on its first row.
    assert rows["tuned script"]["graphile-worker"] == "30,000"
    assert rows["`jobrunner run`"]["graphile-worker"] == ""
    cpu = _rows(table, "no-op drain: worker CPU µs/job")
    assert cpu["`jobrunner run`"]["jobrunner / best peer"] == "3.60×"  # vs graphile's 50


def test_a_metric_only_some_variants_have_gets_rows_for_those_only() -> None:
    rows = _rows(_drain_with_variants(), "no-op drain: log lines/job")
    assert list(rows) == [
        "`jobrunner run`",
        "`jobrunner run`, JSON logs",
        "`jobrunner run --log-level warning`",
    ]
    assert rows["`jobrunner run`"]["jobrunner / best peer"] == ""


def test_logging_cost_per_line_is_in_the_notes() -> None:
    notes = _drain_with_variants().notes()
    costs = [note for note in notes if note.startswith("logging cost")]
    assert len(costs) == 2
    assert costs[0].startswith("logging cost, `jobrunner run`: 75.0 µs of worker CPU per log line")
    assert costs[1].startswith("logging cost, `jobrunner run`, JSON logs: 85.0 µs")


def test_without_variants_the_table_has_no_variant_column() -> None:
    table = Table(measurements=[_m("jobrunner", "drain", **{"jobs/s": 1.0})])
    assert table.header()[:2] == ["scenario: metric", "jobrunner"]
    assert table.logging_costs() == []
    assert table.markdown().splitlines()[1] == "|---|---:|---:|---:|"


def test_a_failed_variant_reads_as_its_failure() -> None:
    table = Table(
        measurements=[
            _m("jobrunner", "drain", **{"jobs/s": 9000.0}),
            Measurement(
                library="jobrunner-cli",
                scenario="drain",
                failure="error",
                detail="WorkerError: worker exited early: no module\nTraceback …\n  File …",
            ),
            _m("pgqueuer", "drain", **{"jobs/s": 16000.0}),
        ]
    )
    rows = _rows(table, "no-op drain: jobs/s")
    assert rows["`jobrunner run`"]["jobrunner"] == "error"
    assert rows["`jobrunner run`"]["jobrunner / best peer"] == ""
    assert table.notes() == [
        "jobrunner-cli drain: error: WorkerError: worker exited early: no module"
    ]


def test_value_formatting() -> None:
    assert [format_value(v) for v in (43210.4, 12.345, 3.14159)] == ["43,210", "12.3", "3.14"]


def test_discovery_finds_run_modules_and_skips_helpers(tmp_path: Path) -> None:
    (tmp_path / "_helper.py").write_text("async def run(): ...\n")
    (tmp_path / "jobrunner_adapter.py").write_text("def main(): ...\n")
    (tmp_path / "jobrunner_drain.py").write_text("run = object()\n")
    (tmp_path / "jobrunner_million.py").write_text("async def run(dsn, jobs, **o): ...\n")
    found = discover(tmp_path)
    assert found == [
        ("jobrunner", "drain", "benchmarks.scenarios.jobrunner_drain"),
        ("jobrunner", "million", "benchmarks.scenarios.jobrunner_million"),
    ]
    assert select(found, "million") == found[1:]
    assert select(found, "jobrunner") == found
    assert select(found, "jobrunner_drain,nothing") == found[:1]
    assert defines_run(tmp_path / "_helper.py")


def test_every_shipped_scenario_is_discovered() -> None:
    found = {(lib, scenario) for lib, scenario, _ in discover()}
    for lib in ("procrastinate", "pgqueuer", "graphile", "sql"):
        for scenario in ("drain", "latency", "enqueue", "sleep", "idle"):
            assert (lib, scenario) in found
    for lib in ("jobrunner-cli", "jobrunner-cli-json"):
        for scenario in ("drain", "latency", "sleep"):
            assert (lib, scenario) in found
    assert ("jobrunner-cli-quiet", "drain") in found


def test_variant_names_come_from_the_file_name(tmp_path: Path) -> None:
    (tmp_path / "jobrunner_cli_json_drain.py").write_text("run = object()\n")
    found = discover(tmp_path)
    assert found == [
        ("jobrunner-cli-json", "drain", "benchmarks.scenarios.jobrunner_cli_json_drain"),
    ]
    assert select(found, "jobrunner-cli-json") == found
    assert select(found, "jobrunner-cli-json_drain") == found
    assert select(found, "jobrunner_cli_json_drain") == found
    assert select(found, "jobrunner") == []
    assert _db.database_for("jobrunner-cli-json") == "bench_jobrunner_cli_json"


def test_cli_command_is_the_plain_script_with_only_the_variant_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_plain, "require", lambda: Path("/plain/bin/jobrunner"))
    for name in [n for n in os.environ if n.startswith("JOBRUNNER_") or n == "SENTRY_DSN"]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("JOBRUNNER_CONCURRENCY", "7")
    monkeypatch.setenv("DATABASE_URL", "postgresql:///elsewhere")
    drain = JobrunnerCliAdapter().worker_command("DSN", handler="noop", expect=10, concurrency=None)
    assert drain[:3] == ["env", "--unset=DATABASE_URL", "--unset=JOBRUNNER_CONCURRENCY"]
    assert drain[3:] == [
        "DATABASE_URL=DSN",
        "/plain/bin/jobrunner",
        "run",
        "--plugin",
        "bench",
        "--burst",
        "--concurrency",
        "500",
    ]
    json_latency = JobrunnerCliAdapter(log_format="json", handler="latency").worker_command(
        "DSN", handler="latency", expect=0, concurrency=None
    )
    assert "JOBRUNNER_LOG_FORMAT=json" in json_latency
    assert json_latency[-4:] == ["/plain/bin/jobrunner", "run", "--plugin", "bench"]
    quiet = JobrunnerCliAdapter(log_level="warning").worker_command(
        "DSN", handler="noop", expect=10, concurrency=None
    )
    assert quiet[-2:] == ["--log-level", "warning"]
    with pytest.raises(ValueError, match=r"enqueues bench\.noop"):
        JobrunnerCliAdapter().worker_command("DSN", handler="sleep", expect=10, concurrency=200)


def test_source_hash_follows_the_sources(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    (tmp_path / "pkg" / "a.py").write_text("A = 1\n")
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    sources = (tmp_path / "pyproject.toml", tmp_path / "pkg")
    before = _plain.source_hash(sources, root=tmp_path)
    (tmp_path / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"cache")
    assert _plain.source_hash(sources, root=tmp_path) == before
    (tmp_path / "pkg" / "a.py").write_text("A = 2\n")
    assert _plain.source_hash(sources, root=tmp_path) != before


@pytest.mark.skipif(not _plain.is_current(), reason="no current plain venv (benchmarks/setup.sh)")
def test_plain_install_runs_the_bench_plugin_from_site_packages() -> None:
    script = _plain.require()
    listed = subprocess.run(
        [script, "plugins", "--json"], capture_output=True, text=True, check=True, timeout=60
    )
    plugins = {p["name"]: p for p in json.loads(listed.stdout)}
    assert set(plugins["bench"]["job_types"]) == {"bench.noop", "bench.sleep", "bench.latency"}
    where = subprocess.run(
        [script.with_name("python"), "-c", "import jobrunner; print(jobrunner.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "/.venv-plain/lib/" in where.stdout  # installed, not the editable source tree


def test_procfs_reads_this_process() -> None:
    assert _procfs.rss_mib(os.getpid()) > 1
    assert _procfs.cpu_seconds(os.getpid()) > 0


def test_only_bench_databases_are_touched() -> None:
    with pytest.raises(ValueError, match="only bench_"):
        _db.drop_database("test")


@pytest.fixture
def bench_dsn() -> Iterator[str]:
    try:
        dsn = _db.recreate_database(TEST_DB)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL on {_db.HOST}:{_db.PORT}: {exc}")
    yield dsn
    _db.drop_database(TEST_DB)


def test_insert_generated_rows_in_chunks(bench_dsn: str) -> None:
    with psycopg.connect(bench_dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA q")
        conn.execute("CREATE TABLE q.jobs (id bigint, status text, finished_at timestamptz)")
    columns = {"id": "g.i", "status": "'succeeded'", "finished_at": "now() - g.i * interval '1 s'"}
    anyio.run(lambda: _db.insert_generated_rows(bench_dsn, "q.jobs", columns, 2_500, chunk=1_000))
    with psycopg.connect(bench_dsn) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT id), min(id), max(id), bool_and(status = 'succeeded')"
            " FROM q.jobs"
        ).fetchone()
    assert row == (2_500, 2_500, 1, 2_500, True)


def test_sql_ceiling_drains_for_real(bench_dsn: str) -> None:
    from benchmarks._scenarios import drain
    from benchmarks.scenarios._sql import SqlAdapter

    result = anyio.run(lambda: drain(SqlAdapter(batch=50))(bench_dsn, 500, timeout=60))
    assert set(result) == {"jobs/s", "worker CPU µs/job"}
    assert float(result["jobs/s"]) > 0
    assert float(result["worker CPU µs/job"]) > 0
    with psycopg.connect(bench_dsn) as conn:
        row = conn.execute("SELECT count(*), count(finished_at) FROM jobs").fetchone()
    assert row == (500, 500)


def _message(kind: bytes, body: bytes = b"") -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def test_wire_parser_counts_simple_and_extended_statements_across_chunks() -> None:
    ssl_request = struct.pack("!ii", 8, 80877103)
    startup = struct.pack("!ii", 17, 196608) + b"user\0pg\0\0"
    stream = (
        ssl_request
        + startup
        + _message(b"Q", b"SELECT 1\0")
        + _message(b"P", b"\0SELECT $1\0\0\0")
        + _message(b"B", b"\0\0" + b"\0" * 6)
        + _message(b"E", b"\0\0\0\0\0")
        + _message(b"S")
        + _message(b"E", b"\0\0\0\0\0")
    )
    parser = FrontendParser()
    counted = sum(parser.feed(stream[i : i + 3]) for i in range(0, len(stream), 3))
    assert counted == parser.statements == 3


def test_counting_proxy_counts_what_a_client_sends(bench_dsn: str) -> None:
    async def scenario() -> int:
        async with counting_proxy(bench_dsn) as proxy:
            conn = await psycopg.AsyncConnection.connect(proxy.dsn, autocommit=True)
            async with conn:
                before = proxy.statements
                for value in range(4):
                    cur = await conn.execute("SELECT %s::int", (value,))
                    assert await cur.fetchone() == (value,)
                return proxy.statements - before

    assert anyio.run(scenario) == 4


def test_scenario_results_must_be_numbers() -> None:
    assert check_result({"jobs/s": 1.5, "p99 ms": 3, "note": "capped"}) is None
    assert check_result([1.0]) == "returned list, not a dict"
    assert "not a number" in str(check_result({"jobs/s": {"a": 1}}))
    assert "not a number" in str(check_result({"ok": True}))
