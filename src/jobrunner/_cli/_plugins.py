"""`jobrunner plugins`: the installed plugins (and `--app` ones) with their job types."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from .._discovery import installed, load, load_app
from .._errors import JobrunnerError
from .._plugin import Plugin
from ._common import app_specs


async def plugins(args: argparse.Namespace) -> int:
    rows = []
    for meta in installed():
        row: dict[str, Any] = {
            "name": meta.name,
            "distribution": meta.distribution,
            "version": meta.version,
        }
        try:
            plugin = load(meta.name)
        except JobrunnerError as exc:
            row["error"] = str(exc)
            row["job_types"] = {}
        else:
            row["job_types"] = job_types(plugin)
        rows.append(row)
    for spec in app_specs(args):
        plugin = load_app(spec)  # asked for by name: a broken one stops the command
        rows.append({"name": plugin.name, "app": spec, "job_types": job_types(plugin)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        installed_as = f"{row.get('distribution')} {row.get('version')}"
        origin = f"--app {row['app']}" if "app" in row else installed_as
        print(f"{row['name']}  ({origin})")
        if "error" in row:
            print(f"  BROKEN: {row['error']}")
        for job_type, state in row["job_types"].items():
            mark = "ready" if state["ready"] else f"not ready: {state['reason']}"
            print(f"  {job_type:<28} {mark}")
    return 0


def job_types(plugin: Plugin) -> dict[str, dict[str, Any]]:
    """Each job type's readiness here and its description."""
    readiness = plugin.readiness(os.environ)
    return {
        t: {
            "ready": reason is None,
            "reason": reason,
            "description": plugin.handlers[t].description,
        }
        for t, reason in readiness.items()
    }
