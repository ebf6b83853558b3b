"""The payload fields the Cineqo job types share (pure): pydantic types that carry their rules
and their JSON Schema, for every job's `payload` module.

Every payload model derives from `Payload`: unknown keys are refused (a misspelt option,
`max_chapter_char`, would otherwise be silently ignored), types are strict (`"5"` is not an
integer, `true` is not a number), and a key set to null is the same as a key left out. A
payload that breaks a rule fails the job at once, never retried, with a `PayloadError` naming
the field (the core's `payload=`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ._storage import StorageKeyError, safe_key

_MODEL_PATTERN = r"^[^\s\x00-\x1f]{1,200}$"
_MODEL = re.compile(_MODEL_PATTERN)
MAX_NOVEL_ID_CHARS = 128


class Payload(BaseModel):
    """A Cineqo payload: strict, closed, immutable; null means "not given"."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


def refuse(message: str) -> PydanticCustomError:
    """A payload error with exactly this message (the core adds the field and the value)."""
    return PydanticCustomError("cineqo_payload", message)


def _novel_id(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or "/" in value or len(value) > MAX_NOVEL_ID_CHARS:
        raise refuse(f"must be a string of at most {MAX_NOVEL_ID_CHARS} characters without '/'")
    return checked_key(value, "cannot name a storage folder")


def checked_key(value: str, what: str = "unsafe storage key") -> str:
    """`safe_key(value)`, or a payload error saying what is wrong (the value is shown anyway)."""
    try:
        return safe_key(value)
    except StorageKeyError as exc:
        problem = str(exc).rsplit(": ", 1)[-1]  # "unsafe storage key '…': {problem}"
        raise refuse(f"{what}: {problem}") from None


def _model_name(value: str) -> str:
    if not _MODEL.fullmatch(value):
        raise refuse("must be a model name without spaces")
    return value


NovelId = Annotated[
    str,
    BeforeValidator(_novel_id),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": MAX_NOVEL_ID_CHARS, "pattern": "^[^/]+$"},
                {"type": "integer"},
            ]
        }
    ),
]
"""The app's id of the novel (an integer is made a string): the novel's storage folder."""

StorageKey = Annotated[str, AfterValidator(checked_key)]
"""A relative, `/`-separated storage key, refused if it could escape the storage root."""

ModelName = Annotated[
    str,
    AfterValidator(_model_name),
    WithJsonSchema({"type": "string", "pattern": _MODEL_PATTERN}),
]
"""A model's name as a service knows it (`gpt-4o-mini`, `fal-ai/flux/dev`): no spaces."""
