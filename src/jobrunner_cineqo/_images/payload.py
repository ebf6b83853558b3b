"""The `image.generate` payload (pure): the fal.ai input, and where to store the images:
`{key_prefix or "images"}/{novel_id}/{job id}/{index}.{ext}` (without a `novel_id`, no folder
for it)."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from .._fields import ModelName, NovelId, Payload, checked_key, refuse

_SIZE_PRESET = re.compile(r"[a-z0-9_]{1,40}")
_MAX_SIDE = 16384
_MAX_PROMPT_CHARS = 8000
_MAX_METADATA_BYTES = 4096
# With a novel_id (one key segment, at most 255 bytes) this leaves room for
# "/{job id}/{index}.{ext}" under R2's 1024-byte keys.
_MAX_PREFIX_BYTES = 512


def _key_prefix(value: str) -> str | None:
    prefix = value.strip("/")
    if not prefix:
        return None
    if len(prefix.encode()) > _MAX_PREFIX_BYTES:
        raise refuse(f"is longer than {_MAX_PREFIX_BYTES} bytes")
    return checked_key(prefix)


def _image_size(value: Any) -> str | dict[str, int]:
    if isinstance(value, str) and _SIZE_PRESET.fullmatch(value):
        return value
    if isinstance(value, dict) and set(value) == {"width", "height"}:
        sides = [value["width"], value["height"]]
        if all(type(side) is int and 1 <= side <= _MAX_SIDE for side in sides):
            return {"width": value["width"], "height": value["height"]}
    raise refuse(
        "must be a preset name such as 'square_hd' or 'landscape_4_3', "
        'or {"width": W, "height": H} in pixels'
    )


def _metadata(value: dict[str, Any]) -> dict[str, Any]:
    size = len(json.dumps(value, ensure_ascii=False).encode())
    if size > _MAX_METADATA_BYTES:
        raise refuse(f"is {size} bytes, over the limit of {_MAX_METADATA_BYTES}")
    return value


_SIDE = {"type": "integer", "minimum": 1, "maximum": _MAX_SIDE}
Prompt = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=_MAX_PROMPT_CHARS)
]
KeyPrefix = Annotated[str, AfterValidator(_key_prefix)]
ImageSize = Annotated[
    str | dict[str, int],
    BeforeValidator(_image_size),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": f"^{_SIZE_PRESET.pattern}$"},
                {
                    "type": "object",
                    "properties": {"width": _SIDE, "height": _SIDE},
                    "required": ["width", "height"],
                    "additionalProperties": False,
                },
            ]
        }
    ),
]
OutputFormat = Literal["jpeg", "png"]


class ImagePayload(Payload):
    """What `image.generate` takes: a prompt, and what fal and storage should do with it."""

    prompt: Prompt = Field(description="What to draw (surrounding spaces are dropped).")
    negative_prompt: Prompt | None = Field(None, description="Passed to models that take one.")
    model: ModelName | None = Field(
        None, description="A fal app id (default CINEQO_IMAGE_MODEL).", examples=["fal-ai/flux/dev"]
    )
    image_size: ImageSize | None = Field(
        None,
        description="A preset name (square_hd, landscape_4_3, …; fal checks the name), or "
        "{width, height} in pixels.",
    )
    num_images: int = Field(1, ge=1, le=4, description="How many images to generate.")
    seed: int | None = Field(None, ge=0, le=2**53, description="The model's random seed.")
    output_format: OutputFormat | None = Field(None, description="The images' file format.")
    key_prefix: KeyPrefix | None = Field(
        None, description="The storage folder (default images); non-ASCII is fine."
    )
    novel_id: NovelId | None = Field(
        None,
        description="The app's id of the novel: a folder under the prefix; echoed in the result.",
    )
    metadata: Annotated[dict[str, Any], AfterValidator(_metadata)] | None = Field(
        None,
        description="Any JSON object of at most 4 KB, echoed in the result (the pipeline names "
        "the character here).",
    )

    def folder(self, default_prefix: str) -> str:
        """`{key_prefix or default}/{novel_id}`, or the prefix alone without a novel_id."""
        prefix = self.key_prefix or default_prefix
        return f"{prefix}/{self.novel_id}" if self.novel_id else prefix

    def arguments(self) -> dict[str, Any]:
        """The fal.ai input: only what was given, so the model's own defaults apply."""
        given = {"negative_prompt", "image_size", "seed", "output_format"}
        return {
            "prompt": self.prompt,
            "num_images": self.num_images,
            **self.model_dump(include=given, exclude_none=True),
        }
