"""Storage keys and payload sources: pure validation, no I/O except resolving local paths.

A key is a relative, '/'-separated name such as ``novels/三体.txt``. ``safe_key`` refuses
anything that could escape a storage root or be mistaken for a URL or a local path:

- empty keys, keys longer than 1024 UTF-8 bytes, segments longer than 255 bytes;
- a leading '/' (absolute), empty segments ('a//b', trailing '/'), '.' and '..' segments;
- backslashes, NUL and other control characters;
- a ':' in the first segment, which is how URLs (``file://``, ``http://``, ``s3://``,
  ``data:``) and Windows drives (``C:``) begin. Later segments may contain ':'.

Keys are NFC-normalised so that the same name typed on different systems maps to one object.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

import attrs

from .errors import StorageKeyError

MAX_KEY_BYTES = 1024  # S3 and R2 limit
MAX_SEGMENT_BYTES = 255  # common file-system limit for one name


def safe_key(key: str) -> str:
    """Return the normalised key, or raise ``StorageKeyError`` saying what is wrong."""
    if not isinstance(key, str):
        raise StorageKeyError(f"storage key must be a string, not {type(key).__name__}")
    key = unicodedata.normalize("NFC", key)
    problem = _key_problem(key)
    if problem is not None:
        raise StorageKeyError(f"unsafe storage key {key!r}: {problem}")
    return key


def _key_problem(key: str) -> str | None:
    if not key:
        return "empty"
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        return f"longer than {MAX_KEY_BYTES} bytes"
    if "\\" in key:
        return "backslashes are not allowed"
    if any(_is_control(ch) for ch in key):
        return "control characters are not allowed"
    if key.startswith("/"):
        return "absolute paths are not allowed"
    segments = key.split("/")
    if ":" in segments[0]:
        return "URLs, schemes and drive letters are not allowed"
    for segment in segments:
        if segment == "":
            return "empty path segments are not allowed"
        if segment in (".", ".."):
            return f"{segment!r} segments are not allowed"
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            return f"a segment is longer than {MAX_SEGMENT_BYTES} bytes"
    return None


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc"


@attrs.frozen(kw_only=True)
class LocalSource:
    """A payload source that is a file under one of the allowed roots (already resolved)."""

    path: Path


@attrs.frozen(kw_only=True)
class KeySource:
    """A payload source that names an object in storage."""

    key: str


def resolve_source(source: str, *, allowed_roots: Sequence[Path]) -> LocalSource | KeySource:
    """Decide whether a payload ``source`` is a local file or a storage key.

    - ``file://`` URIs (host empty or ``localhost``) and absolute paths are local: after
      resolving symlinks and '..', the path must lie inside one of ``allowed_roots`` (also
      resolved), otherwise ``StorageKeyError``. With no allowed roots, no local path is allowed.
    - Any other URL scheme (``http://``, ``s3://`` ...) is refused.
    - Everything else is a storage key and must pass ``safe_key``. Relative paths are keys,
      never read relative to the working directory.
    """
    if not isinstance(source, str) or not source:
        raise StorageKeyError("source must be a non-empty string")
    if any(_is_control(ch) for ch in source):
        raise StorageKeyError(f"source {source!r} contains control characters")
    if source.lower().startswith("file:"):
        return _confine(_file_uri_path(source), allowed_roots, source)
    if source.startswith("/"):
        return _confine(Path(source), allowed_roots, source)
    return KeySource(key=safe_key(source))


def _file_uri_path(uri: str) -> Path:
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise StorageKeyError(f"file URI {uri!r} names a remote host")
    if parts.query or parts.fragment:
        raise StorageKeyError(f"file URI {uri!r} must not have a query or fragment")
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise StorageKeyError(f"file URI {uri!r} must hold an absolute path")
    if "\x00" in path:
        raise StorageKeyError(f"file URI {uri!r} contains control characters")
    return Path(path)


def _confine(path: Path, allowed_roots: Sequence[Path], source: str) -> LocalSource:
    resolved = path.resolve()
    for root in allowed_roots:
        if resolved.is_relative_to(Path(root).resolve()):
            return LocalSource(path=resolved)
    raise StorageKeyError(f"source {source!r} is outside the allowed directories")
