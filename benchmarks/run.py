"""Run every benchmark scenario for jobrunner and its peers and print one markdown table.

Usage: ``benchmarks/.venv/bin/python benchmarks/run.py [--jobs 20000] [--repeat 3]
[--only drain,latency,pgqueuer,…] [--timeout 150]`` (after ``benchmarks/setup.sh``).

Each measurement runs one scenario module in a fresh interpreter against a freshly created
database ``bench_<library>``; each figure is the median of ``--repeat`` measurements.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script: make the ``benchmarks`` package importable

from benchmarks import _db, _plain  # noqa: E402
from benchmarks._table import Measurement, Table, order_key  # noqa: E402

SCENARIO_DIR = ROOT / "benchmarks" / "scenarios"
RESULTS_DIR = ROOT / "benchmarks" / "results"
GRACE_SECONDS = 60.0  # on top of --timeout: setup, enqueueing, shutdown


def defines_run(path: Path) -> bool:
    """Whether a module defines a top-level ``run`` (checked without importing it)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef) and node.name == "run":
            return True
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "run" for t in targets):
                return True
    return False


def discover(directory: Path = SCENARIO_DIR) -> list[tuple[str, str, str]]:
    """``(library, scenario, module)`` for every ``<library>_<scenario>.py`` defining ``run``.

    The scenario is the part after the last ``_``; further underscores belong to the library
    and read as hyphens: ``jobrunner_cli_json_drain.py`` is ``jobrunner-cli-json``, ``drain``.
    """
    found = []
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_") or "_" not in path.stem or not defines_run(path):
            continue
        library, scenario = path.stem.rsplit("_", 1)
        found.append((library.replace("_", "-"), scenario, f"benchmarks.scenarios.{path.stem}"))
    return found


def select(found: list[tuple[str, str, str]], only: str | None) -> list[tuple[str, str, str]]:
    """Keep entries whose scenario, library, ``library_scenario`` or module is in ``only``."""
    if not only:
        return found
    wanted = {item.strip() for item in only.split(",") if item.strip()}
    return [f for f in found if wanted & {f[0], f[1], f"{f[0]}_{f[1]}", f[2].rsplit(".", 1)[1]}]


def measure(library: str, scenario: str, module: str, jobs: int, timeout: float) -> Measurement:
    """One measurement: fresh database, fresh interpreter, one JSON line back."""
    database = _db.database_for(library)
    dsn = _db.recreate_database(database)
    command = [sys.executable, "-m", "benchmarks._measure", module]
    command += ["--dsn", dsn, "--jobs", str(jobs), "--timeout", str(timeout)]
    base = {"library": library, "scenario": scenario}
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=timeout + GRACE_SECONDS
        )
    except subprocess.TimeoutExpired:
        return Measurement(**base, failure="timeout", detail=f"over {timeout + GRACE_SECONDS} s")
    return _parse(base, done)


def _parse(base: dict[str, str], done: subprocess.CompletedProcess[str]) -> Measurement:
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    try:
        answer = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = (done.stderr or done.stdout)[-300:].strip()
        return Measurement(**base, failure="error", detail=f"exit {done.returncode}: {tail}")
    error = answer.get("error")
    if error is None:
        return Measurement(**base, metrics=answer["metrics"], note=answer.get("note"))
    if error.startswith("NodeMissingError"):
        return Measurement(**base, failure="n/a", detail=error)
    if "timeout" in error.lower() or error.startswith("TimeoutError"):
        return Measurement(**base, failure="timeout", detail=error)
    return Measurement(**base, failure="error", detail=error)


def describe(m: Measurement, seconds: float) -> str:
    if m.failure:
        return f"{m.failure} ({m.detail})"
    shown = ", ".join(f"{k}={v:,.2f}" for k, v in m.metrics.items())
    return f"{shown} [{seconds:.1f} s]"


def run_all(plan: list[tuple[str, str, str]], args: argparse.Namespace) -> list[Measurement]:
    results = []
    plan = sorted(plan, key=lambda f: (order_key(f[1], _scenario_order()), f[0]))
    for repeat in range(1, args.repeat + 1):
        for library, scenario, module in plan:
            started = time.perf_counter()
            result = measure(library, scenario, module, args.jobs, args.timeout)
            results.append(result)
            elapsed = time.perf_counter() - started
            print(
                f"[{repeat}/{args.repeat}] {scenario:<8} {library:<19} {describe(result, elapsed)}",
                file=sys.stderr,
                flush=True,
            )
    return results


def _scenario_order() -> tuple[str, ...]:
    from benchmarks._table import SCENARIO_ORDER

    return SCENARIO_ORDER


def report(table: Table, args: argparse.Namespace, facts: dict[str, str]) -> str:
    lines = [
        f"## jobrunner and its peers: {facts['date']}",
        "",
        f"- machine: {os.cpu_count()} cores (os.cpu_count()), load average {facts['load']}",
        f"- PostgreSQL: {facts['version']}",
        f"- jobs: {args.jobs:,} per throughput scenario; each figure is the median of "
        f"{args.repeat} run(s); wall time {facts['wall']}",
        "",
        table.markdown(),
    ]
    notes = table.notes()
    if notes:
        lines += ["", "Notes:", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per throughput scenario")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--only", help="comma-separated scenarios, libraries or lib_scenario")
    parser.add_argument("--timeout", type=float, default=150.0, help="seconds per measurement")
    parser.add_argument("--keep", action="store_true", help="keep the bench_* databases")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = select(discover(), args.only)
    if not plan:
        print("no scenario matches --only", file=sys.stderr)
        return 2
    with _db.exclusive_run():
        if any(_plain.needed_by(library) for library, _, _ in plan):
            _plain.ensure()  # before the clock starts: pip may take a while
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        facts = {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}
        facts["version"] = _db.server_version()
        results = run_all(plan, args)
        facts["load"] = f"{load_before:.2f} at start, {os.getloadavg()[0]:.2f} at end"
        facts["wall"] = f"{(time.perf_counter() - started) / 60:.1f} min"
        if not args.keep:
            for library in sorted({library for library, _, _ in plan}):
                _db.drop_database(_db.database_for(library))
    text = report(Table(measurements=results), args, facts)
    print(text)
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    (RESULTS_DIR / f"{stamp}.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
