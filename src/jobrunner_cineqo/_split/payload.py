"""The `novel.split` payload (pure): the novel, and how to cut and file it."""

from __future__ import annotations

from typing import Any

import attrs

from jobrunner import PayloadError

from .._fields import int_field, novel_id_field, payload_object
from .._novel import DEFAULT_MAX_CHAPTER_CHARS, NOVEL_KEYS, NovelInput, novel_input

SPLIT_KEYS = NOVEL_KEYS | {"max_chapter_chars", "novel_id"}


@attrs.frozen(kw_only=True)
class SplitRequest:
    novel: NovelInput
    max_chapter_chars: int = DEFAULT_MAX_CHAPTER_CHARS
    novel_id: str | None = None


def parse_split(payload: Any) -> SplitRequest:
    data = payload_object("novel.split", payload, SPLIT_KEYS)
    novel = novel_input("novel.split", data)
    if novel is None:
        raise PayloadError("novel.split payload: give 'text' (a string) or 'source'")
    return SplitRequest(
        novel=novel,
        max_chapter_chars=int_field(
            data, "max_chapter_chars", DEFAULT_MAX_CHAPTER_CHARS, low=100, high=10_000_000
        ),
        novel_id=novel_id_field(data),
    )
