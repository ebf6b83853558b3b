"""Argument parsing. Every `run` option comes from the Settings table."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import attrs

from .._settings import Settings, parse_duration, shown_default
from .._status import JobStatus
from .._version import __version__

# Settings that every command accepts (where the jobs are).
_CONNECTION = ("database_url", "schema", "table", "prepare")


def _checked(flag: str, parse: Callable[[Any], Any]) -> Callable[[str], str]:
    """An argparse type that refuses a value `parse` refuses, naming the flag, and keeps the
    text as given (Settings parses it once more, with the environment's values)."""

    def check(text: str) -> str:
        try:
            parse(text)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    check.__name__ = flag
    return check


def _add_settings(parser: argparse.ArgumentParser, names: tuple[str, ...] | None = None) -> None:
    for field in attrs.fields(Settings):
        if names is not None and field.name not in names:
            continue
        flag = "--" + field.name.replace("_", "-")
        env, default = field.metadata["env"], shown_default(field)
        help_text = field.metadata["help"] + (f" [env {env}" if env else " [")
        help_text += f"; default {default}]" if default is not None else "]"
        help_text = help_text.replace(" []", "").replace("%", "%%")
        if field.type in (bool, "bool"):
            parser.add_argument(
                flag,
                dest=field.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        else:
            parser.add_argument(
                flag,
                dest=field.name,
                default=None,
                type=_checked(flag, field.metadata["parse"]),
                metavar=field.metadata["metavar"],
                help=help_text,
            )


def _installed_plugins(**_: Any) -> list[str]:
    """Tab completion of --plugin: the installed plugins' names (none is imported)."""
    from .._discovery import installed

    return [p.name for p in installed()]


def _add_app(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--app",
        action="append",
        default=None,
        metavar="MODULE:PLUGIN",
        help="also load this project's own plugin, imported from the current directory, no "
        "packaging needed: a Plugin or a function returning one (repeatable) "
        "[env JOBRUNNER_APP, comma-separated]; alone, it loads no installed plugin",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobrunner",
        description="A PostgreSQL-backed job runner (SQLite when no DATABASE_URL is set).",
    )
    parser.add_argument("--version", action="version", version=f"jobrunner {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run a worker")
    plugin_flag = run.add_argument(
        "--plugin",
        "-p",
        action="append",
        default=None,
        metavar="NAME",
        help="load this plugin (repeatable) [env JOBRUNNER_PLUGINS, comma-separated]",
    )
    plugin_flag.completer = _installed_plugins  # type: ignore[attr-defined]
    _add_app(run)
    run.add_argument("--burst", action="store_true", help="exit 0 once no runnable job is left")
    run.add_argument(
        "--queue",
        action="append",
        dest="queue",
        metavar="Q",
        help="only claim jobs of this queue (repeatable)",
    )
    run.add_argument(
        "--reload",
        action="store_true",
        help="restart the worker when Python sources change (development)",
    )
    _add_settings(run)

    migrate = sub.add_parser("migrate", help="create or upgrade the job table")
    migrate.add_argument("--json", action="store_true", help='print {"applied": [...]}')
    _add_settings(migrate, _CONNECTION)

    enqueue = sub.add_parser("enqueue", help="add a job; prints its id")
    enqueue.add_argument("type", help="job type, e.g. diag.noop")
    enqueue.add_argument("--payload", default="{}", help="JSON payload (default {})")
    enqueue.add_argument("--user-id", default=None)
    enqueue.add_argument("--queue", default="default")
    enqueue.add_argument("--priority", type=int, default=0, help="higher runs first")
    enqueue.add_argument("--max-attempts", type=int, default=None)
    enqueue.add_argument(
        "--key",
        default=None,
        metavar="KEY",
        help="idempotency key: while a job with it is pending or running, print its id instead",
    )
    when = enqueue.add_mutually_exclusive_group()
    when.add_argument("--run-at", default=None, help="ISO 8601 time to run at")
    when.add_argument("--delay", default=None, help="run after this long (e.g. 30s, 5m)")
    enqueue.add_argument(
        "--wait", action="store_true", help="follow the job; print its result; exit 1 if it failed"
    )
    enqueue.add_argument(
        "--timeout",
        type=_checked("--timeout", parse_duration),
        default=None,
        metavar="DURATION",
        help="with --wait: give up after this long (exit 1; the job stays queued)",
    )
    _add_settings(enqueue, _CONNECTION)

    status = sub.add_parser("status", help="job counts by type and status")
    status.add_argument("--json", action="store_true")
    status.add_argument("--watch", action="store_true", help="refresh every --interval seconds")
    status.add_argument("--interval", type=float, default=2.0)
    _add_settings(status, _CONNECTION)

    jobs = sub.add_parser("jobs", help="inspect and manage jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)
    show = jobs_sub.add_parser("show", help="one job, with its children")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true")
    listing = jobs_sub.add_parser("list", help="recent jobs")
    listing.add_argument("--status", default=None, choices=[s.value for s in JobStatus])
    listing.add_argument("--type", default=None)
    listing.add_argument("--user-id", default=None)
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    retry = jobs_sub.add_parser("retry", help="put a finished job back in the queue")
    retry.add_argument("id", type=int)
    cancel = jobs_sub.add_parser("cancel", help="cancel a pending job or stop a running one")
    cancel.add_argument("id", type=int)
    for p in (show, listing, retry, cancel):
        _add_settings(p, _CONNECTION)

    prune = sub.add_parser("prune", help="delete finished jobs older than a given age")
    prune.add_argument("--older-than", required=True, help="e.g. 7d")
    prune.add_argument("--json", action="store_true", help='print {"deleted": N, ...}')
    _add_settings(prune, _CONNECTION)

    workers = sub.add_parser("workers", help="live workers, from their heartbeats")
    workers.add_argument("--all", action="store_true", help="include stale heartbeats")
    workers.add_argument("--json", action="store_true")
    _add_settings(workers, _CONNECTION)

    health = sub.add_parser(
        "healthcheck", help="exit 0 if this host's worker is alive (for Docker/Kubernetes probes)"
    )
    health.add_argument(
        "--max-age",
        type=float,
        default=30.0,
        help="a heartbeat older than this many seconds is unhealthy",
    )
    health.add_argument(
        "--probe",
        action="store_true",
        help="also run a diag.noop job through the queue (needs the diag plugin)",
    )
    health.add_argument("--timeout", type=float, default=20.0, help="seconds for --probe")
    health.add_argument(
        "--url", default=None, help="check this /healthz URL instead (with run --metrics-port)"
    )
    health.add_argument("--json", action="store_true", help="print the verdict as JSON")
    _add_settings(health, _CONNECTION)

    doctor = sub.add_parser("doctor", help="check database, workers, plugins, queue and host")
    doctor.add_argument("--json", action="store_true")
    _add_settings(doctor, _CONNECTION)

    from . import _budgets, _limits, _schedules

    for module in (_limits, _schedules, _budgets):
        module.add_commands(sub, lambda p: _add_settings(p, _CONNECTION))

    from ._dashboard import add_command as add_dashboard_command

    add_dashboard_command(sub, lambda p: _add_settings(p, _CONNECTION))

    plugins = sub.add_parser("plugins", help="installed plugins and their job types")
    plugins.add_argument("--json", action="store_true")
    _add_app(plugins)

    schema = sub.add_parser(
        "schema", help="the JSON Schema (or TypeScript types) of job types' payloads"
    )
    schema.add_argument("types", nargs="*", metavar="TYPE", help="job types (default: all)")
    schema.add_argument(
        "--typescript", action="store_true", help="print TypeScript type definitions instead"
    )
    schema.add_argument(
        "--plugin",
        "-p",
        action="append",
        default=None,
        metavar="NAME",
        help="load this plugin (repeatable) [env JOBRUNNER_PLUGINS; default: every installed one]",
    )
    _add_app(schema)

    completion = sub.add_parser(
        "completion", help="print the shell's tab-completion script for jobrunner"
    )
    completion.add_argument("shell", choices=["bash", "zsh", "fish"])
    return parser
