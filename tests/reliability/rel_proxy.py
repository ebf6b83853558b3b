"""A TCP proxy between workers and PostgreSQL that can cut and stall connections on command.

It runs its own asyncio loop in a thread, so tests control it from plain synchronous code:

    with FaultyProxy("127.0.0.1", 5432) as proxy:
        url = proxy.url_for(pg_url)
        proxy.stall()    # hold every byte in both directions (a black hole)
        proxy.resume()   # deliver what was held, carry on
        proxy.cut()      # reset every open connection
        proxy.refuse()   # ...and reset new ones too, until resume()
        proxy.freeze()   # half-open: open connections go silent for good (never closed,
                         # never reset); new ones pass
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

CHUNK = 65536


class FaultyProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.accepted = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._flowing: asyncio.Event | None = None
        self._refusing = False
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._frozen: dict[tuple[asyncio.StreamWriter, asyncio.StreamWriter], asyncio.Event] = {}
        self._server: asyncio.Server | None = None

    # -- control (called from the test's thread) ------------------------------------------

    def __enter__(self) -> FaultyProxy:
        self._thread.start()
        self._call(self._start())
        return self

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def url_for(self, url: str) -> str:
        """`url` with its host and port replaced by the proxy's."""
        parts = urlsplit(url)
        auth = parts.netloc.rpartition("@")[0]
        netloc = f"{auth}@127.0.0.1:{self.port}" if auth else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def stall(self) -> None:
        """Stop forwarding: bytes are held (in both directions) until `resume()`."""
        self._call(self._set_flowing(False))

    def resume(self) -> None:
        """Forward again (held bytes first) and accept new connections normally."""
        self._refusing = False
        self._call(self._set_flowing(True))

    def freeze(self) -> int:
        """Make every open connection half-open: nothing more is forwarded on it, in either
        direction, and it is neither closed nor reset (a NAT that forgot it, a database that
        failed over); new connections pass. Returns how many were frozen."""
        return int(self._call(self._freeze()))

    def cut(self) -> int:
        """Reset every open connection; returns how many were cut."""
        return int(self._call(self._cut()))

    def refuse(self) -> int:
        """Cut every open connection and reset new ones until `resume()`."""
        self._refusing = True
        return self.cut()

    @property
    def open_links(self) -> int:
        return len(self._links)

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    # -- the proxy (runs in its own loop) ---------------------------------------------------

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        await self._cut()
        if self._server is not None:
            self._server.close()
        await asyncio.sleep(0.1)  # the cut links' tasks end before the loop stops

    async def _set_flowing(self, flowing: bool) -> None:
        assert self._flowing is not None
        if flowing:
            self._flowing.set()
        else:
            self._flowing.clear()

    async def _freeze(self) -> int:
        live = [event for event in self._frozen.values() if event.is_set()]
        for event in live:
            event.clear()
        return len(live)

    async def _cut(self) -> int:
        links = list(self._links)
        for client, server in links:
            for writer in (client, server):
                writer.transport.abort()
        for live in self._frozen.values():
            live.set()  # a frozen link's pumps wake up to find it closed
        self._links.clear()
        return len(links)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self._refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        link = (writer, up_writer)
        self._links.add(link)
        live = self._frozen[link] = asyncio.Event()
        live.set()
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, live), self._pump(up_reader, writer, live)
            )
        finally:
            self._links.discard(link)
            self._frozen.pop(link, None)
            for w in link:
                w.transport.abort()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, live: asyncio.Event
    ) -> None:
        assert self._flowing is not None
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                await self._flowing.wait()
                await live.wait()  # frozen: for good
                data = await reader.read(CHUNK)
                if not data:
                    break
                await self._flowing.wait()  # read during a stall: hold it until resume
                await live.wait()
                writer.write(data)
                await writer.drain()
        writer.close()
