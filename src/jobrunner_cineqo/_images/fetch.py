"""Getting generated images: read fal's result, download (or decode a ``data:`` URI), check.

Errors: ``ImageFetchError(RuntimeError)`` is retryable (network, 408/429/5xx);
``ImageRejected(ValueError)`` is permanent (too large, not an image, other 4xx, bad URL).
``parse_image_result`` raises ``FalPermanentError`` / ``FalNsfwError`` from ``fal``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, unquote_to_bytes

import attrs

from .._storage import safe_key
from .fal import FalNsfwError, FalPermanentError

if TYPE_CHECKING:
    import httpx

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
IMAGE_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
_RETRYABLE_STATUS = frozenset({408, 409, 425, 429})


class ImageFetchError(RuntimeError):
    """The image could not be downloaded now; trying again later may work."""


class ImageRejected(ValueError):
    """The image URL or its content is unusable; trying again will not help."""


def _short(url: str) -> str:
    # data: URIs can be megabytes long; messages only need the start.
    return repr(url if len(url) <= 120 else url[:100] + "…")


@attrs.frozen(kw_only=True)
class GeneratedImage:
    """One image of a result; ``index`` is its place in fal's list, kept when others drop."""

    index: int
    url: str = attrs.field(repr=_short)  # may be a long data: URI
    width: int | None = None
    height: int | None = None
    content_type: str | None = None  # as fal declares it; fetch_image sniffs the real one
    nsfw: bool = False


@attrs.frozen(kw_only=True)
class ImageResult:
    """A FLUX-style result: images, and the seed and prompt that produced them."""

    images: tuple[GeneratedImage, ...]
    seed: int | None = None
    prompt: str | None = None


def parse_image_result(
    data: Mapping[str, Any], *, request_id: str | None = None, drop_nsfw: bool = False
) -> ImageResult:
    """Read ``{"images":[{"url",...}],"seed","has_nsfw_concepts","prompt"}``.

    Any flagged image raises ``FalNsfwError``; with ``drop_nsfw`` flagged images are left
    out instead, and only a result with nothing left raises.
    """
    raw_images = data.get("images")
    if not isinstance(raw_images, list) or not raw_images:
        raise FalPermanentError("fal result has no images", request_id=request_id)
    flags = data.get("has_nsfw_concepts")
    flags = flags if isinstance(flags, list) else []
    images = [
        _image(item, index, nsfw=index < len(flags) and bool(flags[index]), request_id=request_id)
        for index, item in enumerate(raw_images)
    ]
    flagged = [image.index for image in images if image.nsfw]
    if flagged and (not drop_nsfw or len(flagged) == len(images)):
        raise FalNsfwError(
            f"the safety checker flagged images {flagged} of {len(images)}", request_id=request_id
        )
    seed, prompt = data.get("seed"), data.get("prompt")
    return ImageResult(
        images=tuple(image for image in images if not image.nsfw),
        seed=seed if isinstance(seed, int) else None,
        prompt=prompt if isinstance(prompt, str) else None,
    )


def _image(item: Any, index: int, *, nsfw: bool, request_id: str | None) -> GeneratedImage:
    if not isinstance(item, dict) or not isinstance(item.get("url"), str) or not item["url"]:
        raise FalPermanentError(f"fal result image {index} has no url", request_id=request_id)
    width, height, content_type = item.get("width"), item.get("height"), item.get("content_type")
    return GeneratedImage(
        index=index,
        url=item["url"],
        width=width if isinstance(width, int) else None,
        height=height if isinstance(height, int) else None,
        content_type=content_type if isinstance(content_type, str) else None,
        nsfw=nsfw,
    )


def sniff_image_type(data: bytes) -> str | None:
    """The content type from the magic bytes: PNG, JPEG or WebP, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def extension_for(content_type: str) -> str:
    """``png``, ``jpg`` or ``webp`` for a sniffed content type."""
    try:
        return IMAGE_EXTENSIONS[content_type]
    except KeyError:
        raise ImageRejected(f"unsupported image type {content_type!r}") from None


async def fetch_image(
    url: str, *, http_client: httpx.AsyncClient, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[bytes, str]:
    """The image bytes and their sniffed content type, from an http(s) or ``data:`` URL.

    Use an ``http_client`` without the fal.ai key: image URLs point at CDNs.
    """
    scheme = url.partition(":")[0].lower()
    if scheme == "data":
        data = decode_data_uri(url, max_bytes=max_bytes)
    elif scheme in ("http", "https"):
        data = await _download(url, http_client, max_bytes)
    else:
        raise ImageRejected(f"unsupported image URL {_short(url)}")
    content_type = sniff_image_type(data)
    if content_type is None:
        raise ImageRejected(f"{_short(url)} is not a PNG, JPEG or WebP image")
    return data, content_type


def decode_data_uri(uri: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The bytes of a ``data:[type][;base64],payload`` URI (RFC 2397)."""
    header, comma, payload = uri.partition(",")
    if not comma or not header.lower().startswith("data:"):
        raise ImageRejected("malformed data: URI (no comma)")
    if header.lower().endswith(";base64"):
        text = "".join(unquote(payload).split())
        if len(text) // 4 * 3 > max_bytes + 2:  # refuse before decoding a huge payload
            raise ImageRejected(f"data: URI image is larger than {max_bytes} bytes")
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ImageRejected("data: URI has invalid base64") from None
    else:
        data = unquote_to_bytes(payload)
    if len(data) > max_bytes:
        raise ImageRejected(f"data: URI image is larger than {max_bytes} bytes")
    return data


async def _download(url: str, http_client: httpx.AsyncClient, max_bytes: int) -> bytes:
    import httpx

    try:
        async with http_client.stream("GET", url, follow_redirects=True) as response:
            _check_status(response.status_code, url)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise ImageRejected(f"{_short(url)} is larger than {max_bytes} bytes")
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise ImageRejected(f"{_short(url)} is larger than {max_bytes} bytes")
                chunks.append(chunk)
    except httpx.InvalidURL as exc:
        raise ImageRejected(f"invalid image URL {_short(url)}: {exc}") from None
    except httpx.HTTPError as exc:
        reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
        raise ImageFetchError(f"could not download {_short(url)} ({reason})") from exc
    return b"".join(chunks)


def _check_status(status: int, url: str) -> None:
    if status == 200:
        return
    message = f"downloading {_short(url)} answered HTTP {status}"
    if status in _RETRYABLE_STATUS or status >= 500:
        raise ImageFetchError(message)
    raise ImageRejected(message)


def image_key(prefix: str, job_id: str | int, index: int, ext: str) -> str:
    """The storage key ``{prefix}/{job_id}/{index}.{ext}``: a retried job rewrites the same key."""
    job = str(job_id)
    if not job or "/" in job:
        raise ValueError(f"job id {job!r} must be one non-empty path segment")
    if index < 0:
        raise ValueError(f"image index must be >= 0, not {index}")
    extension = ext.lower().lstrip(".")
    if extension not in IMAGE_EXTENSIONS.values():
        raise ValueError(f"image extension must be one of png, jpg, webp, not {ext!r}")
    prefix = prefix.strip("/")
    return safe_key(
        f"{prefix}/{job}/{index}.{extension}" if prefix else f"{job}/{index}.{extension}"
    )
