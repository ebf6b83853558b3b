"""The PostgreSQL backend's connections: a psycopg pool, errors turned into jobrunner's, and
statement preparation that gives way to a pooler in transaction mode.

psycopg prepares a statement on the server the fifth time a connection runs it (at once for
those the backend asks to prepare), under a name such as `_pg3_0`. Behind PgBouncer in
transaction mode (before 1.21) a client's next transaction may run on another server
connection, where that name is unknown or belongs to another client: the server answers
"prepared statement … already exists" or "… does not exist". The first such answer turns
preparation off for the whole pool, with one warning, and the unit of work is run again
(the failed statement had not run). `prepare=False` (`JOBRUNNER_PREPARE=false`) starts
that way.

A connection whose packets are silently dropped (a NAT that forgot it, a database that failed
over: no reset ever comes) would leave a statement waiting for good. So every connection asks
for TCP keepalives and a TCP user timeout (unless the URL sets its own), and with
`statement_timeout` set a unit of work that gets no answer in time has its socket shut down:
psycopg then fails it at once, the pool drops that connection and opens a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import attrs
import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from .._errors import DatabaseError, QueryError, SchemaError
from .._secrets import redact
from ._support import _configure

log = logging.getLogger("jobrunner.postgres")
T = TypeVar("T")
Connection = psycopg.AsyncConnection[Any]

# The server's answers when prepared statements meet a pooler that moves clients between
# server connections.
_COLLISIONS = (psycopg.errors.DuplicatePreparedStatement, psycopg.errors.InvalidSqlStatementName)


def _collision(exc: psycopg.Error) -> bool:
    """Whether the server's answer means another client's prepared statements are on this
    server connection (or ours are not)."""
    if isinstance(exc, _COLLISIONS):
        return True
    # "bind message supplies 0 parameters, but prepared statement "_pg3_0" requires 2": our
    # statement's name, prepared by another client on this server connection.
    return isinstance(exc, psycopg.errors.ProtocolViolation) and "prepared statement" in str(exc)


# TCP settings of every connection, unless its URL names them: a silent peer is noticed
# within about idle + interval * count seconds, and data unacknowledged for
# tcp_user_timeout (ms) ends the connection.
TCP_DEFAULTS = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}


def tcp_defaults(url: str) -> dict[str, Any]:
    """The TCP settings the URL leaves to us (a URL libpq cannot parse gets none: libpq
    itself reports what is wrong with it when connecting)."""
    try:
        given = conninfo_to_dict(url)
    except psycopg.Error:
        return {}
    if str(given.get("host", "")).startswith("/"):
        return {}  # a Unix socket: no TCP
    return {k: v for k, v in TCP_DEFAULTS.items() if k not in given}


def sever(conn: Connection, severed: list[bool] | None = None) -> None:
    """Shut the connection's socket down (both ways), so whatever waits on it fails now
    instead of waiting for an answer that cannot come. Nothing waits for the network."""
    if severed is not None:
        severed.append(True)
    try:
        fd = conn.pgconn.socket
    except psycopg.Error:
        return  # closed already
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as sock:
        sock.shutdown(socket.SHUT_RDWR)


def _translate(exc: psycopg.Error, url: str) -> Exception:
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return SchemaError(
            f"the job table is missing ({exc.diag.message_primary}); run `jobrunner migrate`"
        )
    if isinstance(exc, psycopg.OperationalError):
        return DatabaseError(f"PostgreSQL error: {redact(str(exc), url)}")
    return QueryError(f"PostgreSQL refused: {redact(str(exc), url)}")


class _PreparedStatementsCollide(Exception):
    """Raised inside `run` to try the unit of work again without preparation."""


@attrs.define(eq=False)
class Pool:
    url: str
    size: int = 10
    prepare: bool = True
    connect_timeout: float = 5.0
    #: Seconds a unit of work may wait for PostgreSQL before its connection is abandoned;
    #: None: no bound (set by a worker, from its leases).
    statement_timeout: float | None = None
    _pool: AsyncConnectionPool[Connection] | None = attrs.field(default=None, init=False)

    @property
    def connect_seconds(self) -> int:
        """libpq takes whole seconds (at least 2: it rounds smaller values up to 2)."""
        return max(2, math.ceil(self.connect_timeout))

    async def open(self) -> None:
        if self._pool is not None:
            return
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": self.connect_seconds,
            **tcp_defaults(self.url),
        }
        if not self.prepare:
            kwargs["prepare_threshold"] = None
        self._pool = AsyncConnectionPool(
            self.url,
            configure=_configure,
            min_size=1,
            max_size=self.size,
            kwargs=kwargs,
            open=False,
            timeout=self.connect_timeout,
            reconnect_timeout=0,
        )
        await self._pool.open(wait=False)

    async def aclose(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def run(self, work: Callable[[Connection], Awaitable[T]], *, bounded: bool = True) -> T:
        """`await work(connection)` with a pooled connection; psycopg's errors become
        jobrunner's. Run again, unprepared, when prepared statements collide. `bounded`:
        within `statement_timeout` (off for work whose size the caller decides, such as
        migrations and bulk inserts)."""
        limit = self.statement_timeout if bounded else None
        try:
            return await self._run(work, limit)
        except _PreparedStatementsCollide:
            return await self._run(work, limit)

    async def _run(self, work: Callable[[Connection], Awaitable[T]], limit: float | None) -> T:
        # getconn/putconn rather than the pool's `connection()`: that context manager (and the
        # connection's own, inside it) costs more than the statement's Python side. A
        # connection returned mid-transaction or mid-query is rolled back or closed by the
        # pool itself.
        if self._pool is None:
            await self.open()
        pool = self._pool
        assert pool is not None
        timer: asyncio.TimerHandle | None = None
        severed: list[bool] = []
        try:
            conn = await pool.getconn()
            try:
                if not self.prepare:
                    conn.prepare_threshold = None
                if limit is not None:
                    timer = asyncio.get_running_loop().call_later(limit, sever, conn, severed)
                return await work(conn)
            finally:
                if timer is not None:
                    timer.cancel()
                await pool.putconn(conn)
        except PoolTimeout:
            raise DatabaseError(
                f"PostgreSQL is unreachable: {redact(await self._why_unreachable(), self.url)}"
            ) from None
        except psycopg.Error as exc:
            if severed:
                raise DatabaseError(
                    f"PostgreSQL did not answer within {limit:g}s: the connection was "
                    "abandoned (a network that drops packets, or an overloaded server)"
                ) from None
            if not _collision(exc):
                raise _translate(exc, self.url) from None
            if not self.prepare:
                raise QueryError(f"PostgreSQL refused: {redact(str(exc), self.url)}") from None
            self.prepare = False
            log.warning(
                "PostgreSQL says %s: a connection pooler in transaction mode (such as "
                "PgBouncer before 1.21) is moving this process between server connections; "
                "prepared statements are now off (set JOBRUNNER_PREPARE=false to start so)",
                exc.diag.message_primary or type(exc).__name__,
                extra={"event": "prepare_off"},
            )
            raise _PreparedStatementsCollide from None

    async def connect_direct(self, url: str | None = None) -> Connection:
        """A connection of its own, outside the pool (e.g. for LISTEN)."""
        url = url or self.url
        return await psycopg.AsyncConnection.connect(
            url, autocommit=True, connect_timeout=self.connect_seconds, **tcp_defaults(url)
        )

    async def _why_unreachable(self) -> str:
        """The pool only says it timed out: one direct attempt tells the real cause."""
        try:
            conn = await self.connect_direct()
        except psycopg.Error as exc:
            return str(exc).strip() or type(exc).__name__
        await conn.close()
        return "no connection became free in time (the pool is exhausted)"
