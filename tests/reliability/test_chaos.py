"""Kill -9 chaos: workers die mid-job at random; no job is lost, stuck or completed twice.

Each job writes a side-effect row (job_id, attempt, pid) before it returns. Right after each
SIGKILL the test records which (job, attempt) pairs the dead worker held, from the table's
`locked_by` column (worker ids carry the pid). At the end:

- every job is `completed`, none `pending`/`running`/`failed` (nothing lost or stuck);
- every job has the side row of the attempt that completed it, and its result names that
  attempt and pid (the run that finished is the one whose result stands);
- every other side row (a duplicate execution) and every earlier attempt belongs to a pair
  held by a killed worker: duplicates ≤ jobs running in killed workers.
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from pathlib import Path

import attrs
import pytest
from rel_support import (
    FULL,
    WorkerProc,
    migrate,
    sql,
    start_worker,
    statuses,
    wait_until,
    worker_env,
)


@attrs.frozen(kw_only=True)
class Profile:
    jobs: int
    workers: int = 4
    concurrency: int
    kill_every: float = 2.0
    lease: float = 2.0
    min_ms: int = 100
    max_ms: int = 900
    deadline: float


CI = Profile(jobs=600, concurrency=8, deadline=150)
FULL_PROFILE = Profile(jobs=5000, concurrency=20, deadline=900)


@attrs.define
class Chaos:
    """The run's bookkeeping."""

    kills: int = 0
    restarts: int = 0
    held_by_killed: set[tuple[int, int]] = attrs.field(factory=set)
    killed_pids: list[int] = attrs.field(factory=list)


def _start(env: dict[str, str], logs: Path, n: int, concurrency: int) -> WorkerProc:
    return start_worker(
        {**env, "PGAPPNAME": f"chaos-w{n}"},  # names its sessions in pg_stat_activity
        logs,
        f"w{n}",
        "--concurrency",
        str(concurrency),
        "--poll-interval",
        "1",
        "--error-retry-delay",
        "2",
    )


def _held_by(url: str, schema: str, pid: int, appname: str) -> set[tuple[int, int]]:
    """What a killed worker held, once its sessions are gone (a statement in flight when it
    died may still commit: a claim, say)."""
    wait_until(
        lambda: (
            not sql(url, "SELECT 1 FROM pg_stat_activity WHERE application_name = %s", [appname])
        ),
        timeout=30,
        what=f"the sessions of {appname} to end",
        interval=0.02,
    )
    rows = sql(
        url,
        f'SELECT id, attempts FROM "{schema}".job WHERE status = %s AND locked_by LIKE %s',
        ["running", f"%:{pid}:%"],
    )
    return {(job_id, attempt) for job_id, attempt in rows}


def _unfinished(url: str, schema: str) -> int:
    counts = statuses(url, schema)
    return counts.get("pending", 0) + counts.get("running", 0)


def _run_chaos(
    url: str, schema: str, env: dict[str, str], logs: Path, profile: Profile
) -> tuple[Chaos, list[WorkerProc]]:
    rng = random.Random(20240601)
    chaos = Chaos()
    workers = [_start(env, logs, n, profile.concurrency) for n in range(profile.workers)]
    names = [f"chaos-w{n}" for n in range(profile.workers)]
    spawned = profile.workers
    deadline = time.monotonic() + profile.deadline
    while _unfinished(url, schema):
        assert time.monotonic() < deadline, f"chaos run not finished: {statuses(url, schema)}"
        time.sleep(profile.kill_every * rng.uniform(0.75, 1.25))
        if not _unfinished(url, schema):
            break
        slot = rng.randrange(len(workers))
        victim = workers[slot]
        assert victim.alive(), f"worker {victim.pid} died on its own:\n{victim.stderr()[-3000:]}"
        victim.kill()
        chaos.kills += 1
        chaos.killed_pids.append(victim.pid)
        chaos.held_by_killed |= _held_by(url, schema, victim.pid, names[slot])
        workers[slot] = _start(env, logs, spawned, profile.concurrency)
        names[slot] = f"chaos-w{spawned}"
        spawned += 1
        chaos.restarts += 1
    return chaos, workers


@pytest.mark.parametrize(
    "profile",
    [
        pytest.param(CI, id="ci"),
        pytest.param(FULL_PROFILE, id="full", marks=pytest.mark.slow),
    ],
)
def test_kill_9_chaos_loses_nothing(pg_url, pg_schema, site, logs, profile, capsys):
    if FULL and profile is CI:
        pytest.skip("the full profile runs instead")
    env = worker_env(site, pg_url, pg_schema, CHAOS_LEASE=str(profile.lease))
    migrate(env)
    sql(pg_url, f'CREATE TABLE "{pg_schema}".side (job_id bigint, attempt int, pid int)')
    span = profile.max_ms - profile.min_ms
    sql(
        pg_url,
        f'INSERT INTO "{pg_schema}".job (type, payload) '
        "SELECT 'chaos.work', json_build_object('ms', %s + (i * 7919) %% %s) "
        "FROM generate_series(1, %s) AS i",
        [profile.min_ms, span, profile.jobs],
    )
    started = time.monotonic()
    chaos, workers = _run_chaos(pg_url, pg_schema, env, logs, profile)
    elapsed = time.monotonic() - started
    for worker in workers:
        assert worker.stop(timeout=60) == 0, worker.stderr()[-3000:]
        assert "Traceback" not in worker.stderr(), worker.stderr()[-3000:]

    jobs = sql(pg_url, f'SELECT id, status, attempts, result FROM "{pg_schema}".job')
    side = sql(pg_url, f'SELECT job_id, attempt, pid FROM "{pg_schema}".side')
    runs: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for job_id, attempt, pid in side:
        runs[job_id].append((attempt, pid))
    by_status = Counter(status for _, status, _, _ in jobs)
    lost = profile.jobs - by_status["completed"] - by_status["running"]
    duplicates = len(side) - len(runs)
    unexplained: list[tuple[int, int]] = []
    for job_id, _status, attempts, result in jobs:
        completing = [(a, pid) for a, pid in runs[job_id] if a == attempts]
        assert completing == [(result["attempt"], result["pid"])], (job_id, runs[job_id], result)
        # Every earlier attempt, and any side effect it left, was in a killed worker.
        unexplained += [
            (job_id, a) for a in range(1, attempts) if (job_id, a) not in chaos.held_by_killed
        ]
    figures = {
        "jobs": profile.jobs,
        "workers": profile.workers,
        "kills": chaos.kills,
        "restarts": chaos.restarts,
        "held by killed workers": len(chaos.held_by_killed),
        "duplicate executions": duplicates,
        "lost": lost,
        "stuck": by_status["running"],
        "seconds": round(elapsed, 1),
    }
    with capsys.disabled():
        print(f"\nkill -9 chaos ({'full' if profile is FULL_PROFILE else 'ci'}): {figures}")
    assert by_status == {"completed": profile.jobs}, figures
    assert len(runs) == profile.jobs, "every job left its side effect"
    assert unexplained == [], (
        "attempts re-run without their worker being killed",
        [(j, runs[j]) for j, _ in unexplained],
        chaos.killed_pids,
    )
    assert duplicates <= len(chaos.held_by_killed)
    assert chaos.kills >= (3 if profile is CI else 10), "the run was too short to prove much"
