"""The `image.generate` payload (pure): the fal.ai input, and where to store the images:
`{key_prefix or "images"}/{novel_id}/{job id}/{index}.{ext}` (without a `novel_id`, no folder
for it)."""

from __future__ import annotations

import json
import re
from typing import Any

import attrs

from jobrunner import PayloadError

from .._fields import (
    int_field,
    kind_of,
    model_field,
    novel_id_field,
    payload_object,
    text_field,
)
from .._storage import StorageKeyError, safe_key

OUTPUT_FORMATS = ("jpeg", "png")
IMAGE_KEYS = frozenset(
    {
        "prompt",
        "negative_prompt",
        "model",
        "image_size",
        "num_images",
        "seed",
        "output_format",
        "key_prefix",
        "novel_id",
        "metadata",
    }
)
_SIZE_PRESET = re.compile(r"[a-z0-9_]{1,40}")
_MAX_PROMPT_CHARS = 8000
_MAX_METADATA_BYTES = 4096
# With a novel_id (one key segment, at most 255 bytes) this leaves room for
# "/{job id}/{index}.{ext}" under R2's 1024-byte keys.
_MAX_PREFIX_BYTES = 512


@attrs.frozen(kw_only=True)
class ImageRequest:
    prompt: str
    negative_prompt: str | None = None
    model: str | None = None
    image_size: str | dict[str, int] | None = None
    num_images: int = 1
    seed: int | None = None
    output_format: str | None = None
    key_prefix: str | None = None
    novel_id: str | None = None  # the app's id of the novel: a folder under the prefix
    metadata: dict[str, Any] | None = None

    def folder(self, default_prefix: str) -> str:
        """`{key_prefix or default}/{novel_id}`, or the prefix alone without a novel_id."""
        prefix = self.key_prefix or default_prefix
        return f"{prefix}/{self.novel_id}" if self.novel_id else prefix

    def arguments(self) -> dict[str, Any]:
        """The fal.ai input: only what was given, so the model's own defaults apply."""
        args: dict[str, Any] = {"prompt": self.prompt, "num_images": self.num_images}
        optional = {
            "negative_prompt": self.negative_prompt,
            "image_size": self.image_size,
            "seed": self.seed,
            "output_format": self.output_format,
        }
        args.update({name: value for name, value in optional.items() if value is not None})
        return args


def parse_image(payload: Any) -> ImageRequest:
    data = payload_object("image.generate", payload, IMAGE_KEYS)
    prompt = text_field(data, "prompt", limit=_MAX_PROMPT_CHARS)
    if prompt is None:
        raise PayloadError("image.generate payload: 'prompt' is required")
    output_format = data.get("output_format")
    if output_format is not None and output_format not in OUTPUT_FORMATS:
        raise PayloadError(
            f"image.generate payload: 'output_format' must be one of {list(OUTPUT_FORMATS)}"
        )
    return ImageRequest(
        prompt=prompt,
        negative_prompt=text_field(data, "negative_prompt", limit=_MAX_PROMPT_CHARS),
        model=model_field(data, "model"),
        image_size=_image_size(data.get("image_size")),
        num_images=int_field(data, "num_images", 1, low=1, high=4),
        seed=int_field(data, "seed", None, low=0, high=2**53),
        output_format=output_format,
        key_prefix=_key_prefix(data.get("key_prefix")),
        novel_id=novel_id_field(data),
        metadata=_metadata(data.get("metadata")),
    )


def _key_prefix(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(f"'key_prefix' must be a string, not {kind_of(value)}")
    prefix = value.strip("/")
    if not prefix:
        return None
    if len(prefix.encode()) > _MAX_PREFIX_BYTES:
        raise PayloadError(f"'key_prefix' is longer than {_MAX_PREFIX_BYTES} bytes")
    try:
        return safe_key(prefix)
    except StorageKeyError as exc:
        raise PayloadError(f"'key_prefix': {exc}") from None


def _image_size(value: Any) -> str | dict[str, int] | None:
    if value is None:
        return None
    if isinstance(value, str) and _SIZE_PRESET.fullmatch(value):
        return value
    if isinstance(value, dict) and set(value) == {"width", "height"}:
        sides = [value["width"], value["height"]]
        if all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 16384 for s in sides):
            return {"width": value["width"], "height": value["height"]}
    raise PayloadError(
        "'image_size' must be a preset name such as 'square_hd' or 'landscape_4_3', "
        'or {"width": W, "height": H} in pixels'
    )


def _metadata(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise PayloadError(f"'metadata' must be a JSON object, not {kind_of(value)}")
    size = len(json.dumps(value, ensure_ascii=False).encode())
    if size > _MAX_METADATA_BYTES:
        raise PayloadError(f"'metadata' is {size} bytes, over the limit of {_MAX_METADATA_BYTES}")
    return value
