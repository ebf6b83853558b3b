"""Helpers shared by the commands."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

import attrs

from .._discovery import installed
from .._plugin import Plugin
from .._settings import Settings

if TYPE_CHECKING:
    from .._runner import Runner


def settings_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The Settings values given as flags (None = not given)."""
    names = {f.name for f in attrs.fields(Settings)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def plugin_names(args: argparse.Namespace) -> list[str]:
    """--plugin flags, else JOBRUNNER_PLUGINS, else every installed plugin, unless the project's
    own plugins are given (--app or JOBRUNNER_APP): then only those."""
    if args.plugin:
        return [name for value in args.plugin for name in value.split(",") if name]
    env = os.environ.get("JOBRUNNER_PLUGINS", "")
    if env.strip():
        return [name.strip() for name in env.split(",") if name.strip()]
    if app_specs(args):
        return []
    return [p.name for p in installed()]


def app_specs(args: argparse.Namespace) -> list[str]:
    """--app flags (repeatable, comma-separated), else JOBRUNNER_APP: `module:attribute` each."""
    given = getattr(args, "app", None) or [os.environ.get("JOBRUNNER_APP", "")]
    return list(dict.fromkeys(s.strip() for value in given for s in value.split(",") if s.strip()))


def load_plugins(args: argparse.Namespace) -> list[str | Plugin]:
    """What `--plugin` and `--app` ask for, as `Runner(plugins=…)` takes it: installed plugins
    by name, the project's own loaded from their modules."""
    from .._discovery import load_app

    return [*plugin_names(args), *(load_app(spec) for spec in app_specs(args))]


def management_runner(args: argparse.Namespace) -> Runner:
    """A runner for a management command: no worker, and no migration."""
    from .._runner import Runner  # not for `--help`: the parser imports the command modules

    return Runner(worker=False, auto_migrate=False, **settings_kwargs(args))


SLOW_DRIVER = (
    "psycopg runs its pure-Python implementation here (no psycopg-binary or psycopg-c "
    "installed): the worker spends about three times the CPU per job; "
    "`pip install 'jobrunner[binary]'` (or psycopg[c] against your libpq) fixes it"
)


def slow_driver(database_url: str | None) -> str | None:
    """`SLOW_DRIVER` when PostgreSQL is used through psycopg's pure-Python implementation."""
    if not database_url or not database_url.startswith(("postgres://", "postgresql://")):
        return None
    from psycopg import pq

    return SLOW_DRIVER if pq.__impl__ == "python" else None
