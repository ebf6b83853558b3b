"""`novel.split`: a novel file in, one stored object per chapter and a manifest out.

The job row keeps the small index (titles, numbers, keys); storage keeps the text:

    novels/{novel_id or job-<id>}/chapters/{index:04d}.txt   text/plain; charset=utf-8
    novels/{novel_id or job-<id>}/manifest.json              the full index, written last

Reading the novel (`read_novel`) is shared with `character.extract`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import attrs

from jobrunner import PayloadError

from . import plugin
from ._chapters import Chapter, Outline, outline_chapters
from ._concurrency import bounded_each
from ._decode import Decoded, EmptyText, NotText, UndecodableText, decode_novel
from ._outcomes import storage_errors
from ._payloads import NovelInput, chapter_key, manifest_key, parse_split
from ._settings import CineqoSettings
from ._storage import KeySource, ObjectNotFound, Storage, StorageKeyError, resolve_source

if TYPE_CHECKING:
    from jobrunner import JobContext

TEXT_TYPE = "text/plain; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"
WRITERS = 8  # chapters uploaded at once: R2 latency, not bandwidth, bounds a big novel
RESULT_INDEX_BYTES = 512 * 1024  # the job row holds at most this much chapter index
_READ_SHARE = 0.5  # progress: reading and splitting, then writing


@attrs.frozen(kw_only=True)
class Novel:
    """A decoded novel and where its chapters are (offsets into `text`)."""

    text: str
    encoding: str | None  # None for inline text
    method: str  # how the encoding was decided; "text" for inline text
    outline: Outline
    warnings: tuple[str, ...]

    def chapters(self) -> list[Chapter]:
        return list(self.outline.chapters(self.text))


async def read_novel(
    ctx: JobContext,
    novel: NovelInput,
    *,
    storage: Storage,
    settings: CineqoSettings,
    max_chapter_chars: int,
    progress_share: float = _READ_SHARE,
) -> Novel:
    """Load, decode and outline the novel; bad input is a `PayloadError`, I/O is retried.

    Progress goes from 0 to `progress_share` while the chapters are found.
    """
    if novel.text is not None:
        data, encoding = novel.text.encode("utf-8"), "utf-8"
        _check_size(len(data), settings, "the text")
    else:
        assert novel.source is not None
        data = await _read_source(novel.source, storage, settings, ctx.attempt)
        encoding = novel.encoding

    def progress(fraction: float) -> None:
        ctx.progress(fraction * progress_share, "finding chapters")

    decoded, outline = await ctx.run_in_thread(
        _decode_and_outline, data, encoding, max_chapter_chars, progress, novel.describe()
    )
    inline = novel.text is not None
    return Novel(
        text=decoded.text,
        encoding=None if inline else decoded.encoding,
        method="text" if inline else decoded.method,
        outline=outline,
        warnings=(*decoded.warnings, *outline.warnings),
    )


def _decode_and_outline(
    data: bytes,
    encoding: str | None,
    max_chapter_chars: int,
    on_progress: Callable[[float], None],
    what: str,
) -> tuple[Decoded, Outline]:
    """CPU work, run in a thread so the worker keeps renewing the job's lease."""
    try:
        decoded = decode_novel(data, encoding=encoding)
    except (NotText, EmptyText, UndecodableText) as exc:
        raise PayloadError(f"{what}: {exc}") from None
    outline = outline_chapters(
        decoded.text, max_chapter_chars=max_chapter_chars, on_progress=on_progress
    )
    return decoded, outline


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


# --- storing -----------------------------------------------------------------------------


def chapter_entry(chapter: Chapter, key: str, url: str | None) -> dict[str, Any]:
    return {
        "index": chapter.index,
        "title": chapter.title,
        "number": chapter.number,
        "volume": chapter.volume,
        "kind": chapter.kind,
        "part": chapter.part,
        "chars": chapter.chars,
        "key": key,
        "url": url,
    }


async def write_chapters(
    ctx: JobContext, storage: Storage, novel: Novel, novel_id: str
) -> list[dict[str, Any]]:
    """Store every chapter (WRITERS at a time) and return their index entries, in order."""
    total = len(novel.outline.sections)
    entries: list[dict[str, Any]] = [{} for _ in range(total)]
    done = 0

    async def write(chapter: Chapter) -> None:
        nonlocal done
        key = chapter_key(novel_id, chapter.index)
        stored = await storage.put(key, chapter.text.encode("utf-8"), content_type=TEXT_TYPE)
        entries[chapter.index] = chapter_entry(chapter, stored.key, stored.url)
        done += 1
        share = _READ_SHARE + (1 - _READ_SHARE) * done / max(total, 1)
        ctx.progress(share, f"stored {done}/{total} chapters")

    # Chapters are sliced from the text one at a time, as writers become free.
    await bounded_each(novel.outline.chapters(novel.text), write, limit=WRITERS)
    return entries


def bounded_index(
    entries: list[dict[str, Any]], limit: int = RESULT_INDEX_BYTES
) -> tuple[list[dict[str, Any]], bool]:
    """The leading entries whose JSON fits in `limit` bytes, and whether any were cut."""
    size = 0
    for count, entry in enumerate(entries):
        size += len(json.dumps(entry, ensure_ascii=False).encode()) + 1
        if size > limit:
            return entries[:count], True
    return entries, False


@plugin.handler(
    "novel.split",
    concurrency=2,
    timeout=900,
    lease=60,
    max_attempts=5,
    requires=("storage", "cineqo_settings"),
)
async def split_novel(ctx: JobContext) -> dict[str, Any]:
    """Split a novel into chapters: one stored object per chapter, plus a manifest."""
    request = parse_split(ctx.payload)
    settings: CineqoSettings = ctx.resource("cineqo_settings")
    storage: Storage = ctx.resource("storage")
    novel_id = request.novel_id or f"job-{ctx.id}"
    ctx.progress(0.0, "reading the novel")
    novel = await read_novel(
        ctx,
        request.novel,
        storage=storage,
        settings=settings,
        max_chapter_chars=request.max_chapter_chars,
    )
    summary = {
        "novel_id": novel_id,
        "encoding": novel.encoding,
        "encoding_method": novel.method,
        "fallback": novel.outline.fallback,
        "warnings": list(novel.warnings),
        "volumes": list(novel.outline.volumes),
        "chars": len(novel.text),
    }
    with storage_errors(settings, ctx.attempt):
        entries = await write_chapters(ctx, storage, novel, novel_id)
        manifest = {"job_id": ctx.id, **summary, "chapters": entries}
        data = json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8")
        stored = await storage.put(manifest_key(novel_id), data, content_type=JSON_TYPE)
    shown, truncated = bounded_index(entries)
    ctx.progress(1.0, f"stored {len(entries)} chapters")
    return {
        **summary,
        "chapter_count": len(entries),
        "chapters": shown,
        "chapters_truncated": truncated,
        "manifest_key": stored.key,
        "manifest_url": stored.url,
    }
