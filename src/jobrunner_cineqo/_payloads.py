"""Payload validation for Cineqo's job types (pure): every mistake is a `PayloadError` that says
which field is wrong and what would be right, so the job fails at once and never retries.

Unknown keys are refused too: a misspelt option (`max_chapter_char`) would otherwise be
silently ignored.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Mapping
from typing import Any

import attrs

from jobrunner import PayloadError

from ._storage import StorageKeyError, safe_key

DEFAULT_MAX_CHAPTER_CHARS = 20_000
DEFAULT_MAX_CHARACTERS = 40
DEFAULT_PORTRAITS = 5
MAX_PORTRAITS = 20
OUTPUT_FORMATS = ("jpeg", "png")
_MODEL = re.compile(r"[^\s\x00-\x1f]{1,200}")
_SIZE_PRESET = re.compile(r"[a-z0-9_]{1,40}")
_MAX_PROMPT_CHARS = 8000
_MAX_METADATA_BYTES = 4096
_MAX_PREFIX_BYTES = 512  # leaves room for "/{job id}/{index}.{ext}" under R2's 1024

NOVEL_KEYS = frozenset({"text", "source", "encoding"})
SPLIT_KEYS = NOVEL_KEYS | {"max_chapter_chars", "novel_id"}
EXTRACT_KEYS = NOVEL_KEYS | {
    "split_manifest",
    "split_job_id",
    "novel_id",
    "model",
    "language",
    "max_characters",
}
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
        "metadata",
    }
)
PORTRAIT_KEYS = frozenset({"image_model", "image_size", "output_format", "key_prefix"})
PROCESS_KEYS = SPLIT_KEYS | {"model", "max_characters", "portraits"} | PORTRAIT_KEYS


@attrs.frozen(kw_only=True)
class NovelInput:
    """Where a novel's text comes from: inline `text`, or a `source` key or path."""

    text: str | None = None
    source: str | None = None
    encoding: str | None = None

    def describe(self) -> str:
        return f"source {self.source!r}" if self.source is not None else "the text"


@attrs.frozen(kw_only=True)
class SplitRequest:
    novel: NovelInput
    max_chapter_chars: int = DEFAULT_MAX_CHAPTER_CHARS
    novel_id: str | None = None


@attrs.frozen(kw_only=True)
class ExtractRequest:
    """Exactly one of `novel`, `split_manifest` (a manifest key) or `split_job_id`."""

    novel: NovelInput | None = None
    split_manifest: str | None = None
    split_job_id: int | None = None
    novel_id: str | None = None
    model: str | None = None
    max_characters: int = DEFAULT_MAX_CHARACTERS

    def manifest_key(self) -> str | None:
        """The manifest to read: given, or where `novel.split` job `split_job_id` wrote it."""
        if self.split_manifest is not None:
            return self.split_manifest
        if self.split_job_id is not None:
            return manifest_key(self.novel_id or f"job-{self.split_job_id}")
        return None


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
    metadata: dict[str, Any] | None = None

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


@attrs.frozen(kw_only=True)
class ProcessRequest:
    """`novel.process`: the split child's payload, and options for the later stages."""

    split: dict[str, Any]
    novel_id: str | None
    model: str | None
    max_characters: int
    portraits: int
    portrait_options: dict[str, Any]


def manifest_key(novel_id: str) -> str:
    return f"novels/{novel_id}/manifest.json"


def chapter_key(novel_id: str, index: int) -> str:
    return f"novels/{novel_id}/chapters/{index:04d}.txt"


# --- parsers -----------------------------------------------------------------------------


def parse_split(payload: Any) -> SplitRequest:
    data = _object("novel.split", payload, SPLIT_KEYS)
    return SplitRequest(
        novel=_novel("novel.split", data, required=True),
        max_chapter_chars=_int(
            data, "max_chapter_chars", DEFAULT_MAX_CHAPTER_CHARS, low=100, high=10_000_000
        ),
        novel_id=_novel_id(data),
    )


def parse_extract(payload: Any) -> ExtractRequest:
    data = _object("character.extract", payload, EXTRACT_KEYS)
    given = [k for k in ("text", "source", "split_manifest", "split_job_id") if k in data]
    if len(given) != 1:
        found = f"got {', '.join(given)}" if given else "got none"
        raise PayloadError(
            "character.extract payload: give exactly one of 'text', 'source', "
            f"'split_manifest' or 'split_job_id' ({found})"
        )
    if data.get("language") is not None:
        # The prompt layer writes descriptions in the novel's own language and has no switch.
        raise PayloadError(
            "character.extract payload: 'language' is not supported yet; descriptions are "
            "written in the novel's language and visual_prompt in English"
        )
    if "encoding" in data and given[0] not in ("text", "source"):
        raise PayloadError("character.extract payload: 'encoding' applies to 'source' only")
    if "novel_id" in data and given[0] != "split_job_id":
        raise PayloadError("character.extract payload: 'novel_id' goes with 'split_job_id' only")
    return ExtractRequest(
        novel=_novel("character.extract", data, required=False),
        split_manifest=_key(data, "split_manifest"),
        split_job_id=_int(data, "split_job_id", None, low=1, high=2**63 - 1),
        novel_id=_novel_id(data),
        model=_model(data, "model"),
        max_characters=_int(data, "max_characters", DEFAULT_MAX_CHARACTERS, low=1, high=500),
    )


