"""`jobrunner plugins` and `jobrunner schema`: the installed plugins (and `--app` ones), their
job types, and the JSON Schema (or TypeScript types) of each job type's payload."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from .._discovery import installed, load, load_app
from .._errors import ConfigurationError, JobrunnerError
from .._plugin import Handler, Plugin
from ._common import app_specs, plugin_names


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
    """Each job type's readiness here, its description and its payload's JSON Schema."""
    readiness = plugin.readiness(os.environ)
    return {
        t: {
            "ready": reason is None,
            "reason": reason,
            "description": plugin.handlers[t].description,
            "payload_schema": payload_schema(plugin.handlers[t]),
        }
        for t, reason in readiness.items()
    }


def payload_schema(handler: Handler) -> dict[str, Any] | None:
    """The JSON Schema of the handler's payload type; None when it declares none."""
    return handler.payload.json_schema() if handler.payload is not None else None


async def schema(args: argparse.Namespace) -> int:
    """Print the payload schemas of the job types named (all loaded ones by default)."""
    from .._discovery import check_unique, load_many

    loaded = load_many(plugin_names(args)) + [load_app(spec) for spec in app_specs(args)]
    check_unique(loaded)
    handlers = {t: h for p in loaded for t, h in p.handlers.items()}
    unknown = [t for t in args.types if t not in handlers]
    if unknown:
        known = ", ".join(sorted(handlers)) or "none"
        raise ConfigurationError(
            f"no loaded plugin has job type {', '.join(map(repr, unknown))} (loaded: {known}); "
            "name its plugin with --plugin or --app"
        )
    chosen = sorted(args.types or handlers)
    schemas = {t: payload_schema(handlers[t]) for t in chosen}
    if args.typescript:
        from .._typescript import typescript

        print(typescript(schemas), end="")
    else:
        print(json.dumps({t: s if s is not None else {} for t, s in schemas.items()}, indent=2))
    return 0
