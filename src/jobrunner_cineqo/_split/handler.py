"""`novel.split`: a novel file in, one stored object per chapter and a manifest out.

The job row keeps the small index (titles, numbers, keys); storage keeps the text:

    novels/{novel_id or job-<id>}/chapters/{index:04d}.txt   text/plain; charset=utf-8
    novels/{novel_id or job-<id>}/manifest.json              the full index, written last

Reading the novel and the manifest's format are shared with `character.extract` (`_novel`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .._concurrency import bounded_each
from .._novel import Chapter, Novel, chapter_entry, chapter_key, manifest_key, read_novel
from .._outcomes import storage_errors
from .payload import SplitPayload

if TYPE_CHECKING:
    from jobrunner import JobContext, Plugin

    from .._settings import CineqoSettings
    from .._storage import Storage

JOB_TYPE = "novel.split"
TEXT_TYPE = "text/plain; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"
WRITERS = 8  # chapters uploaded at once: R2 latency, not bandwidth, bounds a big novel
RESULT_INDEX_BYTES = 512 * 1024  # the job row holds at most this much chapter index
READ_SHARE = 0.5  # progress: reading and splitting, then writing


def register(plugin: Plugin) -> None:
    """Add the `novel.split` handler to `plugin`."""
    plugin.handler(
        JOB_TYPE,
        concurrency=2,
        timeout=900,
        lease=60,
        max_attempts=5,
        requires=("storage", "cineqo_settings"),
        payload=SplitPayload,
    )(split_novel)


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
        share = READ_SHARE + (1 - READ_SHARE) * done / max(total, 1)
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


async def split_novel(ctx: JobContext[SplitPayload]) -> dict[str, Any]:
    """Split a novel into chapters: one stored object per chapter, plus a manifest."""
    request = ctx.data
    settings: CineqoSettings = ctx.resource("cineqo_settings")
    storage: Storage = ctx.resource("storage")
    novel_id = request.novel_id or f"job-{ctx.id}"
    ctx.progress(0.0, "reading the novel")
    novel = await read_novel(
        ctx,
        request,
        storage=storage,
        settings=settings,
        max_chapter_chars=request.max_chapter_chars,
        progress_share=READ_SHARE,
    )
    summary = {
        "novel_id": novel_id,
        "format": novel.format,
        "encoding": novel.encoding,
        "encoding_method": novel.method,
        "chapter_method": novel.outline.method,
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
