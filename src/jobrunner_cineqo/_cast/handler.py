"""`character.extract`: the cast of a novel through an OpenAI-compatible API, resumable.

The chapters come from inline `text`, a `source` (as for `novel.split`), or the chapters a
`novel.split` job stored: `split_manifest` (its result's `manifest_key`) or `split_job_id`.
A handler cannot read another job's row (the core has no public call for it), so
`split_job_id` finds the manifest where `novel.split` writes it —
`novels/{novel_id or job-<split_job_id>}/manifest.json` — and checks that the manifest was
written by that job.

Each finished chunk's answer is saved as checkpoint `chunk:{i}`; a retried attempt passes them
back as `done`, so chunks already paid for are never asked again.

Every answered request's tokens (and their cost) are recorded as usage when they arrive
(`_usage`); a 429 becomes `RateLimited`, so the type pauses on every worker and the job comes
back, without using an attempt, to resume from its checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from jobrunner import PayloadError, PermanentFailure, Retry

from .._novel import (
    DEFAULT_MAX_CHAPTER_CHARS,
    Chapter,
    read_chapter_texts,
    read_manifest,
    read_novel,
)
from .._outcomes import rate_limited
from .._settings import EXTRACT_DEFAULTS, TypeDefaults
from .._usage import llm_amounts
from .chunks import ChapterLike, ChapterText
from .llm import LLM, CastExtractor, LLMRateLimited, LLMRequestRejected, LLMUnavailable
from .merge import CastOptions, CastResult
from .payload import ExtractPayload

if TYPE_CHECKING:
    from jobrunner import JobContext, Plugin

    from .._settings import CineqoSettings
    from .._storage import Storage

JOB_TYPE = "character.extract"
CHUNK_PREFIX = "chunk:"
NOT_STORY = frozenset({"front_matter", "back_matter"})  # title pages, licences: not the story
LOAD_SHARE = 0.1  # progress: loading the chapters, then the chunks
T = TypeVar("T")


def register(plugin: Plugin, limits: TypeDefaults = EXTRACT_DEFAULTS) -> None:
    """Add the `character.extract` handler to `plugin`, with `limits` across the cluster."""
    plugin.handler(
        JOB_TYPE,
        concurrency=2,
        timeout=3600,
        lease=60,
        max_attempts=5,
        requires=("openai", "storage", "cineqo_settings"),
        global_concurrency=limits.concurrency,
        per_user_concurrency=limits.per_user,
        rate=limits.rate,
        payload=ExtractPayload,
    )(extract_characters)


def story_only(entries: list[T], kind: Callable[[T], str | None]) -> list[T]:
    """Drop front and back matter, unless nothing else is left."""
    kept = [entry for entry in entries if kind(entry) not in NOT_STORY]
    return kept or entries


async def load_chapters(
    ctx: JobContext, request: ExtractPayload, storage: Storage, settings: CineqoSettings
) -> tuple[Sequence[ChapterLike], str | None]:
    """The chapters to read, numbered as `novel.split` numbers them, and the novel's id."""
    key = request.manifest_key()
    if key is None:
        assert request.novel is not None
        novel = await read_novel(
            ctx,
            request.novel,
            storage=storage,
            settings=settings,
            max_chapter_chars=DEFAULT_MAX_CHAPTER_CHARS,
            progress_share=LOAD_SHARE,
        )
        story: list[Chapter] = story_only(novel.chapters(), lambda chapter: chapter.kind)
        return story, request.novel_id
    manifest = await read_manifest(key, storage, settings, ctx.attempt)
    if request.split_job_id is not None and manifest.get("job_id") != request.split_job_id:
        hint = "" if request.novel_id else " (give the novel_id that split job was given)"
        raise PayloadError(
            f"the manifest at {key!r} was written by job {manifest.get('job_id')}, "
            f"not by novel.split job {request.split_job_id}{hint}"
        )
    owner = manifest.get("novel_id")
    if request.novel_id is not None and owner is not None and owner != request.novel_id:
        raise PayloadError(
            f"the manifest at {key!r} belongs to novel {owner!r}, not to novel_id "
            f"{request.novel_id!r}"
        )
    entries: list[dict[str, Any]] = story_only(manifest["chapters"], lambda e: e.get("kind"))
    texts = await read_chapter_texts(entries, storage, settings, ctx.attempt)
    chapters = [
        ChapterText(index=e["index"], title=str(e.get("title") or ""), text=texts[e["index"]])
        for e in entries
    ]
    return chapters, request.novel_id or (owner if isinstance(owner, str) else None)


def earlier_chunks(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Chunk answers saved by earlier attempts, keyed by chunk index."""
    return {
        key.removeprefix(CHUNK_PREFIX): value
        for key, value in checkpoint.items()
        if key.startswith(CHUNK_PREFIX)
    }


async def extract(
    ctx: JobContext,
    extractor: CastExtractor,
    chapters: Sequence[ChapterLike],
    options: CastOptions,
) -> CastResult:
    """Run the extractor with checkpoints and progress; LLM failures become job outcomes."""

    async def chunk_done(index: int, data: dict[str, Any]) -> None:
        await ctx.save_checkpoint(f"{CHUNK_PREFIX}{index}", data)

    async def progress(done: int, total: int) -> None:
        share = LOAD_SHARE + (1 - LOAD_SHARE) * done / max(total, 1)
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
    except LLMRateLimited as exc:
        settings: CineqoSettings = ctx.resource("cineqo_settings")
        raise rate_limited(str(exc), exc.retry_after, settings) from exc
    except LLMUnavailable as exc:
        settings = ctx.resource("cineqo_settings")
        raise Retry(str(exc), delay=settings.backoff(ctx.attempt)) from exc
    except LLMRequestRejected as exc:
        raise PermanentFailure(str(exc)) from exc


async def extract_characters(ctx: JobContext[ExtractPayload]) -> dict[str, Any]:
    """Find a novel's characters with an LLM: merged aliases, mentions, visual prompts."""
    request = ctx.data
    settings: CineqoSettings = ctx.resource("cineqo_settings")
    storage: Storage = ctx.resource("storage")
    llm: LLM = ctx.resource("openai")
    ctx.progress(0.0, "loading chapters")
    chapters, novel_id = await load_chapters(ctx, request, storage, settings)
    model = request.model or llm.model
    extractor = CastExtractor(
        client=llm.client,
        model=model,
        response_mode=llm.response_mode,
        concurrency=settings.llm_concurrency,
        on_usage=lambda usage: ctx.record_usage(**llm_amounts(settings.prices, model, usage)),
    )
    options = CastOptions(chunk_tokens=settings.chunk_tokens, max_characters=request.max_characters)
    resumed = len(earlier_chunks(ctx.checkpoint))
    cast = (await extract(ctx, extractor, chapters, options)).to_json()
    return {
        "novel_id": novel_id,
        "model": model,
        "chapters": len(chapters),
        "characters": cast["characters"],
        "usage": {**cast["usage"], "resumed_chunks": resumed},
        "warnings": cast["warnings"],
    }
