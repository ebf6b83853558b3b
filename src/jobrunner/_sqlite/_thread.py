"""A sqlite3 connection used from worker threads, one call at a time.

sqlite3 calls block, so each runs in a worker thread and the event loop never stalls; a
CapacityLimiter of 1 keeps calls on one connection in sequence (sqlite3 connections are not
safe to share between threads at once). Only anyio is used: asyncio and trio both work.
A call cancelled from outside still finishes in its thread, so a transaction always ends in
COMMIT or ROLLBACK, never half-way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio
import attrs

from .._errors import DatabaseError
from ._files import FAILURES, connect, translate

T = TypeVar("T")


@attrs.define
class ThreadedConnection:
    """One connection to `path`, opened on first use."""

    path: Path
    busy_timeout: float
    _conn: sqlite3.Connection | None = attrs.field(default=None, init=False)
    _limiter: anyio.CapacityLimiter | None = attrs.field(default=None, init=False)

    async def open(self) -> None:
        if self._conn is not None:
            return
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(1)
        # Through the limiter, so two tasks opening at once make one connection.
        await anyio.to_thread.run_sync(self._connect_once, limiter=self._limiter)

    def _connect_once(self) -> None:
        if self._conn is None:
            self._conn = connect(self.path, busy_timeout=self.busy_timeout)

    async def aclose(self) -> None:
        if self._conn is None:
            return
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._close, limiter=self._limiter)

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(connection)` in a worker thread; sqlite3 errors become DatabaseError."""
        await self.open()
        return await anyio.to_thread.run_sync(self._call, fn, limiter=self._limiter)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            raise DatabaseError(f"the SQLite connection to {self.path} is closed")
        try:
            return fn(self._conn)
        except FAILURES as exc:
            raise translate(exc, self.path) from None
