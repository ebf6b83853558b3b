"""The SQLite backend: the embedded default, for one host."""

from ._backend import SQLiteBackend

__all__ = ("SQLiteBackend",)
