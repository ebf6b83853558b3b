"""Wake-ups without LISTEN/NOTIFY.

In one process, listeners register under the database file's resolved path and are called
directly after a commit. Across processes, writers bump a counter row in their transaction;
a listener polls `PRAGMA data_version` (which changes only when another connection committed,
and costs no I/O) and reads the counters only then.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import anyio
import attrs

from .._backend import Wakeup
from .._errors import ConfigurationError, DatabaseError
from ._thread import ThreadedConnection

Wake = Callable[[Wakeup], None]

_lock = threading.Lock()
_listeners: dict[str, list[tuple[Wake, int]]] = {}


@contextmanager
def registered(key: str, wake: Wake) -> Iterator[None]:
    """Deliver in-process wake-ups for the file `key` to `wake` while the block runs."""
    entry = (wake, threading.get_ident())
    with _lock:
        _listeners.setdefault(key, []).append(entry)
    try:
        yield
    finally:
        with _lock:
            entries = _listeners[key]
            entries.remove(entry)
            if not entries:
                del _listeners[key]


def deliver(key: str, wakeup: Wakeup) -> None:
    """Call the listeners of `key` that run in this thread (this event loop) at once.

    Listeners on other threads run other event loops, where calling them is unsafe; their
    poller sees the commit within one poll interval instead.
    """
    me = threading.get_ident()
    with _lock:
        targets = [wake for wake, thread in _listeners.get(key, ()) if thread == me]
    for wake in targets:
        wake(wakeup)


@attrs.define
class Poller:
    """Turns changes committed by other connections into wake-ups (run on its own connection)."""

    read_counters: str
    read_cancelled: str
    _version: int | None = attrs.field(default=None, init=False)
    _counters: tuple[int, int, int] = attrs.field(default=(0, 0, 0), init=False)

    def start(self, conn: sqlite3.Connection) -> None:
        self._version = _data_version(conn)
        self._counters = self._read(conn)

    def poll(self, conn: sqlite3.Connection) -> list[Wakeup]:
        version = _data_version(conn)
        if version == self._version:
            return []
        self._version = version
        (jobs, cancels, schedules), old = self._read(conn), self._counters
        self._counters = (jobs, cancels, schedules)
        found = [Wakeup()] if jobs != old[0] else []
        if cancels != old[1]:
            found += [Wakeup(cancel_job_id=r[0]) for r in conn.execute(self.read_cancelled)]
        if schedules != old[2]:
            found.append(Wakeup(schedules=True))
        return found

    def _read(self, conn: sqlite3.Connection) -> tuple[int, int, int]:
        found = conn.execute(self.read_counters).fetchall()
        return (found[0][0], found[0][1], found[0][2]) if found else (0, 0, 0)


def _data_version(conn: sqlite3.Connection) -> int:
    [(version,)] = conn.execute("PRAGMA data_version").fetchall()
    return int(version)


async def listen(
    db: ThreadedConnection, poller: Poller, *, key: str, interval: float, wake: Wake
) -> None:
    """Call `wake` for in-process deliveries at once and for the poller's finds every
    `interval` seconds, until cancelled."""
    try:
        await db.open()
    except ConfigurationError as exc:
        raise DatabaseError(f"cannot listen for wake-ups: {exc}") from None
    try:
        with registered(key, wake):
            await db.run(poller.start)
            wake(Wakeup())  # jobs may have arrived while we were not listening
            while True:
                await anyio.sleep(interval)
                for wakeup in await db.run(poller.poll):
                    wake(wakeup)
    finally:
        await db.aclose()
