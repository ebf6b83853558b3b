"""`novel.process`: split → extract the cast → one portrait per main character, as child jobs.

The parent runs once per stage: it enqueues the next stage's children and parks itself with
`WaitForChildren` until they are final; the runner then starts it again from the top.

The stage is read from the children themselves (`ctx.children()`: their types, statuses and,
for portraits, the character named in each payload's metadata) rather than from a checkpoint
saved after enqueueing: a crash between `enqueue` and `save_checkpoint` would otherwise make
the next run enqueue the same paid-for work twice.

A failed split or extraction fails the pipeline (nothing after it can run); a failed portrait
does not: the result lists it under `failed` with its error.

Every child gets the same `novel_id` — the payload's, or `job-<parent id>` — so one pipeline's
chapters, manifest and portraits live under one folder name.

Every child also carries the parent's `user_id` (`ctx.enqueue` passes it on): the core's fair
claiming, per-user limits and budgets count a pipeline's children as that user's, so one
user's big novel never starves another user's jobs of the same type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jobrunner import PermanentFailure, WaitForChildren

from .. import _cast, _images, _split
from .payload import ProcessPayload

if TYPE_CHECKING:
    from jobrunner import Job, JobContext, Plugin

JOB_TYPE = "novel.process"
SPLIT, EXTRACT, IMAGE = _split.JOB_TYPE, _cast.JOB_TYPE, _images.JOB_TYPE
RECHECK = 600.0  # children wake the parent when they end; this is only a safety net
_SPLIT_SUMMARY = (
    "novel_id",
    "format",
    "encoding",
    "encoding_method",
    "chapter_method",
    "fallback",
    "warnings",
    "volumes",
    "chars",
    "chapter_count",
    "chapters",
    "chapters_truncated",
    "manifest_key",
    "manifest_url",
)


def register(plugin: Plugin) -> None:
    """Add the `novel.process` handler to `plugin`."""
    plugin.handler(JOB_TYPE, timeout=120, max_attempts=3, payload=ProcessPayload)(process_novel)


def main_characters(
    characters: list[dict[str, Any]], count: int
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The `count` most mentioned characters that have a visual prompt, and those skipped."""
    ranked = sorted(characters, key=lambda c: -int(c.get("mentions") or 0))[:count]
    chosen = [c for c in ranked if c.get("visual_prompt")]
    skipped = [
        {"character": c["name"], "reason": "no visual_prompt"}
        for c in ranked
        if not c.get("visual_prompt")
    ]
    return chosen, skipped


def novel_id_of(request: ProcessPayload, parent_id: int) -> str:
    """The `novel_id` every child gets: the payload's, or `job-<parent id>`."""
    return request.novel_id or f"job-{parent_id}"


def portrait_payload(
    character: dict[str, Any], request: ProcessPayload, parent_id: int
) -> dict[str, Any]:
    """Stored at `{key_prefix or "portraits"}/{novel_id}/{image job}/{index}.{ext}`."""
    options = dict(request.portrait_options)
    options["key_prefix"] = options.get("key_prefix") or "portraits"
    return {
        "prompt": character["visual_prompt"],
        **options,
        "novel_id": novel_id_of(request, parent_id),
        "metadata": {"character": character["name"], "novel_process_job": parent_id},
    }


def _of_type(children: list[Job], job_type: str) -> list[Job]:
    return [child for child in children if child.type == job_type]


def _completed(job: Job) -> Any:
    """The child's result, or a permanent failure naming the child and its error."""
    if job.status != "completed":
        raise PermanentFailure(f"{job.type} job {job.id} {job.status}: {job.error or 'no error'}")
    return job.result


def _portrait_of(job: Job) -> str | None:
    metadata = job.payload.get("metadata") if isinstance(job.payload, dict) else None
    return metadata.get("character") if isinstance(metadata, dict) else None


async def _next_stage(ctx: JobContext, request: ProcessPayload, children: list[Job]) -> None:
    """Enqueue what the finished children allow next; return only when everything is done."""
    novel_id = novel_id_of(request, ctx.id)
    splits = _of_type(children, SPLIT)
    if not splits:
        await ctx.enqueue(SPLIT, {**request.split, "novel_id": novel_id})
        ctx.progress(0.05, "splitting the novel")
        raise WaitForChildren(recheck=RECHECK)
    split = _completed(splits[0])
    extracts = _of_type(children, EXTRACT)
    if not extracts:
        payload: dict[str, Any] = {"split_manifest": split["manifest_key"], "novel_id": novel_id}
        if request.model is not None:
            payload["model"] = request.model
        payload["max_characters"] = request.max_characters
        await ctx.enqueue(EXTRACT, payload)
        ctx.progress(0.3, "extracting the cast")
        raise WaitForChildren(recheck=RECHECK)
    cast = _completed(extracts[0])
    chosen, _ = main_characters(cast["characters"], request.portraits)
    enqueued = {_portrait_of(job) for job in _of_type(children, IMAGE)}
    missing = [c for c in chosen if c["name"] not in enqueued]
    for character in missing:
        await ctx.enqueue(IMAGE, portrait_payload(character, request, ctx.id))
    if missing:
        ctx.progress(0.6, f"drawing {len(chosen)} portraits")
        raise WaitForChildren(recheck=RECHECK)


def gather(request: ProcessPayload, children: list[Job]) -> dict[str, Any]:
    """The pipeline's result from its (all final) children."""
    split = _of_type(children, SPLIT)[0]
    extract = _of_type(children, EXTRACT)[0]
    cast = extract.result
    _, skipped = main_characters(cast["characters"], request.portraits)
    portraits = [
        {
            "character": _portrait_of(job),
            "job_id": job.id,
            "status": str(job.status),
            "images": (job.result or {}).get("images", []) if job.status == "completed" else [],
            "error": job.error if job.status != "completed" else None,
        }
        for job in _of_type(children, IMAGE)
    ]
    return {
        "novel_id": split.result["novel_id"],
        "split": {"job_id": split.id, **{k: split.result.get(k) for k in _SPLIT_SUMMARY}},
        "cast": {
            "job_id": extract.id,
            "characters": cast["characters"],
            "usage": cast["usage"],
            "warnings": cast["warnings"],
        },
        "portraits": portraits,
        "skipped": skipped,
        "failed": [
            {"job_id": job.id, "type": job.type, "status": str(job.status), "error": job.error}
            for job in children
            if job.status != "completed"
        ],
    }


async def process_novel(ctx: JobContext[ProcessPayload]) -> dict[str, Any]:
    """The whole pipeline: novel.split, then character.extract, then one portrait per lead."""
    request = ctx.data
    children = await ctx.children()
    if any(not child.status.is_final for child in children):
        raise WaitForChildren(recheck=RECHECK)
    await _next_stage(ctx, request, children)
    ctx.progress(1.0, "done")
    return gather(request, children)
