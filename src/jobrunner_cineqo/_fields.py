"""Validating payload fields by hand (pure), shared by every job's `payload` module.

Every mistake is a `PayloadError` that says which field is wrong and what would be right, so
the job fails at once and never retries. Unknown keys are refused too: a misspelt option
(`max_chapter_char`) would otherwise be silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, overload

from jobrunner import PayloadError

from ._storage import StorageKeyError, safe_key

_MODEL = re.compile(r"[^\s\x00-\x1f]{1,200}")


def payload_object(job_type: str, payload: Any, allowed: frozenset[str]) -> Mapping[str, Any]:
    """The payload as a mapping, refusing anything but a JSON object of `allowed` keys."""
    if not isinstance(payload, dict):
        raise PayloadError(f"{job_type} payload must be a JSON object, not {kind_of(payload)}")
    unknown = sorted(set(payload) - allowed)
    if unknown:
        raise PayloadError(
            f"{job_type} payload: unknown keys {unknown}; allowed: {sorted(allowed)}"
        )
    return payload


@overload
def int_field(data: Mapping[str, Any], name: str, default: int, *, low: int, high: int) -> int: ...


@overload
def int_field(
    data: Mapping[str, Any], name: str, default: None, *, low: int, high: int
) -> int | None: ...


def int_field(
    data: Mapping[str, Any], name: str, default: int | None, *, low: int, high: int
) -> int | None:
    value = data.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(f"{name!r} must be an integer, not {kind_of(value)}")
    if not low <= value <= high:
        raise PayloadError(f"{name!r} must be between {low} and {high}, not {value}")
    return value


def text_field(data: Mapping[str, Any], name: str, *, limit: int) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{name!r} must be a string, not {kind_of(value)}")
    value = value.strip()
    if not value:
        raise PayloadError(f"{name!r} is empty")
    if len(value) > limit:
        raise PayloadError(f"{name!r} is {len(value)} characters, over the limit of {limit}")
    return value


def model_field(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not _MODEL.fullmatch(value):
        raise PayloadError(f"{name!r} must be a model name without spaces, not {value!r}")
    return value


def novel_id_field(data: Mapping[str, Any]) -> str | None:
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


def key_field(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{name!r} must be a storage key, not {kind_of(value)}")
    try:
        return safe_key(value)
    except StorageKeyError as exc:
        raise PayloadError(f"{name!r}: {exc}") from None


def kind_of(value: Any) -> str:
    """How a JSON value is named in messages: "an object", "a number", "null" …"""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)
