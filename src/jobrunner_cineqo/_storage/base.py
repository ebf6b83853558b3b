"""The storage interface that handlers use, and the value a write returns."""

from __future__ import annotations

from typing import Protocol, runtime_checkable
from urllib.parse import quote

import attrs


@attrs.frozen(kw_only=True)
class StoredObject:
    """What was written: the normalised key, its size in bytes, type and public URL if any."""

    key: str
    size: int
    content_type: str
    url: str | None


@runtime_checkable
class Storage(Protocol):
    """Bytes under keys. Lifecycle is owned by the async context manager that made it."""

    async def put(
        self, key: str, data: bytes, *, content_type: str, cache_control: str | None = None
    ) -> StoredObject:
        """Write ``data`` under ``key``, replacing any previous object."""
        ...

    async def get(self, key: str) -> bytes:
        """Read the object under ``key``; ``ObjectNotFound`` if there is none."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        ...

    def public_url(self, key: str) -> str | None:
        """The public URL of ``key``, or None when the storage has no public base URL."""
        ...

    def describe(self) -> str:
        """A one-line description for logs, without secrets."""
        ...


def join_public_url(base: str | None, key: str) -> str | None:
    """``base`` + '/' + the percent-encoded key (keeping '/'), or None without a base."""
    if base is None:
        return None
    return base.rstrip("/") + "/" + quote(key, safe="/")
