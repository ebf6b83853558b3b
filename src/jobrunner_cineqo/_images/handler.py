"""`image.generate`: one fal.ai request, its images stored under deterministic keys.

No double payment: the fal request id is saved as checkpoint `fal_request_id` the moment fal
accepts the request; a later attempt (after a crash, a timeout, a failed download or upload)
polls that request again instead of submitting a new one. Keys are
`{key_prefix or "images"}/{novel_id}/{job id}/{index}.{ext}` (no novel folder without a
`novel_id`), so a retry overwrites what an earlier attempt stored.

The images of a result are recorded as usage (`images`, `cost_usd`) once per fal request. A 429
from fal becomes `RateLimited`: the type pauses on every worker, and the job comes back without
using an attempt (resuming its saved request, if fal had accepted one).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from jobrunner import PayloadError, PermanentFailure, Retry

from .._outcomes import rate_limited, storage_errors
from .._settings import IMAGE_DEFAULTS, TypeDefaults
from .._spans import span
from .._usage import record_images
from .fal import (
    FalConfigError,
    FalImages,
    FalPermanentError,
    FalRateLimited,
    FalRetryableError,
    ProgressCallback,
    QueueStatus,
)
from .fetch import (
    GeneratedImage,
    ImageFetchError,
    ImageRejected,
    extension_for,
    fetch_image,
    image_key,
    parse_image_result,
)
from .payload import ImagePayload

if TYPE_CHECKING:
    import httpx

    from jobrunner import JobContext, Plugin

    from .._settings import CineqoSettings
    from .._storage import Storage

JOB_TYPE = "image.generate"
REQUEST_ID = "fal_request_id"
DEFAULT_PREFIX = "images"
# Keys are per job and image: a stored object never changes meaning, so caches may keep it.
CACHE_CONTROL = "public, max-age=31536000, immutable"


def register(plugin: Plugin, limits: TypeDefaults = IMAGE_DEFAULTS) -> None:
    """Add the `image.generate` handler to `plugin`, with `limits` across the cluster."""
    plugin.handler(
        JOB_TYPE,
        concurrency=2,
        timeout=900,
        lease=60,
        max_attempts=5,
        requires=("fal", "http", "storage", "cineqo_settings"),
        global_concurrency=limits.concurrency,
        per_user_concurrency=limits.per_user,
        rate=limits.rate,
        payload=ImagePayload,
    )(generate_image)


@contextmanager
def fal_errors(settings: CineqoSettings, attempt: int) -> Iterator[None]:
    """fal and download failures as job outcomes (whether to retry is said by the type)."""
    try:
        yield
    except FalConfigError as exc:
        raise PayloadError(str(exc)) from None
    except (FalPermanentError, ImageRejected) as exc:
        raise PermanentFailure(str(exc)) from None
    except FalRateLimited as exc:
        raise rate_limited(str(exc), exc.retry_after, settings) from exc
    except FalRetryableError as exc:
        delay = exc.retry_after if exc.retry_after is not None else settings.backoff(attempt)
        raise Retry(str(exc), delay=delay) from exc
    except ImageFetchError as exc:
        raise Retry(str(exc), delay=settings.backoff(attempt)) from exc


def progress_reporter(ctx: JobContext) -> ProgressCallback:
    async def report(status: QueueStatus) -> None:
        if status.state == "queued":
            where = f" (position {status.position})" if status.position is not None else ""
            ctx.progress(0.1, f"queued at fal.ai{where}")
        elif status.state == "in_progress":
            ctx.progress(0.4, "generating" + (f": {status.logs[-1]}" if status.logs else ""))
        else:
            ctx.progress(0.7, "generated; storing the images")

    return report


async def store_image(
    ctx: JobContext,
    image: GeneratedImage,
    *,
    prefix: str,
    seed: int | None,
    http: httpx.AsyncClient,
    storage: Storage,
) -> dict[str, Any]:
    with span("image download", bytes=None) as current:
        data, content_type = await fetch_image(image.url, http_client=http)
        if current is not None:
            current.set_attribute("cineqo.bytes", len(data))
    key = image_key(prefix, ctx.id, image.index, extension_for(content_type))
    stored = await storage.put(key, data, content_type=content_type, cache_control=CACHE_CONTROL)
    return {
        "url": stored.url,
        "key": stored.key,
        "width": image.width,
        "height": image.height,
        "content_type": content_type,
        "seed": seed,
        "bytes": stored.size,
    }


async def generate(
    ctx: JobContext, request: ImagePayload, model: str, fal: FalImages, poll_interval: float
) -> tuple[str, dict[str, Any]]:
    """The fal request id and its raw result, resuming the request of an earlier attempt."""
    request_id: str | None = ctx.checkpoint.get(REQUEST_ID)

    async def submitted(new_id: str) -> None:
        nonlocal request_id
        request_id = new_id
        await ctx.save_checkpoint(REQUEST_ID, new_id)

    if request_id is not None:
        ctx.log.info("resuming fal request %s", request_id)
    raw = await fal.run(
        model,
        request.arguments(),
        request_id=request_id,
        on_submitted=submitted,
        on_progress=progress_reporter(ctx),
        interval=poll_interval,
    )
    assert request_id is not None  # set by the checkpoint or by `submitted`
    return request_id, raw


async def generate_image(ctx: JobContext[ImagePayload]) -> dict[str, Any]:
    """Generate images with fal.ai and store them; a retry never pays for a second request."""
    request = ctx.data
    settings: CineqoSettings = ctx.resource("cineqo_settings")
    storage: Storage = ctx.resource("storage")
    model = request.model or settings.image_model
    prefix = request.folder(DEFAULT_PREFIX)
    images = []
    with fal_errors(settings, ctx.attempt), storage_errors(settings, ctx.attempt):
        fal: FalImages = ctx.resource("fal")
        request_id, raw = await generate(ctx, request, model, fal, settings.fal_poll_interval)
        await record_images(ctx, settings.prices, model, request_id, raw)
        result = parse_image_result(raw, request_id=request_id)
        for image in result.images:
            stored = await store_image(
                ctx,
                image,
                prefix=prefix,
                seed=result.seed,
                http=ctx.resource("http"),
                storage=storage,
            )
            images.append(stored)
            ctx.progress(0.7 + 0.3 * len(images) / len(result.images), "stored")
    return {
        "images": images,
        "request_id": request_id,
        "model": model,
        "prompt": request.prompt,
        "seed": result.seed,
        "novel_id": request.novel_id,
        "metadata": request.metadata,
    }
