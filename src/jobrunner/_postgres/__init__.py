"""The PostgreSQL backend."""

from ._backend import PostgresBackend

__all__ = ("PostgresBackend",)
