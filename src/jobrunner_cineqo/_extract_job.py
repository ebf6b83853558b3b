"""`character.extract`: the cast of a novel through an OpenAI-compatible API, resumable.

The chapters come from inline `text`, a `source` (as for `novel.split`), or the chapters a
`novel.split` job stored: `split_manifest` (its result's `manifest_key`) or `split_job_id`.
A handler cannot read another job's row (the core has no public call for it), so
`split_job_id` finds the manifest where `novel.split` writes it —
`novels/{novel_id or job-<split_job_id>}/manifest.json` — and checks that the manifest was
written by that job.

Each finished chunk's answer is saved as checkpoint `chunk:{i}`; a retried attempt passes them
back as `done`, so chunks already paid for are never asked again.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from jobrunner import PayloadError, PermanentFailure, Retry

from . import plugin
from ._cast import CastOptions, CastResult, ChapterLike, ChapterText
from ._concurrency import bounded_each
from ._llm import LLM, CastExtractor, LLMRequestRejected, LLMUnavailable
from ._outcomes import storage_errors
from ._payloads import DEFAULT_MAX_CHAPTER_CHARS, ExtractRequest, parse_extract
from ._settings import CineqoSettings
from ._split_job import read_novel
from ._storage import ObjectNotFound, Storage

if TYPE_CHECKING:
    from jobrunner import JobContext

CHUNK_PREFIX = "chunk:"
NOT_STORY = frozenset({"front_matter", "back_matter"})  # title pages, licences: not the story
READERS = 8
_LOAD_SHARE = 0.1  # progress: loading the chapters, then the chunks


def story_only(entries: list[Any], kind: Any) -> list[Any]:
    """Drop front and back matter, unless nothing else is left."""
    kept = [entry for entry in entries if kind(entry) not in NOT_STORY]
    return kept or entries


async def load_chapters(
    ctx: JobContext, request: ExtractRequest, storage: Storage, settings: CineqoSettings
) -> list[ChapterLike]:
    """The chapters to read, numbered as `novel.split` numbers them."""
    key = request.manifest_key()
    if key is None:
        assert request.novel is not None
        novel = await read_novel(
            ctx,
            request.novel,
            storage=storage,
            settings=settings,
            max_chapter_chars=DEFAULT_MAX_CHAPTER_CHARS,
            progress_share=_LOAD_SHARE,
        )
        return story_only(novel.chapters(), lambda chapter: chapter.kind)
    manifest = await _read_manifest(key, storage, settings, ctx.attempt)
    if request.split_job_id is not None and manifest.get("job_id") != request.split_job_id:
        hint = "" if request.novel_id else " (give the novel_id that split job was given)"
        raise PayloadError(
            f"the manifest at {key!r} was written by job {manifest.get('job_id')}, "
            f"not by novel.split job {request.split_job_id}{hint}"
        )
    entries = story_only(manifest["chapters"], lambda entry: entry.get("kind"))
    return await _read_chapter_texts(entries, storage, settings, ctx.attempt)


async def _read_manifest(
    key: str, storage: Storage, settings: CineqoSettings, attempt: int
) -> dict[str, Any]:
    with storage_errors(settings, attempt):
        try:
            raw = await storage.get(key)
        except ObjectNotFound:
            raise PayloadError(
                f"no novel.split manifest is stored under {key!r}; has the split job completed?"
            ) from None
    try:
        manifest = json.loads(raw)
        chapters = manifest["chapters"]
        valid = isinstance(chapters, list) and all(_is_entry(c) for c in chapters)
    except (ValueError, KeyError, TypeError):
        valid = False
    if not valid:
        raise PayloadError(f"{key!r} is not a novel.split manifest")
    return manifest


def _is_entry(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("index"), int)
        and isinstance(entry.get("key"), str)
    )


async def _read_chapter_texts(
    entries: list[dict[str, Any]], storage: Storage, settings: CineqoSettings, attempt: int
) -> list[ChapterLike]:
    texts: dict[int, str] = {}

    async def read(entry: dict[str, Any]) -> None:
        try:
            data = await storage.get(entry["key"])
        except ObjectNotFound:
            raise PayloadError(f"chapter {entry['index']} is missing from storage") from None
        texts[entry["index"]] = data.decode("utf-8", "replace")

    with storage_errors(settings, attempt):
        await bounded_each(entries, read, limit=READERS)
    return [
        ChapterText(index=e["index"], title=str(e.get("title") or ""), text=texts[e["index"]])
        for e in entries
    ]


def earlier_chunks(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Chunk answers saved by earlier attempts, keyed by chunk index."""
    return {
        key.removeprefix(CHUNK_PREFIX): value
        for key, value in checkpoint.items()
        if key.startswith(CHUNK_PREFIX)
    }


async def extract(
    ctx: JobContext, extractor: CastExtractor, chapters: list[ChapterLike], options: CastOptions
) -> CastResult:
    """Run the extractor with checkpoints and progress; LLM failures become job outcomes."""

    async def chunk_done(index: int, data: dict[str, Any]) -> None:
        await ctx.save_checkpoint(f"{CHUNK_PREFIX}{index}", data)

    async def progress(done: int, total: int) -> None:
        share = _LOAD_SHARE + (1 - _LOAD_SHARE) * done / max(total, 1)
        ctx.progress(share, f"{done}/{total} chunks read")

    # LLM failures come out of the extractor bare; anything else its task group wraps (a
    # `LeaseLost` from a checkpoint) the runner unwraps itself when it is alone.
    try:
        return await extractor.extract_cast(
            chapters,
            options,
            done=earlier_chunks(ctx.checkpoint),
            on_chunk_done=chunk_done,
            on_progress=progress,
        )
    except LLMUnavailable as exc:
        settings: CineqoSettings = ctx.resource("cineqo_settings")
        raise Retry(str(exc), delay=settings.backoff(ctx.attempt)) from exc
    except LLMRequestRejected as exc:
        raise PermanentFailure(str(exc)) from exc


@plugin.handler(
    "character.extract",
    concurrency=2,
    timeout=3600,
    lease=60,
    max_attempts=5,
    requires=("openai", "storage", "cineqo_settings"),
)
async def extract_characters(ctx: JobContext) -> dict[str, Any]:
    """Find a novel's characters with an LLM: merged aliases, mentions, visual prompts."""
    request = parse_extract(ctx.payload)
    settings: CineqoSettings = ctx.resource("cineqo_settings")
    storage: Storage = ctx.resource("storage")
    llm: LLM = ctx.resource("openai")
    ctx.progress(0.0, "loading chapters")
    chapters = await load_chapters(ctx, request, storage, settings)
    model = request.model or llm.model
    extractor = CastExtractor(
        client=llm.client,
        model=model,
        response_mode=llm.response_mode,
        concurrency=settings.llm_concurrency,
    )
    options = CastOptions(chunk_tokens=settings.chunk_tokens, max_characters=request.max_characters)
    resumed = len(earlier_chunks(ctx.checkpoint))
    cast = (await extract(ctx, extractor, chapters, options)).to_json()
    return {
        "model": model,
        "chapters": len(chapters),
        "characters": cast["characters"],
        "usage": {**cast["usage"], "resumed_chunks": resumed},
        "warnings": cast["warnings"],
    }
