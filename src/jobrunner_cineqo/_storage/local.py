"""Storage in a local directory: key ``novels/a.txt`` is the file ``<root>/novels/a.txt``."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio.to_thread
import attrs

from .base import StoredObject, join_public_url
from .errors import ObjectNotFound, StorageError, StorageKeyError
from .keys import safe_key

DEFAULT_DATA_DIR = "./jobrunner-data"
T = TypeVar("T")


def _absolute(root: Path | str) -> Path:
    # Fixed at construction so a later chdir cannot move the storage.
    return Path(root).absolute()


@attrs.define
class LocalStorage:
    """Files under ``root``; writes are atomic (temp file + ``os.replace``), off the event loop."""

    root: Path = attrs.field(converter=_absolute)
    public_base_url: str | None = None

    async def put(
        self, key: str, data: bytes, *, content_type: str, cache_control: str | None = None
    ) -> StoredObject:
        """Write ``data`` under ``key``; ``cache_control`` has no meaning for plain files."""
        key = safe_key(key)
        path = self.root / key
        await self._run(_write_atomic, self.root, path, bytes(data), key=key, action="write")
        return StoredObject(
            key=key, size=len(data), content_type=content_type, url=self.public_url(key)
        )

    async def get(self, key: str) -> bytes:
        key = safe_key(key)
        data = await self._run(_read, self.root, self.root / key, key=key, action="read")
        if data is None:
            raise ObjectNotFound(key)
        return data

    async def exists(self, key: str) -> bool:
        key = safe_key(key)
        return await self._run(_is_file, self.root, self.root / key, key=key, action="check")

    def public_url(self, key: str) -> str | None:
        return join_public_url(self.public_base_url, safe_key(key))

    def describe(self) -> str:
        return f"local storage at {self.root}"

    async def _run(self, func: Callable[..., T], *args: object, key: str, action: str) -> T:
        try:
            return await anyio.to_thread.run_sync(func, *args)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise StorageError(f"could not {action} {key!r} in {self.root}: {reason}") from exc


def _confined(root: Path, path: Path) -> Path:
    # safe_key already refuses '..'; this catches symlinks inside root that lead outside it.
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise StorageKeyError(f"{path.relative_to(root)} leads outside the storage root")
    return resolved


def _write_atomic(root: Path, path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _confined(root, path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; stored files are meant to be served
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read(root: Path, path: Path) -> bytes | None:
    try:
        return _confined(root, path).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _is_file(root: Path, path: Path) -> bool:
    return _confined(root, path).is_file()
