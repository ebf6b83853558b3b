"""The `character.extract` payload (pure): which novel or split job, and which model."""

from __future__ import annotations

from typing import Any

import attrs

from jobrunner import PayloadError

from .._fields import int_field, key_field, model_field, novel_id_field, payload_object
from .._novel import NOVEL_KEYS, NovelInput, manifest_key, novel_input

DEFAULT_MAX_CHARACTERS = 40
EXTRACT_KEYS = NOVEL_KEYS | {
    "split_manifest",
    "split_job_id",
    "novel_id",
    "model",
    "language",
    "max_characters",
}


@attrs.frozen(kw_only=True)
class ExtractRequest:
    """Exactly one of `novel`, `split_manifest` (a manifest key) or `split_job_id`.

    `novel_id` is the app's id of the novel, as for every Cineqo job: it names the novel's
    storage folder (where `split_job_id`'s manifest is found; a given `split_manifest` must
    belong to it) and is echoed in the result.
    """

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


def parse_extract(payload: Any) -> ExtractRequest:
    data = payload_object("character.extract", payload, EXTRACT_KEYS)
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
    return ExtractRequest(
        novel=novel_input("character.extract", data),
        split_manifest=key_field(data, "split_manifest"),
        split_job_id=int_field(data, "split_job_id", None, low=1, high=2**63 - 1),
        novel_id=novel_id_field(data),
        model=model_field(data, "model"),
        max_characters=int_field(data, "max_characters", DEFAULT_MAX_CHARACTERS, low=1, high=500),
    )
