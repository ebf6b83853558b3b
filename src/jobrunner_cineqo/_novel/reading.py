"""Reading a novel for a handler: load it (inline text, a storage key or an allowed file),
decode it — text, EPUB or DOCX (`novel.load_novel`) — and find its chapters. Shared by
`novel.split` and `character.extract` (and so `novel.process`).

Bad input is a `PayloadError`; storage I/O failures are retried (`storage_errors`). Decoding
and outlining are CPU work and run in a thread, so the worker keeps renewing the job's lease.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread

from jobrunner import PayloadError

from .._outcomes import storage_errors
from .._storage import KeySource, ObjectNotFound, Storage, StorageKeyError, resolve_source
from .input import NovelInput
from .novel import BAD_NOVEL, Novel, load_novel

if TYPE_CHECKING:
    from jobrunner import JobContext

    from .._settings import CineqoSettings


async def read_novel(
    ctx: JobContext,
    novel: NovelInput,
    *,
    storage: Storage,
    settings: CineqoSettings,
    max_chapter_chars: int,
    progress_share: float,
) -> Novel:
    """Load, decode and outline the novel; bad input is a `PayloadError`, I/O is retried.

    Progress goes from 0 to `progress_share` while the chapters are found.
    """
    encoding: str | None
    if novel.text is not None:
        data, encoding = novel.text.encode("utf-8"), "utf-8"
        _check_size(len(data), settings, "the text")
    else:
        assert novel.source is not None
        data = await _read_source(novel.source, storage, settings, ctx.attempt)
        encoding = novel.encoding

    def progress(fraction: float) -> None:
        ctx.progress(fraction * progress_share, "finding chapters")

    return await ctx.run_in_thread(
        _load,
        data,
        encoding,
        novel.text is not None,
        max_chapter_chars,
        settings.max_novel_bytes,
        progress,
        novel.describe(),
    )


def _load(
    data: bytes,
    encoding: str | None,
    inline: bool,
    max_chapter_chars: int,
    max_novel_bytes: int,
    on_progress: Callable[[float], None],
    what: str,
) -> Novel:
    """CPU work, run in a thread so the worker keeps renewing the job's lease."""
    try:
        return load_novel(
            data,
            encoding=encoding,
            inline=inline,
            max_chapter_chars=max_chapter_chars,
            max_novel_bytes=max_novel_bytes,
            on_progress=on_progress,
        )
    except BAD_NOVEL as exc:
        raise PayloadError(f"{what}: {exc}") from None


async def _read_source(
    source: str, storage: Storage, settings: CineqoSettings, attempt: int
) -> bytes:
    try:
        where = resolve_source(source, allowed_roots=settings.allowed_roots)
    except StorageKeyError as exc:
        raise PayloadError(f"source: {exc}") from None
    if isinstance(where, KeySource):
        with storage_errors(settings, attempt):
            try:
                data = await storage.get(where.key)
            except ObjectNotFound:
                raise PayloadError(f"source: no object is stored under key {where.key!r}") from None
        _check_size(len(data), settings, f"source {source!r}")
        return data
    return await anyio.to_thread.run_sync(_read_file, where.path, source, settings.max_novel_bytes)


def _read_file(path: Path, source: str, limit: int) -> bytes:
    try:
        if not path.is_file():
            what = "is not a regular file" if path.exists() else "does not exist"
            raise PayloadError(f"source {source!r} {what}")
        with path.open("rb") as file:
            data = file.read(limit + 1)
    except PermissionError:
        raise PayloadError(f"source {source!r} cannot be read: permission denied") from None
    if len(data) > limit:
        raise PayloadError(
            f"source {source!r} is larger than the limit of {_mb(limit)} (CINEQO_MAX_NOVEL_BYTES)"
        )
    return data


def _check_size(size: int, settings: CineqoSettings, what: str) -> None:
    if size > settings.max_novel_bytes:
        raise PayloadError(
            f"{what} is {_mb(size)}, over the limit of {_mb(settings.max_novel_bytes)} "
            "(CINEQO_MAX_NOVEL_BYTES)"
        )


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{size} bytes"
