"""Soak: one `jobrunner run` works through batch after batch of short jobs (diag.noop) and a
mix with retries, progress and children, on a private cluster. Between batches, with the
queue empty, a probe job reports what the worker process holds (resident memory, asyncio
tasks, file descriptors, threads) and the test counts its sessions in pg_stat_activity.

After the warm-up batches, nothing may grow: not the tasks, descriptors, threads or database
sessions (any growth there is a leak, whatever the load), and in the full profile (a million
no-op jobs) not the resident memory by more than 10 %.
"""

from __future__ import annotations

import time

import attrs
import pytest
from rel_support import FULL, migrate, sql, start_worker, statuses, wait_until, worker_env

APP = "jr-soak"  # the worker's sessions' application_name
POLL = 30.0  # the worker's poll interval: a parent found only by polling waits this long
WOKEN = 5.0  # a parent runs again within this of its last child's end: woken, not polled


@attrs.frozen(kw_only=True)
class Profile:
    noops: int  # diag.noop jobs in all
    batch: int  # no-op jobs per batch
    mix: int  # soak.mix parents per batch (a third retried, a third with 3 children)
    warmup: int  # batches before the first measure that counts
    rss_growth: float | None  # allowed growth of resident memory after warm-up; None: not checked


SMALL = Profile(noops=20_000, batch=4_000, mix=30, warmup=2, rss_growth=None)
MILLION = Profile(noops=1_000_000, batch=50_000, mix=300, warmup=2, rss_growth=0.10)


def _insert_batch(url: str, schema: str, profile: Profile) -> int:
    """One batch: the no-ops, then the mix; returns how many jobs it will end with.

    The rows name their turn (0: one user, first come first served), as jobrunner's own bulk
    inserts do: without it, the trigger that gives a plain INSERT its turn upserts the user's
    turn row once per job, and one statement of 50,000 jobs takes minutes (see limits.md)."""
    table = f'"{schema}".job'
    sql(
        url,
        f"INSERT INTO {table} (type, turn) SELECT 'diag.noop', 0 FROM generate_series(1, %s)",
        [profile.batch],
    )
    sql(
        url,
        f"INSERT INTO {table} (type, turn, payload) SELECT 'soak.mix', 0, CASE i %% 3 "
        "WHEN 0 THEN '{\"retry\": true}'::jsonb WHEN 1 THEN '{\"children\": 3}'::jsonb "
        "ELSE '{}'::jsonb END FROM generate_series(1, %s) AS i",
        [profile.mix],
    )
    with_children = sum(1 for i in range(1, profile.mix + 1) if i % 3 == 1)
    return profile.batch + profile.mix + 3 * with_children


def _drained(url: str, schema: str) -> dict[str, int] | None:
    counts = statuses(url, schema)
    return None if counts.get("pending") or counts.get("running") else counts


def _slowest_wake(url: str, schema: str) -> float:
    """The longest a parent took to end after its last child ended, in seconds."""
    table = f'"{schema}".job'
    rows = sql(
        url,
        f"SELECT max(extract(epoch FROM p.finished_at - c.last)) FROM {table} AS p JOIN "
        f"(SELECT parent_id, max(finished_at) AS last FROM {table} "
        "WHERE parent_id IS NOT NULL GROUP BY parent_id) AS c ON c.parent_id = p.id",
    )
    return float(rows[0][0] or 0)


def _sessions(url: str) -> int:
    return sql(url, "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [APP])[0][
        0
    ]


def _probe(url: str, schema: str) -> dict[str, int]:
    [(job_id,)] = sql(
        url, f"INSERT INTO \"{schema}\".job (type) VALUES ('soak.probe') RETURNING id"
    )
    query = f'SELECT status, result FROM "{schema}".job WHERE id = %s'
    status, result = wait_until(
        lambda: (row := sql(url, query, [job_id])[0])[0] in ("completed", "failed") and row,
        60,
        "the probe",
        0.05,
    )
    assert status == "completed", result
    return {**result, "sessions": _sessions(url)}


@pytest.mark.parametrize(
    "profile",
    [
        pytest.param(SMALL, id="20k"),
        pytest.param(MILLION, id="1M", marks=[pytest.mark.slow, pytest.mark.timeout(1800)]),
    ],
)
def test_a_long_run_grows_nothing(cluster, cluster_schema, site, logs, profile, capsys):
    if FULL and profile is SMALL:
        pytest.skip("the full profile runs instead")
    url = cluster.url()
    env = worker_env(site, url, cluster_schema, PGAPPNAME=APP)
    migrate(env)
    args = ("--plugin", "diag", "--poll-interval", str(POLL))
    worker = start_worker(env, logs, "soak", *args, plugin="relsoak")
    probes: list[dict[str, int]] = []
    done = 0
    busy = 0.0  # seconds spent working through batches (not probing or cleaning up)
    slowest_wake = 0.0
    try:
        for _ in range(profile.noops // profile.batch):
            expected = _insert_batch(url, cluster_schema, profile)
            started = time.monotonic()
            counts = wait_until(lambda: _drained(url, cluster_schema), 600, "a batch", 0.05)
            busy += time.monotonic() - started
            assert worker.alive(), worker.stderr()[-3000:]
            assert counts == {"completed": expected}, counts
            done += expected
            slowest_wake = max(slowest_wake, _slowest_wake(url, cluster_schema))
            probes.append(_probe(url, cluster_schema))
            sql(url, f'DELETE FROM "{cluster_schema}".job')
        assert worker.stop(timeout=60) == 0, worker.stderr()[-3000:]
    finally:
        if worker.alive():
            worker.kill()
    assert "Traceback" not in worker.stderr(), worker.stderr()[-3000:]
    warm, last = probes[profile.warmup - 1], probes[-1]
    figures = {
        "jobs": done,
        "seconds working": round(busy, 1),
        "jobs/s": round(done / busy),
        "rss MB warm/end": (round(warm["rss"] / 2**20, 1), round(last["rss"] / 2**20, 1)),
        "tasks warm/end": (warm["tasks"], last["tasks"]),
        "fds warm/end": (warm["fds"], last["fds"]),
        "threads warm/end": (warm["threads"], last["threads"]),
        "sessions warm/end": (warm["sessions"], last["sessions"]),
        "slowest parent wake s": round(slowest_wake, 3),
    }
    with capsys.disabled():
        print(f"\nsoak ({'1M' if profile is MILLION else '20k'}): {figures}")
        print("  rss MB by batch:", [round(p["rss"] / 2**20, 1) for p in probes])
    after = probes[profile.warmup - 1 :]
    for what in ("tasks", "fds", "threads", "sessions"):
        assert max(p[what] for p in after) <= warm[what], (what, [p[what] for p in probes])
    # Parents parked for their children were woken by the last one, not found by a poll
    # (nor by their 60 s recheck) — also when parent and child outcomes were written at once.
    assert slowest_wake < WOKEN, figures
    if profile.rss_growth is not None:
        assert last["rss"] <= warm["rss"] * (1 + profile.rss_growth), figures
