"""Where a novel's text comes from, as `novel.split` and `character.extract` payloads say it
(pure): inline `text`, or a `source` key or path, with an optional `encoding`."""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from typing import Any

import attrs

from jobrunner import PayloadError

from .._fields import kind_of

NOVEL_KEYS = frozenset({"text", "source", "encoding"})


@attrs.frozen(kw_only=True)
class NovelInput:
    """Where a novel's text comes from: inline `text`, or a `source` key or path."""

    text: str | None = None
    source: str | None = None
    encoding: str | None = None

    def describe(self) -> str:
        return f"source {self.source!r}" if self.source is not None else "the text"


def novel_input(job_type: str, data: Mapping[str, Any]) -> NovelInput | None:
    """The novel named by `text` or `source` (and `encoding`) in `data`; None if neither."""
    has_text, has_source = "text" in data, "source" in data
    if has_text and has_source:
        raise PayloadError(f"{job_type} payload: give 'text' or 'source', not both")
    if not has_text and not has_source:
        return None
    encoding = data.get("encoding")
    if encoding is not None:
        if has_text:
            raise PayloadError(f"{job_type} payload: 'encoding' applies to 'source' only")
        encoding = _encoding(encoding)
    if has_text:
        text = data["text"]
        if not isinstance(text, str):
            raise PayloadError(f"'text' must be a string, not {kind_of(text)}")
        return NovelInput(text=text)
    source = data["source"]
    if not isinstance(source, str) or not source.strip():
        raise PayloadError("'source' must be a storage key or a file path")
    return NovelInput(source=source, encoding=encoding)


def _encoding(value: Any) -> str:
    if not isinstance(value, str):
        raise PayloadError(f"'encoding' must be a string, not {kind_of(value)}")
    try:
        return codecs.lookup(value).name
    except LookupError:
        raise PayloadError(f"'encoding': unknown encoding {value!r}") from None
