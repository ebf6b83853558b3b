"""Storage failures as job outcomes, for every handler that reads or writes storage."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from jobrunner import PayloadError, Retry

from ._storage import StorageError, StorageKeyError

if TYPE_CHECKING:
    from ._settings import CineqoSettings


@contextmanager
def storage_errors(settings: CineqoSettings, attempt: int) -> Iterator[None]:
    """Storage failures as job outcomes: a bad key is the payload's fault, I/O is retried."""
    try:
        yield
    except StorageKeyError as exc:
        raise PayloadError(str(exc)) from None
    except StorageError as exc:
        raise Retry(str(exc), delay=settings.backoff(attempt)) from exc
