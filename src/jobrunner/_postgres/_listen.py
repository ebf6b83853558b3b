"""The LISTEN connection, which proves it is alive.

Every `check` seconds it sends a notification to a channel of its own
(`jobrunner_alive_<server pid>`, so no other worker sees it) and must hear it within `answer`
seconds. When it does not (its packets are being dropped with no reset ever coming, or a
pooler in transaction mode moved it to another server connection), its socket is shut down
and a new connection opened at once, with one warning; the worker no longer waits for the
poll interval for good. A connection that cannot be opened, or that the server closed, is
raised as DatabaseError (the worker's outage handling takes over).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import attrs
import psycopg
from psycopg import sql

from .._backend import Wakeup
from .._errors import DatabaseError
from .._secrets import redact
from ._pool import Connection, sever
from ._support import _parse_wakeup

log = logging.getLogger("jobrunner.postgres")


class _Silent(Exception):
    """The connection gave no sign of life in time (it was shut down)."""


@attrs.define(eq=False)
class Listener:
    connect: Callable[[str], Awaitable[Connection]]
    url: str
    channel: str  # where the workers are woken
    check: float = 10.0  # seconds between proofs of life
    answer: float = 5.0  # seconds a statement, or our own notification, may take
    _silent: int = attrs.field(default=0, init=False)  # connections silent in a row

    async def run(self, wake: Callable[[Wakeup], None]) -> None:
        """Deliver wake-ups until cancelled, replacing a connection that falls silent; raise
        DatabaseError when one cannot be opened or the server closes it."""
        while True:
            try:
                conn = await self.connect(self.url)
            except psycopg.OperationalError as exc:
                raise DatabaseError(f"cannot LISTEN: {redact(str(exc), self.url)}") from None
            try:
                await self._listen_on(conn, wake)
            except _Silent as silent:
                self._silent += 1
                if self._silent == 1:  # one warning per spell of silent connections
                    log.warning(
                        "the LISTEN connection %s (its packets are being dropped, or a pooler "
                        "moved it): opening a new one",
                        silent,
                        extra={"event": "listen_replaced"},
                    )
                else:  # silent again at once (a pooler?): no reconnecting in a tight loop
                    await anyio.sleep(self.check)
            except psycopg.OperationalError as exc:
                raise DatabaseError(
                    f"LISTEN connection lost: {redact(str(exc), self.url)}"
                ) from None
            finally:
                await conn.close()

    async def _listen_on(self, conn: Connection, wake: Callable[[Wakeup], None]) -> None:
        alive = f"jobrunner_alive_{conn.info.backend_pid}"
        await self._bounded(conn, self._listen_to(conn, (self.channel, alive)))
        wake(Wakeup())  # jobs may have arrived while we were not listening
        await self._prove_alive(conn, alive, wake)
        while True:
            async for note in conn.notifies(timeout=self.check):
                if note.channel != alive:
                    wake(_parse_wakeup(note.payload))
            await self._prove_alive(conn, alive, wake)

    @staticmethod
    async def _listen_to(conn: Connection, channels: tuple[str, ...]) -> None:
        for channel in channels:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))

    async def _prove_alive(
        self, conn: Connection, alive: str, wake: Callable[[Wakeup], None]
    ) -> None:
        """Notify our own channel and wait to hear it; other notifications are delivered
        meanwhile as usual."""
        deadline = time.monotonic() + self.answer
        await self._bounded(conn, conn.execute("SELECT pg_notify(%s, '')", [alive]))
        while (left := deadline - time.monotonic()) > 0:
            # Closed on return: the generator holds the connection's lock while open.
            async with contextlib.aclosing(conn.notifies(timeout=left)) as notes:
                async for note in notes:
                    if note.channel == alive:
                        self._silent = 0
                        return
                    wake(_parse_wakeup(note.payload))
        sever(conn)
        raise _Silent(f"did not hear its own notification within {self.answer:g}s")

    async def _bounded(self, conn: Connection, call: Awaitable[Any]) -> None:
        """Await `call`, shutting the connection down when no answer came within `answer`."""
        severed: list[bool] = []
        timer = asyncio.get_running_loop().call_later(self.answer, sever, conn, severed)
        try:
            await call
        except psycopg.OperationalError:
            if not severed:
                raise
            raise _Silent(f"got no answer within {self.answer:g}s") from None
        finally:
            timer.cancel()
