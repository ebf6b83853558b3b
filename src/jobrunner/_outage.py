"""Log a database outage once, back off while it lasts, and say when it ends."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import attrs

log = logging.getLogger("jobrunner.worker")


@attrs.define(eq=False)
class Outage:
    """Shared by a worker's loops so an outage is logged once, not once per poll."""

    max_delay: float = 30.0
    first_delay: float = 0.5
    on_failure: Callable[[str], None] | None = None
    since: float | None = attrs.field(default=None, init=False)
    failures: int = attrs.field(default=0, init=False)
    last_ok: float = attrs.field(factory=time.monotonic, init=False)

    def failed(self, doing: str, exc: BaseException) -> None:
        self.failures += 1
        if self.on_failure is not None:
            self.on_failure(doing)
        if self.since is None:
            self.since = time.monotonic()
            log.warning(
                "database unavailable while %s: %s; retrying with backoff up to %.0fs",
                doing,
                exc,
                self.max_delay,
                extra={"event": "outage"},
            )
        else:
            log.debug("database still unavailable while %s: %s", doing, exc)

    def recovered(self) -> None:
        self.last_ok = time.monotonic()
        if self.since is not None:
            log.warning(
                "database reachable again after %.1fs (%d failed calls)",
                time.monotonic() - self.since,
                self.failures,
                extra={"event": "recovered"},
            )
            self.since = None
            self.failures = 0

    @property
    def down(self) -> bool:
        return self.since is not None

    def delay(self) -> float:
        """How long to wait before the next try: grows from first_delay to max_delay."""
        return min(self.first_delay * 2.0 ** max(self.failures - 1, 0), self.max_delay)
