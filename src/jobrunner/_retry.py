"""How long to wait before the next attempt."""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """Exponential backoff with jitter.

    Attempt n waits min(base · factor^(n-1), cap), shortened by up to `jitter` (a fraction).
    """

    base: float = 2.0
    factor: float = 2.0
    cap: float = 600.0
    jitter: float = 0.5

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        raw = min(self.base * self.factor ** max(attempt - 1, 0), self.cap)
        return raw * (1 - self.jitter * rand())


DEFAULT_RETRY = RetryPolicy()
