"""`jobrunner migrate` on a large job table while workers use it: no ACCESS EXCLUSIVE lock on
the table is held for more than a moment, and a migration that cannot have its lock at once
gives way to the queries queued behind it instead of stalling them all.

"A moment" is `MOMENT` (1 s), measured from pg_locks, sampled every few milliseconds from
another session while the real `jobrunner migrate` runs: the longest run of samples in which
one session held ACCESS EXCLUSIVE on the job table. Each migration runs in its own
transaction, so an upgrade across several holds each one's locks only for that one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import anyio
import psycopg
import pytest
from rel_support import jr, sql, worker_env

from jobrunner import DatabaseError
from jobrunner._postgres import PostgresBackend, _migrate
from jobrunner._schema import migrate

MOMENT = 1.0  # seconds: the longest an ACCESS EXCLUSIVE lock on the job table may be held
# 0003_limits (written before this rule, and migrations are append-only) adds a column and
# builds the fair claim index in one transaction, so the build runs under the ALTER TABLE's
# lock: about 1 s per million jobs (a quarter pending) here. Upgrades from before it get
# this bound instead (docs/deployment.md says so).
ACROSS_0003 = 3.0


def _schema_at(url: str, schema: str, version: int) -> None:
    """The schema as the release with migrations 1..version left it."""

    async def build() -> None:
        backend = PostgresBackend(url, schema=schema)
        await backend.open()
        try:
            known = backend.migrations()
            await backend.schema_apply(
                lambda done: [m for m in known if m.version <= version and m.version not in done]
            )
        finally:
            await backend.aclose()

    anyio.run(build)


def _fill(url: str, schema: str, rows: int, version: int) -> None:
    """`rows` jobs, a quarter of them pending (the claim index's share), the rest completed.
    From version 3 on they name their turn, as jobrunner's own bulk inserts do: the trigger
    that gives a plain INSERT its turn upserts one row per job, slow for a million at once."""
    turn = ", turn" if version >= 3 else ""
    sql(
        url,
        f'INSERT INTO "{schema}".job (type, payload, status, finished_at{turn}) '
        "SELECT 'diag.noop', '{}', CASE WHEN i %% 4 = 0 THEN 'pending' ELSE 'completed' END, "
        f"CASE WHEN i %% 4 = 0 THEN NULL ELSE now() END{', 0' if turn else ''} "
        "FROM generate_series(1, %s) AS i",
        [rows],
    )
    sql(url, f'VACUUM ANALYZE "{schema}".job')


class LockSampler:
    """Samples, every 2 ms, which sessions hold ACCESS EXCLUSIVE on the job table."""

    def __init__(self, url: str, schema: str) -> None:
        self.url, self.table = url, f'"{schema}".job'
        self.samples: list[tuple[float, frozenset[int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        query = (
            "SELECT pid FROM pg_locks WHERE granted AND mode = 'AccessExclusiveLock' "
            "AND relation = to_regclass(%s)"
        )
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.is_set():
                pids = frozenset(r[0] for r in conn.execute(query, [self.table]).fetchall())
                self.samples.append((time.monotonic(), pids))
                time.sleep(0.002)

    def longest_hold(self) -> float:
        """The longest run of consecutive samples in which one session held the lock."""
        longest, since = 0.0, {}
        for at, pids in self.samples:
            since = {pid: since.get(pid, at) for pid in pids}
            longest = max([longest, *(at - start for start in since.values())])
        return longest

    def held(self) -> bool:
        return any(pids for _, pids in self.samples)

    def __enter__(self) -> LockSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class Prober:
    """A worker's claim, over and over, each allowed to wait `patience` seconds for a lock
    (past that it has stalled)."""

    def __init__(self, url: str, schema: str, patience: float = MOMENT) -> None:
        self.url, self.schema, self.patience = url, schema, patience
        self.done = 0
        self.stalled: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        claim = (
            f"UPDATE \"{self.schema}\".job SET status = 'running' WHERE id = ("
            f"SELECT id FROM \"{self.schema}\".job WHERE status = 'pending' "
            "ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id"
        )
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"SET lock_timeout = '{int(self.patience * 1000)}ms'")
            while not self._stop.is_set():
                try:
                    conn.execute(claim)
                    self.done += 1
                except psycopg.errors.LockNotAvailable as exc:
                    self.stalled.append(str(exc))
                time.sleep(0.005)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@pytest.mark.parametrize(
    ("rows", "version", "bound"),
    [
        pytest.param(100_000, 2, MOMENT, id="100k-from-2"),
        pytest.param(1_000_000, 4, MOMENT, id="1M-from-4", marks=pytest.mark.slow),
        pytest.param(1_000_000, 3, MOMENT, id="1M-from-3", marks=pytest.mark.slow),
        pytest.param(1_000_000, 2, ACROSS_0003, id="1M-from-2", marks=pytest.mark.slow),
    ],
)
def test_migrate_holds_no_long_exclusive_lock_on_a_large_table(
    cluster, cluster_schema, rows, version, bound, capsys
):
    pg_url, pg_schema = cluster.url(), cluster_schema
    _schema_at(pg_url, pg_schema, version)
    _fill(pg_url, pg_schema, rows, version)
    env = worker_env(None, pg_url, pg_schema)
    with LockSampler(pg_url, pg_schema) as locks, Prober(pg_url, pg_schema, bound) as probe:
        started = time.monotonic()
        done = jr(env, "migrate", timeout=600)
        took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert locks.held(), "the sampler saw the migration's lock (else it proves nothing)"
    longest = locks.longest_hold()
    with capsys.disabled():
        print(
            f"\nmigrate {version} -> latest on {rows:,} rows: longest ACCESS EXCLUSIVE "
            f"{longest * 1000:.0f} ms over {len(locks.samples)} samples; command {took:.1f} s; "
            f"{probe.done} claims, {len(probe.stalled)} stalled"
        )
    assert longest < bound
    assert probe.stalled == []
    assert probe.done > 0


@pytest.fixture
def long_reader(pg_url: str, pg_schema: str) -> Iterator[tuple[psycopg.Connection, int]]:
    """A session inside a transaction that has read the job table (a report, a dump)."""
    _schema_at(pg_url, pg_schema, 4)
    _fill(pg_url, pg_schema, 1000, 4)
    with psycopg.connect(pg_url) as conn:
        conn.execute(f'SELECT count(*) FROM "{pg_schema}".job').fetchone()
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        yield conn, pid
        conn.rollback()


def test_a_migration_behind_a_long_transaction_gives_way(pg_url, pg_schema, long_reader):
    reader, _ = long_reader
    timer = threading.Timer(3.0, reader.rollback)  # the report ends after 3 s
    env = worker_env(None, pg_url, pg_schema, JOBRUNNER_LOG_LEVEL="info")
    with Prober(pg_url, pg_schema) as probe:
        timer.start()
        done = jr(env, "migrate", timeout=120)
        timer.join()
    assert done.returncode == 0, done.stderr
    # Without giving way, every claim would have queued behind the waiting ALTER TABLE for
    # the report's 3 s, past the claims' 1 s lock timeout.
    assert probe.stalled == []
    assert probe.done > 0
    assert "gave way to the queries queued behind it; trying again" in done.stderr
    assert "applied: 0005_keys_usage_schedules" in done.stderr


@pytest.mark.anyio
async def test_a_migration_that_never_gets_its_lock_names_who_holds_it(
    pg_url, pg_schema, long_reader, monkeypatch
):
    _, holder = long_reader
    monkeypatch.setattr(_migrate, "LOCK_DEADLINE", 2.0)
    backend = PostgresBackend(pg_url, schema=pg_schema)
    await backend.open()
    try:
        with pytest.raises(DatabaseError) as raised:
            await migrate(backend)
    finally:
        await backend.aclose()
    message = str(raised.value)
    assert "migration 0005_keys_usage_schedules could not take its locks" in message
    assert f"sessions [{holder}] held them" in message
    assert sql(pg_url, f'SELECT max(version) FROM "{pg_schema}".job_migrations') == [(4,)]
