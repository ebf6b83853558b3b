"""Failures every handler shares, as job outcomes: storage errors, and a provider's 429."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from jobrunner import PayloadError, RateLimited, Retry

from ._storage import StorageError, StorageKeyError

if TYPE_CHECKING:
    from ._settings import CineqoSettings

MIN_PAUSE = 1.0  # a "Retry-After: 0" must not make every worker ask again at once, forever


@contextmanager
def storage_errors(settings: CineqoSettings, attempt: int) -> Iterator[None]:
    """Storage failures as job outcomes: a bad key is the payload's fault, I/O is retried."""
    try:
        yield
    except StorageKeyError as exc:
        raise PayloadError(str(exc)) from None
    except StorageError as exc:
        raise Retry(str(exc), delay=settings.backoff(attempt)) from exc


def rate_limited(message: str, retry_after: float | None, settings: CineqoSettings) -> RateLimited:
    """Back-pressure: the job goes back to pending (its attempt refunded) and its type pauses on
    every worker for the provider's Retry-After, else CINEQO_RATE_LIMIT_PAUSE."""
    pause = settings.rate_limit_pause if retry_after is None else max(retry_after, MIN_PAUSE)
    return RateLimited(message, retry_after=pause)
