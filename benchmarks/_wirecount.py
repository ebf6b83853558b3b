"""A counting TCP proxy in front of PostgreSQL: how many statements a process sends.

Every ``Query`` ('Q', simple protocol) and ``Execute`` ('E', extended protocol) message from
client to server counts as one statement. This is exact and immediate, unlike the server's
``pg_stat_database`` counters, which autovacuum also feeds and which backends publish up to
10 s late. Requires a plain connection: the proxy sits on 127.0.0.1 and the benchmark server
has ``ssl = off`` (an SSL/GSS request is answered "N" by the server and stays readable).
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import anyio
import attrs
from anyio.abc import ByteStream, SocketStream

from benchmarks import _db

COUNTED = frozenset(b"QE")
UNTYPED_REQUESTS = (80877103, 80877104)  # SSLRequest, GSSENCRequest: more untyped follow


@attrs.define
class FrontendParser:
    """Splits the client→server byte stream into messages and counts statements."""

    statements: int = 0
    _startup: bool = True
    _buffer: bytearray = attrs.field(factory=bytearray)

    def feed(self, data: bytes) -> int:
        """Consume ``data``; return how many statements it completed."""
        self._buffer += data
        before = self.statements
        while self._next_message():
            pass
        return self.statements - before

    def _next_message(self) -> bool:
        header = 4 if self._startup else 5
        if len(self._buffer) < header:
            return False
        if self._startup:
            (length,) = struct.unpack_from("!i", self._buffer, 0)
            if len(self._buffer) < length:
                return False
            (code,) = struct.unpack_from("!i", self._buffer, 4) if length >= 8 else (0,)
            self._startup = code in UNTYPED_REQUESTS
        else:
            (length,) = struct.unpack_from("!i", self._buffer, 1)
            length += 1  # the type byte
            if len(self._buffer) < length:
                return False
            if self._buffer[0] in COUNTED:
                self.statements += 1
        del self._buffer[:length]
        return True


@attrs.define
class CountingProxy:
    dsn: str
    statements: int = 0


async def _pump(
    source: ByteStream, sink: ByteStream, count: tuple[FrontendParser, CountingProxy] | None
) -> None:
    async with source, sink:
        try:
            async for chunk in source:
                if count is not None:
                    parser, proxy = count
                    proxy.statements += parser.feed(chunk)
                await sink.send(chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass


def _with_port(dsn: str, port: int) -> str:
    parts = urlsplit(dsn)
    netloc = f"{parts.username}@{_db.HOST}:{port}" if parts.username else f"{_db.HOST}:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


@asynccontextmanager
async def counting_proxy(dsn: str) -> AsyncIterator[CountingProxy]:
    """A proxy to ``dsn``'s server; connect through ``proxy.dsn``, read ``proxy.statements``."""
    listener = await anyio.create_tcp_listener(local_host=_db.HOST, local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    proxy = CountingProxy(_with_port(dsn, port))

    async def serve(client: SocketStream) -> None:
        upstream = await anyio.connect_tcp(_db.HOST, _db.PORT)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_pump, client, upstream, (FrontendParser(), proxy))
            tg.start_soon(_pump, upstream, client, None)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        try:
            yield proxy
        finally:
            tg.cancel_scope.cancel()
