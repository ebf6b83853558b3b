"""The `character.extract` payload (pure): which novel or split job, and which model."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from .._fields import ModelName, NovelId, StorageKey, refuse
from .._novel import NovelInput, manifest_key

DEFAULT_MAX_CHARACTERS = 40
_SOURCES = ("text", "source", "split_manifest", "split_job_id")


class ExtractPayload(NovelInput):
    """What `character.extract` takes: exactly one of `text`, `source`, `split_manifest` or
    `split_job_id`.

    `novel_id` is the app's id of the novel, as for every Cineqo job: it names the novel's
    storage folder (where `split_job_id`'s manifest is found; a given `split_manifest` must
    belong to it) and is echoed in the result.
    """

    split_manifest: StorageKey | None = Field(
        None,
        description="The manifest_key of a completed novel.split: reuses its stored chapters.",
    )
    split_job_id: int | None = Field(
        None,
        ge=1,
        le=2**63 - 1,
        description="A completed novel.split job, whose manifest is found at "
        "novels/{novel_id or job-<split_job_id>}/manifest.json; add the novel_id that job "
        "was given, if any.",
    )
    novel_id: NovelId | None = Field(
        None,
        description="The app's id of the novel: with split_job_id it names the manifest's "
        "folder; a split_manifest must belong to it; echoed in the result.",
    )
    model: ModelName | None = Field(
        None, description="The LLM to ask (default CINEQO_LLM_MODEL).", examples=["gpt-4o-mini"]
    )
    max_characters: int = Field(
        DEFAULT_MAX_CHARACTERS, ge=1, le=500, description="Keep at most this many characters."
    )
    language: None = Field(
        None,
        description="Not supported yet (refused): descriptions are written in the novel's "
        "language and visual_prompt in English.",
    )

    @field_validator("language", mode="before")
    @classmethod
    def _no_language(cls, value: Any) -> None:
        # The prompt layer writes descriptions in the novel's own language and has no switch.
        raise refuse(
            "not supported yet; descriptions are written in the novel's language and "
            "visual_prompt in English"
        )

    @model_validator(mode="after")
    def _one_source(self) -> ExtractPayload:
        given = [name for name in _SOURCES if getattr(self, name) is not None]
        if len(given) != 1:
            found = f"given: {', '.join(given)}" if given else "none given"
            raise refuse(
                "give exactly one of 'text', 'source', 'split_manifest' or 'split_job_id' "
                f"({found})"
            )
        return self

    def manifest_key(self) -> str | None:
        """The manifest to read: given, or where `novel.split` job `split_job_id` wrote it."""
        if self.split_manifest is not None:
            return self.split_manifest
        if self.split_job_id is not None:
            return manifest_key(self.novel_id or f"job-{self.split_job_id}")
        return None
