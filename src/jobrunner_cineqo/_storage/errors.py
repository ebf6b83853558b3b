"""Storage errors.

StorageError(RuntimeError)        I/O failed; retrying may succeed
└── ObjectNotFound(LookupError)   no object under that key
StorageKeyError(ValueError)       the key or source is unsafe; never retry
StorageConfigError(ValueError)    the environment is incomplete or malformed
"""

from __future__ import annotations


class StorageError(RuntimeError):
    """A storage operation failed; retrying may succeed."""


class ObjectNotFound(StorageError, LookupError):
    """No object is stored under that key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no object stored under key {key!r}")
        self.key = key


class StorageKeyError(ValueError):
    """The key or source path is unsafe or malformed."""


class StorageConfigError(ValueError):
    """The storage configuration is incomplete or malformed."""
