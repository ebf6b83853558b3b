"""Bounded concurrency for handlers that do many small I/O operations (reads, uploads)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

import anyio

T = TypeVar("T")


async def bounded_each(
    items: Iterable[T], func: Callable[[T], Awaitable[None]], *, limit: int
) -> None:
    """Await `func(item)` for every item, `limit` at a time, in order of start.

    The first failure cancels the rest and is raised as it is, never in an exception group
    (even when two fail at once), so a caller's `except` sees it: `storage_errors` around
    this call turns a `StorageError` from any item into a `Retry`.
    """
    failures: list[Exception] = []
    iterator = iter(items)  # shared: each worker takes the next item when it is free

    async def work(scope: anyio.CancelScope) -> None:
        for item in iterator:
            try:
                await func(item)
            except Exception as exc:
                failures.append(exc)
                scope.cancel()
                return

    async with anyio.create_task_group() as group:
        for _ in range(limit):
            group.start_soon(work, group.cancel_scope)
    if failures:
        raise failures[0]
