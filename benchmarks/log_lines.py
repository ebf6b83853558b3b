"""Benchmark the worker's per-job log lines: CPU per line through the CLI's real log handler.

Run with the project's venv:  .venv/bin/python benchmarks/log_lines.py [--lines 20000] [--runs 3]

Each job writes two lines (`job N diag.noop claimed (attempt 1)` and `job N diag.noop
completed in 0.000s`), through a fresh job logger adapter per job, with the job's fields as
`extra`, as a handler's `ctx.log` does. The handler is the one `setup_logging` installs,
writing to stderr, which is redirected to a temporary file; a few secrets are in the
environment, as in production. It prints µs of process CPU per line (best of `--runs`) for
text lines, JSON lines, and a disabled level (the floor: the calls the worker makes when info
lines are off); and, for comparison, the same lines through the worker's own job-line helper,
which builds the record directly (at info the worker writes one such line per job: the claimed
line is at debug). Target: ≤ 5 µs per line for text and JSON.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time

SECRETS = {
    "DATABASE_URL": "postgresql://app:s3cr3t-db-pass@db.internal:5432/app",
    "OPENAI_API_KEY": "sk-proj-benchmarkkey0123456789",
    "FAL_KEY": "falid:falsecretbenchmark",
    "R2_SECRET_ACCESS_KEY": "r2secretbenchmark0123",
}
os.environ.update(SECRETS)

from jobrunner._context import JobLogAdapter  # noqa: E402
from jobrunner._logs import setup_logging  # noqa: E402

JOB_TYPE = "diag.noop"


def emit_jobs(lines: int) -> None:
    """`lines` log lines, two per job, the way the worker writes them."""
    job_log = logging.getLogger("jobrunner.job")
    for job_id in range(1, lines // 2 + 1):
        log = JobLogAdapter(
            job_log, {"job_id": job_id, "job_type": JOB_TYPE, "attempt": 1, "user_id": "u1"}
        )
        log.info("job %s %s claimed (attempt %s)", job_id, JOB_TYPE, 1, extra={"event": "claimed"})
        took = 0.0001
        log.info(
            "job %s %s completed in %.3fs",
            job_id,
            JOB_TYPE,
            took,
            extra={"event": "completed", "duration": took},
        )


def emit_jobs_directly(lines: int) -> None:
    """The same lines through the worker's own job-line helper (a record built directly: no
    adapter, no `extra` checks), which the worker uses for its job lines."""
    from jobrunner import Job
    from jobrunner._joblog import _line

    for job_id in range(1, lines // 2 + 1):
        job = Job(id=job_id, type=JOB_TYPE, attempts=1, user_id="u1")
        _line(
            logging.INFO,
            job,
            "job %s %s claimed (attempt %s)",
            (job_id, JOB_TYPE, 1),
            event="claimed",
        )
        took = 0.0001
        _line(
            logging.INFO,
            job,
            "job %s %s completed in %.3fs",
            (job_id, JOB_TYPE, took),
            event="completed",
            duration=took,
        )


MODES = {
    "text": ("info", "text", emit_jobs),
    "json": ("info", "json", emit_jobs),
    "floor": ("warning", "text", emit_jobs),
    "text, record built directly": ("info", "text", emit_jobs_directly),
    "json, record built directly": ("info", "json", emit_jobs_directly),
}


def measure(mode: str, lines: int) -> float:
    """µs of process CPU per line, flushing included."""
    level, fmt, emit = MODES[mode]
    setup_logging(level, fmt)
    emit(200)  # warm up
    start = time.process_time()
    emit(lines)
    for handler in logging.getLogger().handlers:
        handler.flush()
    return (time.process_time() - start) / lines * 1e6


def leaked(fmt: str) -> bytes:
    """What a line naming every secret writes, from the same handler."""
    with tempfile.TemporaryFile() as sink:
        stream = open(sink.fileno(), "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        setup_logging("info", fmt, stream=stream)
        logging.getLogger("jobrunner.job").warning("secrets: %s", " ".join(SECRETS.values()))
        stream.flush()
        sink.seek(0)
        return sink.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)  # stderr to a file, as under PM2 or systemd
        try:
            results = {m: min(measure(m, args.lines) for _ in range(args.runs)) for m in MODES}
        finally:
            logging.shutdown()
            os.dup2(saved, 2)
    needles = [v.encode() for k, v in SECRETS.items() if k != "DATABASE_URL"] + [b"s3cr3t-db-pass"]
    for fmt in ("text", "json"):
        written = leaked(fmt)
        if b"***" not in written or any(needle in written for needle in needles):
            sys.exit(f"a secret reached the {fmt} log: {written!r}")
    print(f"python {sys.version.split()[0]}, {args.lines} lines per run, best of {args.runs}")
    for mode, us in results.items():
        print(f"{mode:>27}: {us:6.2f} µs per line")


if __name__ == "__main__":
    main()
