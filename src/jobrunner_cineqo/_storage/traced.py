"""A `Storage` that wraps each call to another in an OpenTelemetry span (see `_spans`)."""

from __future__ import annotations

import attrs

from .._spans import span
from .base import Storage, StoredObject


@attrs.frozen
class TracedStorage:
    """`inner`, with a span `storage put|get|exists` (key, size) around each call."""

    inner: Storage

    async def put(
        self, key: str, data: bytes, *, content_type: str, cache_control: str | None = None
    ) -> StoredObject:
        with span("storage put", key=key, bytes=len(data)):
            return await self.inner.put(
                key, data, content_type=content_type, cache_control=cache_control
            )

    async def get(self, key: str) -> bytes:
        with span("storage get", key=key) as current:
            data = await self.inner.get(key)
            if current is not None:
                current.set_attribute("cineqo.bytes", len(data))
            return data

    async def exists(self, key: str) -> bool:
        with span("storage exists", key=key):
            return await self.inner.exists(key)

    def public_url(self, key: str) -> str | None:
        return self.inner.public_url(key)

    def describe(self) -> str:
        return self.inner.describe()
