"""Hand claimed jobs to a fixed pool of executor tasks, cheaply.

An executor that finds more work waiting takes it without a wake-up, and at most one idle
executor is being woken at a time, so a batch of fast jobs costs almost no scheduling,
while slow jobs still spread over as many executors as they need.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

import anyio

T = TypeVar("T")


class Dispatcher(Generic[T]):
    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._idle: deque[anyio.Event] = deque()
        self._waking = 0
        self._closed = False

    def put_many(self, items: list[T]) -> None:
        self._items.extend(items)
        self._wake_one()

    def take_where(self, test: Callable[[T], bool]) -> list[T]:
        """Remove and return the items no executor has taken yet that pass `test`."""
        taken: list[T] = []
        kept: deque[T] = deque()
        for item in self._items:
            (taken if test(item) else kept).append(item)
        self._items = kept
        return taken

    def take_all(self) -> list[T]:
        """Remove and return every item no executor has taken yet."""
        items = list(self._items)
        self._items.clear()
        return items

    def close(self) -> None:
        """No more items: every executor returns once the queue is empty."""
        self._closed = True
        while self._idle:
            self._idle.popleft().set()

    def reopen(self) -> None:
        """Take items again (a worker that runs once more after it stopped)."""
        self._closed = False
        self._waking = 0

    async def get(self) -> T | None:
        """The next item, or None once closed and empty."""
        while not self._items:
            if self._closed:
                return None
            event = anyio.Event()
            self._idle.append(event)
            await event.wait()
            self._waking = max(self._waking - 1, 0)
        item = self._items.popleft()
        if self._items:
            self._wake_one()  # more waiting: let one more executor help
        return item

    def _wake_one(self) -> None:
        if self._waking == 0 and self._idle:
            self._waking += 1
            self._idle.popleft().set()
