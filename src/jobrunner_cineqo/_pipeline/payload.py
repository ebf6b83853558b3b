"""The `novel.process` payload (pure): the split child's payload, and options for the later
stages. They are the children's own field types, so a bad option fails the pipeline at once
rather than a child later."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from .._cast import DEFAULT_MAX_CHARACTERS
from .._fields import ModelName
from .._images import ImageSize, KeyPrefix, OutputFormat
from .._split import SplitPayload

DEFAULT_PORTRAITS = 5
MAX_PORTRAITS = 20


class ProcessPayload(SplitPayload):
    """What `novel.process` takes: the payload of `novel.split`, and options for the cast and
    the portraits."""

    model: ModelName | None = Field(
        None, description="Passed to character.extract (default CINEQO_LLM_MODEL)."
    )
    max_characters: int = Field(
        DEFAULT_MAX_CHARACTERS, ge=1, le=500, description="Passed to character.extract."
    )
    portraits: int = Field(
        DEFAULT_PORTRAITS,
        ge=0,
        le=MAX_PORTRAITS,
        description="How many main characters (the most mentioned) get a portrait.",
    )
    image_model: ModelName | None = Field(
        None, description="Passed to each image.generate as its model."
    )
    image_size: ImageSize | None = Field(None, description="Passed to each image.generate.")
    output_format: OutputFormat | None = Field(None, description="Passed to each image.generate.")
    key_prefix: KeyPrefix | None = Field(
        None, description="Passed to each image.generate (default portraits)."
    )

    @property
    def split(self) -> dict[str, Any]:
        """The split child's payload, as given."""
        return self.model_dump(
            include=set(SplitPayload.model_fields), exclude_unset=True, exclude_none=True
        )

    @property
    def portrait_options(self) -> dict[str, Any]:
        """The options of each portrait's `image.generate`, as given."""
        options = self.model_dump(
            include={"image_model", "image_size", "output_format", "key_prefix"},
            exclude_unset=True,
            exclude_none=True,
        )
        if "image_model" in options:
            options["model"] = options.pop("image_model")
        return options
