"""Jobs as a claim returns them: built from the raw row, each column decoded on first use.

A claim of 500 no-op jobs spent more time turning rows into `Job`s (a JSON decode and six
timezone-aware datetimes per row, then 22 attribute writes) than running them. Here the claim
reads `jsonb` and `timestamptz` columns as raw bytes (psycopg's C bytea loader), keeps the row
tuple, and decodes a column when someone reads it: the payload when the handler does, the
timestamps usually never. A `ClaimedJob` is a `Job` in every way that shows (isinstance,
equality, repr, `attrs.evolve`, pickling, `as_dict`).
"""

from __future__ import annotations

import datetime as dt
import json
import struct
from collections.abc import Callable
from typing import Any

import attrs
from psycopg import AsyncCursor
from psycopg.types.string import ByteaBinaryLoader

from .._job import COLUMNS, Job, UnreadableJSON
from .._status import JobStatus

_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # PostgreSQL's timestamp epoch
_MICROS = struct.Struct("!q")
_INFINITY = 2**63 - 1
_STATUS = {s.value: s for s in JobStatus}
_JSON = json.JSONDecoder()


def raw_columns(cursor: AsyncCursor[Any]) -> None:
    """Make `cursor` return jsonb and timestamptz values as their raw binary form."""
    for name in ("jsonb", "timestamptz"):
        cursor.adapters.register_loader(name, ByteaBinaryLoader)


def _timestamp(raw: bytes | None) -> dt.datetime | None:
    """A binary timestamptz (microseconds since 2000-01-01 UTC), as an aware UTC datetime."""
    if raw is None:
        return None
    (micros,) = _MICROS.unpack(raw)
    try:
        return _EPOCH + dt.timedelta(microseconds=micros)
    except OverflowError:  # ±infinity, or a year Python cannot hold
        return (dt.datetime.max if micros > 0 else dt.datetime.min).replace(tzinfo=dt.UTC)


def _json(raw: bytes | None) -> Any:
    """A binary jsonb value: a version byte, then the JSON text as PostgreSQL prints it
    (never with surrounding whitespace, so a bare raw_decode reads all of it)."""
    if raw is None:
        return None
    try:
        return _JSON.raw_decode(raw[1:].decode())[0]
    except UnicodeDecodeError:  # only a server whose encoding is not UTF-8 could send this
        return UnreadableJSON("not valid UTF-8")
    except RecursionError:
        return UnreadableJSON("nested too deeply to decode")


_DECODE: dict[str, Callable[[Any], Any]] = {
    "status": _STATUS.__getitem__,
    "payload": _json,
    "result": _json,
    "checkpoint": _json,
    "usage": _json,
    **{c: _timestamp for c in COLUMNS if c.endswith("_at") or c == "locked_until"},
}


class ClaimedJob(Job):
    """A `Job` backed by a raw claimed row (columns in `COLUMNS` order)."""

    __slots__ = ("_cache", "_row")
    _row: tuple[Any, ...]  # final values, but raw bytes for the columns in _DECODE
    _cache: dict[str, Any]  # the decoded columns in _DECODE, once read

    def __init__(self, **fields: Any) -> None:  # what attrs.evolve calls
        job = Job(**fields)  # defaults and checks as for any Job
        object.__setattr__(self, "_row", tuple(getattr(job, name) for name in COLUMNS))
        object.__setattr__(self, "_cache", {name: getattr(job, name) for name in _DECODE})

    @classmethod
    def from_raw(cls, row: tuple[Any, ...]) -> ClaimedJob:
        job = object.__new__(cls)
        object.__setattr__(job, "_row", row)
        object.__setattr__(job, "_cache", {})
        return job

    def plain(self) -> Job:
        """The same job as a plain, fully decoded `Job`."""
        return Job(**{name: getattr(self, name) for name in COLUMNS})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Job):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in COLUMNS)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = Job.__hash__

    def __repr__(self) -> str:
        return repr(self.plain())

    def __reduce__(self) -> tuple[Any, ...]:  # pickles as the plain Job it equals
        return (_rebuild, ({name: getattr(self, name) for name in COLUMNS},))


def _rebuild(fields: dict[str, Any]) -> Job:
    return Job(**fields)


def _column(index: int, name: str) -> property:
    decode = _DECODE.get(name)
    doc = f"The job's `{name}` column."
    if decode is None:

        def plain(self: ClaimedJob) -> Any:
            return self._row[index]

        return property(plain, doc=doc)

    def decoded(self: ClaimedJob) -> Any:
        cache = self._cache
        if name in cache:
            return cache[name]
        value = cache[name] = decode(self._row[index])
        return value

    return property(decoded, doc=doc)


for _index, _name in enumerate(COLUMNS):
    setattr(ClaimedJob, _name, _column(_index, _name))

assert attrs.has(ClaimedJob)
