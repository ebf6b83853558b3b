"""Helpers shared by the commands."""

from __future__ import annotations

import argparse
import os
from typing import Any

import attrs

from .._discovery import installed
from .._settings import Settings


def settings_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The Settings values given as flags (None = not given)."""
    names = {f.name for f in attrs.fields(Settings)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def plugin_names(args: argparse.Namespace) -> list[str]:
    """--plugin flags, else JOBRUNNER_PLUGINS, else every installed plugin."""
    if args.plugin:
        return [name for value in args.plugin for name in value.split(",") if name]
    env = os.environ.get("JOBRUNNER_PLUGINS", "")
    if env.strip():
        return [name.strip() for name in env.split(",") if name.strip()]
    return [p.name for p in installed()]
