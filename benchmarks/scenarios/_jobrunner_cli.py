"""jobrunner as users run it: the ``jobrunner run`` command of a plain install.

The worker is the real console script of ``benchmarks/.venv-plain`` (``_plain.py``: the current
source, ``pip install``-ed with the ``binary`` extra as every documented install does, with the
harness's ``bench`` plugin from ``benchmarks/plugin``), started as ``env DATABASE_URL=…
jobrunner run --plugin bench …`` with the CLI's default logging (level info, text), its stderr
going to a file. The plugin reports to the harness on stdout. Variants: ``log_format="json"``
sets ``JOBRUNNER_LOG_FORMAT=json``; ``log_level="warning"`` passes ``--log-level warning``;
``psycopg_impl="python"`` sets ``PSYCOPG_IMPL=python``, psycopg's pure-Python implementation,
which is what an install without the ``binary`` extra gets on a machine with its own libpq.
Enqueueing, schema install and the final check go through the harness's own jobrunner, as in
``_jobrunner.py``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs

from benchmarks import _plain
from benchmarks._scenarios import Result, Scenario
from benchmarks.scenarios._jobrunner import JobrunnerAdapter
from jobrunner import NewJob, Runner

DRAIN_CONCURRENCY = 500  # what users set for short jobs (the reproduction)
INHERITED = ("DATABASE_URL", "SENTRY_DSN")  # besides JOBRUNNER_*: the CLI reads them all
NOTE = (
    "`jobrunner run` rows: the `jobrunner` script of a plain install of the current source "
    "(`pip install '.[binary]'`, as the docs install it) with `--plugin bench`, stderr to a "
    "file; drain "
    f"`--burst --concurrency {DRAIN_CONCURRENCY}`, sleep `--burst --concurrency 200`, latency "
    "an idle worker at the default concurrency; log lines/job counts all its stderr lines"
)


@attrs.frozen
class CliEnqueuer:
    runner: Runner
    job_type: str

    async def enqueue(self, payload: dict[str, Any]) -> None:
        await self.runner.enqueue(self.job_type, payload)

    async def enqueue_many(self, count: int) -> None:
        await self.runner.enqueue_many([NewJob(type=self.job_type) for _ in range(count)])


@attrs.frozen(kw_only=True)
class JobrunnerCliAdapter:
    """``handler`` picks the job type its enqueuer adds (``bench.noop``, ``bench.sleep``,
    ``bench.latency``): the CLI runs whatever type it finds, so the scenario must match."""

    name: str = "jobrunner-cli"
    handler: str = "noop"
    log_format: str | None = None  # None: the CLI's default (text)
    log_level: str | None = None  # None: the CLI's default (info)
    psycopg_impl: str | None = None  # None: the fastest psycopg finds (binary here)
    jobs_cap: int | None = None

    async def install(self, dsn: str) -> None:
        await JobrunnerAdapter().install(dsn)

    @asynccontextmanager
    async def enqueuer(self, dsn: str) -> AsyncIterator[CliEnqueuer]:
        async with Runner(dsn, worker=False, env={}) as runner:
            yield CliEnqueuer(runner, f"bench.{self.handler}")

    def worker_command(
        self, dsn: str, *, handler: str, expect: int, concurrency: int | None
    ) -> list[str]:
        if handler != self.handler:
            raise ValueError(f"{self.name}: adapter enqueues bench.{self.handler}, not {handler}")
        script = _plain.require()
        inherited = [n for n in os.environ if n.startswith("JOBRUNNER_") or n in INHERITED]
        env = ["env", *(f"--unset={name}" for name in sorted(inherited)), f"DATABASE_URL={dsn}"]
        if self.log_format:
            env.append(f"JOBRUNNER_LOG_FORMAT={self.log_format}")
        if self.psycopg_impl:
            env.append(f"PSYCOPG_IMPL={self.psycopg_impl}")
        command = [*env, str(script), "run", "--plugin", "bench"]
        if expect:  # a throughput run: work through the queue, then exit
            command += ["--burst", "--concurrency", str(concurrency or DRAIN_CONCURRENCY)]
        if self.log_level:
            command += ["--log-level", self.log_level]
        return command

    async def unfinished(self, dsn: str) -> int:
        return await JobrunnerAdapter().unfinished(dsn)


def noted(scenario: Scenario) -> Scenario:
    """``scenario`` with the note that says how the ``jobrunner run`` rows were run."""

    async def run(dsn: str, jobs: int, **options: Any) -> Result:
        result = await scenario(dsn, jobs, **options)
        return {**result, "note": NOTE}

    return run
