"""Run one scenario module in this (fresh) interpreter and print its result as one JSON line.

Usage: ``python -m benchmarks._measure benchmarks.scenarios.pgqueuer_drain --dsn … --jobs N``.
Prints ``{"metrics": {...}, "note": "..."}`` or ``{"error": "..."}`` (exit status 1).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import sys
import traceback

import anyio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("module")
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--timeout", type=float, required=True)
    args = parser.parse_args(argv)
    module = importlib.import_module(args.module)
    run = functools.partial(module.run, args.dsn, args.jobs, timeout=args.timeout)
    try:
        result = anyio.run(run)
    except Exception as exc:
        traceback.print_exc()
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    problem = check_result(result)
    if problem:
        print(json.dumps({"error": f"{args.module}.run {problem}"}), flush=True)
        return 1
    note = result.pop("note", None)
    print(json.dumps({"metrics": result, "note": note}), flush=True)
    return 0


def check_result(result: object) -> str | None:
    """Why ``result`` is not ``{name: number, …, "note": str}``, or None if it is."""
    if not isinstance(result, dict):
        return f"returned {type(result).__name__}, not a dict"
    for key, value in result.items():
        if key == "note":
            if not (value is None or isinstance(value, str)):
                return "returned a non-string note"
        elif isinstance(value, bool) or not isinstance(value, int | float):
            return f"returned {key!r}: {value!r:.80}, not a number"
    return None


if __name__ == "__main__":
    sys.exit(main())
