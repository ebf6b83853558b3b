"""Helpers of the reliability suite: worker processes, the suite's plugins, polling the table."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs
import psycopg

from jr_support import JOBRUNNER, REPO, write_plugin_dist

PLUGINS_DIR = Path(__file__).resolve().parent / "plugins"
# (plugin name, module under plugins/): each is installed as a fake distribution.
PLUGINS = {
    "relchaos": "rel_chaos",
    "relpoison": "rel_poison",
    "relbad": "rel_bad",
    "relsecret": "rel_secret",
    "rellimits": "rel_limits",
    "relbudget": "rel_budget",
    "relsoak": "rel_soak",
}
FULL = os.environ.get("JOBRUNNER_FULL", "").lower() in {"1", "true", "yes"}

T = TypeVar("T")


def install_plugins(site: Path) -> Path:
    """Install the suite's plugins as fake distributions under `site` (put it on PYTHONPATH)."""
    for name, module in PLUGINS.items():
        source = (PLUGINS_DIR / f"{module}.py").read_text()
        write_plugin_dist(site, f"{name}-plugin", name, module, source)
    return site


def worker_env(site: Path | None, url: str, schema: str, **extra: str) -> dict[str, str]:
    """The environment of a worker that sees the suite's plugins (in `site`) and uses
    `schema`; nothing of the test runner's own JOBRUNNER_* settings leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBRUNNER_")}
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    env.update(
        DATABASE_URL=url,
        SIDE_DATABASE_URL=url,
        JOBRUNNER_SCHEMA=schema,
        JOBRUNNER_LOG_LEVEL="warning",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@attrs.define(eq=False)
class WorkerProc:
    """A `jobrunner run` process whose stdout and stderr go to files."""

    proc: subprocess.Popen[bytes]
    out: Path
    err: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def term(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 60) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait; SIGKILL if it does not exit (a test failure anyway).

        A worker started a moment ago may still be inside the Python interpreter's own
        start-up, before any code of ours can catch a signal: give it until its first log
        line (at most 5 s), as a supervisor's stop normally would.
        """
        deadline = time.monotonic() + 5
        while self.alive() and not self.stderr() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.alive():
            self.term()
            try:
                return self.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise
        return self.proc.returncode

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")


def start_worker(
    env: Mapping[str, str], logs: Path, name: str, *args: str, plugin: str = "relchaos"
) -> WorkerProc:
    logs.mkdir(parents=True, exist_ok=True)
    out, err = logs / f"{name}.out", logs / f"{name}.err"
    cmd = [JOBRUNNER, "run", "--plugin", plugin, *args]
    with out.open("wb") as fo, err.open("wb") as fe:
        proc = subprocess.Popen(cmd, env=dict(env), stdout=fo, stderr=fe)
    return WorkerProc(proc=proc, out=out, err=err)


def jr(env: Mapping[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a `jobrunner` command; returns the completed process (not checked)."""
    return subprocess.run(
        [JOBRUNNER, *args], env=dict(env), capture_output=True, text=True, timeout=timeout
    )


def wait_until(probe: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll `probe` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {value!r})")
        time.sleep(interval)


def sql(url: str, query: str, params: Iterable[Any] | Mapping[str, Any] | None = None) -> list[Any]:
    """Run one statement on a fresh autocommit connection; rows, or [] for none."""
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        cur = conn.execute(query, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def statuses(url: str, schema: str, table: str = "job") -> dict[str, int]:
    rows = sql(url, f'SELECT status, count(*) FROM "{schema}"."{table}" GROUP BY status')
    return {status: count for status, count in rows}


def migrate(env: Mapping[str, str]) -> None:
    done = jr(env, "migrate")
    assert done.returncode == 0, done.stderr


# -- earlier releases -----------------------------------------------------------------------

MIGRATIONS = REPO / "src" / "jobrunner" / "_postgres" / "migrations"
CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def skip_or_fail(message: str) -> None:
    """Skip a test for a missing tool or history; with CI=true fail instead."""
    import pytest

    if CI:
        pytest.fail(message + " (CI=true: failing, not skipping)")
    pytest.skip(message)


def release_before(migration: str) -> str | None:
    """The commit just before `migration` (a file under the PostgreSQL migrations) was added
    on the main line: the release whose workers run while that migration is applied. None
    when git or the history is not there (a tarball, a shallow clone)."""
    path = str((MIGRATIONS / migration).relative_to(REPO))
    try:
        found = subprocess.run(
            [
                "git",
                "-C",
                str(REPO),
                "log",
                "--first-parent",
                "--diff-filter=A",
                "--format=%H",
                "--",
                path,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.split()
        if not found:
            return None
        parent = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet", f"{found[-1]}^1"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return parent or None


def export_release(commit: str, into: Path) -> Path:
    """Write `src/` of `commit` under `into`; returns the directory to put on PYTHONPATH
    (its `jobrunner` package then shadows the installed one, whose dependencies it uses)."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit, "src"],
        capture_output=True,
        timeout=120,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, timeout=120, check=True)
    return into / "src"


def with_release(env: Mapping[str, str], src: Path) -> dict[str, str]:
    """`env` with the release at `src` first on PYTHONPATH (the suite's plugins stay visible)."""
    path = env.get("PYTHONPATH", "")
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(src), path]))}


# -- sampling the table while a run goes on -------------------------------------------------


class Sampler:
    """Counts a type's running jobs (in all, and for its busiest user) every few milliseconds,
    in a thread, from the table; a lost connection (a database restart) is opened again."""

    def __init__(self, url: str, schema: str, job_type: str) -> None:
        self.url, self.schema, self.type = url, schema, job_type
        self.counts: list[int] = []  # running jobs of the type, in all
        self.per_user: list[int] = []  # running jobs of the type's busiest user
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        query = (
            "SELECT coalesce(sum(n), 0), coalesce(max(n) FILTER (WHERE user_id IS NOT NULL), 0) "
            f'FROM (SELECT user_id, count(*) AS n FROM "{self.schema}".job '
            "WHERE status = 'running' AND type = %s GROUP BY user_id) AS by_user"
        )
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=2) as conn:
                    while not self._stop.is_set():
                        row = conn.execute(query, [self.type]).fetchone()
                        assert row is not None
                        self.counts.append(int(row[0]))
                        self.per_user.append(int(row[1]))
                        time.sleep(0.005)
            except psycopg.OperationalError:
                time.sleep(0.1)  # the database is restarting: sample again once it is back

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@attrs.frozen
class Tick:
    """A schedule's tick, read back from the idempotency key of the job it enqueued."""

    at: dt.datetime  # the tick's time, from its idempotency key
    job_id: int
    created_at: dt.datetime

    @property
    def lag(self) -> float:
        """Seconds from the tick's time to its job's insert (the database's clock)."""
        return (self.created_at - self.at).total_seconds()


def schedule_ticks(url: str, schema: str, name: str) -> list[Tick]:
    """The jobs schedule `name` enqueued, in order of their ids."""
    prefix = f"schedule:{name}:"
    rows = sql(
        url,
        f'SELECT id, unique_key, created_at FROM "{schema}".job WHERE unique_key LIKE %s '
        "ORDER BY id",
        [prefix + "%"],
    )
    return [
        Tick(at=dt.datetime.fromisoformat(key.removeprefix(prefix)), job_id=i, created_at=c)
        for i, key, c in rows
    ]