def parse_image(payload: Any) -> ImageRequest:
    data = _object("image.generate", payload, IMAGE_KEYS)
    prompt = _text(data, "prompt", limit=_MAX_PROMPT_CHARS)
    if prompt is None:
        raise PayloadError("image.generate payload: 'prompt' is required")
    output_format = data.get("output_format")
    if output_format is not None and output_format not in OUTPUT_FORMATS:
        raise PayloadError(
            f"image.generate payload: 'output_format' must be one of {list(OUTPUT_FORMATS)}"
        )
    return ImageRequest(
        prompt=prompt,
        negative_prompt=_text(data, "negative_prompt", limit=_MAX_PROMPT_CHARS),
        model=_model(data, "model"),
        image_size=_image_size(data.get("image_size")),
        num_images=_int(data, "num_images", 1, low=1, high=4),
        seed=_int(data, "seed", None, low=0, high=2**53),
        output_format=output_format,
        key_prefix=_key_prefix(data.get("key_prefix")),
        metadata=_metadata(data.get("metadata")),
    )


def parse_process(payload: Any) -> ProcessRequest:
    data = _object("novel.process", payload, PROCESS_KEYS)
    split_data = {k: v for k, v in data.items() if k in SPLIT_KEYS}
    parse_split(split_data)  # the child would refuse it anyway: say so now, once
    options = {k: v for k, v in data.items() if k in PORTRAIT_KEYS}
    image = {"model" if k == "image_model" else k: v for k, v in options.items()}
    parse_image({"prompt": "check", **image})
    return ProcessRequest(
        split=split_data,
        novel_id=_novel_id(data),
        model=_model(data, "model"),
        max_characters=_int(data, "max_characters", DEFAULT_MAX_CHARACTERS, low=1, high=500),
        portraits=_int(data, "portraits", DEFAULT_PORTRAITS, low=0, high=MAX_PORTRAITS),
        portrait_options=image,
    )


# --- fields ------------------------------------------------------------------------------


def _object(job_type: str, payload: Any, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(payload, dict):
        raise PayloadError(f"{job_type} payload must be a JSON object, not {_kind(payload)}")
    unknown = sorted(set(payload) - allowed)
    if unknown:
        raise PayloadError(
            f"{job_type} payload: unknown keys {unknown}; allowed: {sorted(allowed)}"
        )
    return payload


def _novel(job_type: str, data: Mapping[str, Any], *, required: bool) -> NovelInput | None:
    has_text, has_source = "text" in data, "source" in data
    if has_text and has_source:
        raise PayloadError(f"{job_type} payload: give 'text' or 'source', not both")
    if not has_text and not has_source:
        if required:
            raise PayloadError(f"{job_type} payload: give 'text' (a string) or 'source'")
        return None
    encoding = data.get("encoding")
    if encoding is not None:
        if has_text:
            raise PayloadError(f"{job_type} payload: 'encoding' applies to 'source' only")
        encoding = _encoding(encoding)
    if has_text:
        text = data["text"]
        if not isinstance(text, str):
            raise PayloadError(f"'text' must be a string, not {_kind(text)}")
        return NovelInput(text=text)
    source = data["source"]
    if not isinstance(source, str) or not source.strip():
        raise PayloadError("'source' must be a storage key or a file path")
    return NovelInput(source=source, encoding=encoding)


def _encoding(value: Any) -> str:
    if not isinstance(value, str):
        raise PayloadError(f"'encoding' must be a string, not {_kind(value)}")
    try:
        return codecs.lookup(value).name
    except LookupError:
        raise PayloadError(f"'encoding': unknown encoding {value!r}") from None


def _int(data: Mapping[str, Any], name: str, default: int | None, *, low: int, high: int) -> Any:
    value = data.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(f"{name!r} must be an integer, not {_kind(value)}")
    if not low <= value <= high:
        raise PayloadError(f"{name!r} must be between {low} and {high}, not {value}")
    return value


def _text(data: Mapping[str, Any], name: str, *, limit: int) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{name!r} must be a string, not {_kind(value)}")
    value = value.strip()
    if not value:
        raise PayloadError(f"{name!r} is empty")
    if len(value) > limit:
        raise PayloadError(f"{name!r} is {len(value)} characters, over the limit of {limit}")
    return value


def _model(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not _MODEL.fullmatch(value):
        raise PayloadError(f"{name!r} must be a model name without spaces, not {value!r}")
    return value


def _novel_id(data: Mapping[str, Any]) -> str | None:
    value = data.get("novel_id")
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or "/" in value or len(value) > 128:
        raise PayloadError("'novel_id' must be a string of at most 128 characters without '/'")
    try:
        return safe_key(value)
    except StorageKeyError as exc:
        raise PayloadError(f"'novel_id' cannot name a storage folder: {exc}") from None


def _key(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{name!r} must be a storage key, not {_kind(value)}")
    try:
        return safe_key(value)
    except StorageKeyError as exc:
        raise PayloadError(f"{name!r}: {exc}") from None


def _key_prefix(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(f"'key_prefix' must be a string, not {_kind(value)}")
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
        raise PayloadError(f"'metadata' must be a JSON object, not {_kind(value)}")
    size = len(json.dumps(value, ensure_ascii=False).encode())
    if size > _MAX_METADATA_BYTES:
        raise PayloadError(f"'metadata' is {size} bytes, over the limit of {_MAX_METADATA_BYTES}")
    return value


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)
