"""Where a novel's text comes from, as `novel.split` and `character.extract` payloads say it
(pure): inline `text`, or a `source` key or path, with an optional `encoding`."""

from __future__ import annotations

import codecs
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from .._fields import Payload, refuse


def _source(value: str) -> str:
    if not value.strip():
        raise refuse("must be a storage key or a file path")
    return value


def _encoding(value: str) -> str:
    try:
        return codecs.lookup(value).name
    except LookupError:
        raise refuse(f"unknown encoding {value!r}") from None


class NovelInput(Payload):
    """Where a novel's text comes from: inline `text`, or a `source` key or path (not both)."""

    text: str | None = Field(
        None, description="The novel itself, for small inputs (a payload is at most 1 MB)."
    )
    source: Annotated[str, AfterValidator(_source)] | None = Field(
        None,
        description="A text, EPUB or DOCX file: a storage key, or an absolute path or file:// "
        "URI under CINEQO_ALLOWED_ROOTS.",
        examples=["uploads/三体.epub"],
    )
    encoding: Annotated[str, AfterValidator(_encoding)] | None = Field(
        None,
        description="The text file's encoding (gbk, big5, …), skipping detection; with "
        "`source` only (ignored, with a warning, for EPUB and DOCX).",
    )

    @model_validator(mode="after")
    def _one_novel(self) -> NovelInput:
        if self.text is not None and self.source is not None:
            raise refuse("give 'text' or 'source', not both")
        if self.encoding is not None and self.source is None:
            raise refuse("'encoding' applies to 'source' only")
        return self

    @property
    def novel(self) -> NovelInput | None:
        """The novel's input, or None when neither `text` nor `source` is given."""
        return self if self.text is not None or self.source is not None else None

    def describe(self) -> str:
        return f"source {self.source!r}" if self.source is not None else "the text"
