"""The `novel.process` payload (pure): the split child's payload, and options for the later
stages. The children's own parsers check their parts now, so a bad option fails the pipeline
at once rather than a child later."""

from __future__ import annotations

from typing import Any

import attrs

from .. import _cast, _images, _split
from .._fields import int_field, model_field, novel_id_field, payload_object

DEFAULT_PORTRAITS = 5
MAX_PORTRAITS = 20
PORTRAIT_KEYS = frozenset({"image_model", "image_size", "output_format", "key_prefix"})
PROCESS_KEYS = _split.SPLIT_KEYS | {"model", "max_characters", "portraits"} | PORTRAIT_KEYS


@attrs.frozen(kw_only=True)
class ProcessRequest:
    """`novel.process`: the split child's payload, and options for the later stages."""

    split: dict[str, Any]
    novel_id: str | None
    model: str | None
    max_characters: int
    portraits: int
    portrait_options: dict[str, Any]


def parse_process(payload: Any) -> ProcessRequest:
    data = payload_object("novel.process", payload, PROCESS_KEYS)
    split_data = {k: v for k, v in data.items() if k in _split.SPLIT_KEYS}
    _split.parse_split(split_data)  # the child would refuse it anyway: say so now, once
    options = {k: v for k, v in data.items() if k in PORTRAIT_KEYS}
    image = {"model" if k == "image_model" else k: v for k, v in options.items()}
    _images.parse_image({"prompt": "check", **image})
    return ProcessRequest(
        split=split_data,
        novel_id=novel_id_field(data),
        model=model_field(data, "model"),
        max_characters=int_field(
            data, "max_characters", _cast.DEFAULT_MAX_CHARACTERS, low=1, high=500
        ),
        portraits=int_field(data, "portraits", DEFAULT_PORTRAITS, low=0, high=MAX_PORTRAITS),
        portrait_options=image,
    )
