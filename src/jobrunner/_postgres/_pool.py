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
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import attrs
import psycopg
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
    _pool: AsyncConnectionPool[Connection] | None = attrs.field(default=None, init=False)

    @property
    def connect_seconds(self) -> int:
        """libpq takes whole seconds (at least 2: it rounds smaller values up to 2)."""
        return max(2, math.ceil(self.connect_timeout))

    async def open(self) -> None:
        if self._pool is not None:
            return
        kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": self.connect_seconds}
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

    async def run(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """`await work(connection)` with a pooled connection; psycopg's errors become
        jobrunner's. Run again, unprepared, when prepared statements collide."""
        try:
            return await self._run(work)
        except _PreparedStatementsCollide:
            return await self._run(work)

    async def _run(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        # getconn/putconn rather than the pool's `connection()`: that context manager (and the
        # connection's own, inside it) costs more than the statement's Python side. A
        # connection returned mid-transaction or mid-query is rolled back or closed by the
        # pool itself.
        if self._pool is None:
            await self.open()
        pool = self._pool
        assert pool is not None
        try:
            conn = await pool.getconn()
            try:
                if not self.prepare:
                    conn.prepare_threshold = None
                return await work(conn)
            finally:
                await pool.putconn(conn)
        except PoolTimeout:
            raise DatabaseError(
                f"PostgreSQL is unreachable: {redact(await self._why_unreachable(), self.url)}"
            ) from None
        except psycopg.Error as exc:
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
        return await psycopg.AsyncConnection.connect(
            url or self.url, autocommit=True, connect_timeout=self.connect_seconds
        )

    async def _why_unreachable(self) -> str:
        """The pool only says it timed out: one direct attempt tells the real cause."""
        try:
            conn = await self.connect_direct()
        except psycopg.Error as exc:
            return str(exc).strip() or type(exc).__name__
        await conn.close()
        return "no connection became free in time (the pool is exhausted)"
