"""Signals that arrive while a worker is still starting up, kept for when it can hear them."""

from __future__ import annotations

EARLY_SIGNALS: list[int] = []


def remember_early(signum: int, frame: object) -> None:
    """A signal handler: remember the signal instead of dying of it."""
    EARLY_SIGNALS.append(signum)
