"""Helpers shared by the commands."""

from __future__ import annotations

import argparse
from typing import Any

import attrs

from .._settings import Settings


def settings_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The Settings values given as flags (None = not given)."""
    names = {f.name for f in attrs.fields(Settings)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}
