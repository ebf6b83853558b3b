"""The `novel.split` payload (pure): the novel, and how to cut and file it."""

from __future__ import annotations

from pydantic import Field, model_validator

from .._fields import NovelId, refuse
from .._novel import DEFAULT_MAX_CHAPTER_CHARS, NovelInput


class SplitPayload(NovelInput):
    """What `novel.split` takes: exactly one of `text` or `source`."""

    max_chapter_chars: int = Field(
        DEFAULT_MAX_CHAPTER_CHARS,
        ge=100,
        le=10_000_000,
        description="Longer chapters are cut into parts at paragraph boundaries.",
    )
    novel_id: NovelId | None = Field(
        None,
        description="The app's id of the novel (at most 128 characters, no '/'): names its "
        "storage folder, novels/{novel_id}/ (else novels/job-{job id}/), and is echoed in the "
        "result.",
    )

    @model_validator(mode="after")
    def _a_novel(self) -> SplitPayload:
        if self.novel is None:
            raise refuse("give 'text' (a string) or 'source'")
        return self
