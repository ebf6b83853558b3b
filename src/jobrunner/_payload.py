"""Typed payloads: a handler declares the shape of its payload (`payload=` on the handler),
the worker checks each job's payload against it before the handler runs, and the job type
publishes it as JSON Schema (`jobrunner schema`, `jobrunner plugins --json`).

pydantic does the work: it validates a pydantic model, a dataclass or a `TypedDict` alike,
names the field in each error, and writes the JSON Schema that the web app's TypeScript types
are generated from. A payload that fails is a `PayloadError`, so the job fails at once, on its
first attempt, with a message naming each bad field.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from ._errors import ConfigurationError, PayloadError

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_MAX_ERRORS = 5  # listed in one message; the rest are counted
_MAX_SHOWN = 60  # characters of a bad value quoted in the message
# Errors that say the value is not an object: in JSON words, for the web app's developers.
_NOT_AN_OBJECT = frozenset({"model_type", "dict_type", "model_attributes_type", "dataclass_type"})


@attrs.frozen(eq=False)
class PayloadModel:
    """A handler's payload type (a pydantic model, a dataclass or a TypedDict) and its
    validator, built once when the handler is registered."""

    type: Any
    _adapter: Any = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        from pydantic import PydanticUserError, TypeAdapter

        try:
            adapter = TypeAdapter(self.type)
        except (PydanticUserError, TypeError) as exc:
            reason = str(exc).strip().splitlines()[0]
            raise ConfigurationError(
                f"payload={self.type!r} is not a type pydantic can validate (use a pydantic "
                f"model, a dataclass or a TypedDict): {reason}"
            ) from None
        object.__setattr__(self, "_adapter", adapter)

    @property
    def name(self) -> str:
        return getattr(self.type, "__name__", repr(self.type))

    def validate(self, value: Any, *, job_type: str) -> Any:
        """`value` (the job's decoded JSON payload) as an instance of the payload type."""
        from pydantic import ValidationError

        try:
            return self._adapter.validate_python(value)
        except ValidationError as exc:
            raise PayloadError(describe(exc.errors(include_url=False), job_type)) from None

    def json_schema(self) -> dict[str, Any]:
        """The payload's JSON Schema (draft 2020-12), as a web app validates or types it."""
        schema: dict[str, Any] = self._adapter.json_schema(mode="validation")
        return {"$schema": JSON_SCHEMA_DIALECT, **schema}


def as_payload_model(value: Any) -> PayloadModel | None:
    """The converter of `Handler.payload`: None, a type, or a PayloadModel already built."""
    if value is None or isinstance(value, PayloadModel):
        return value
    return PayloadModel(value)


def describe(errors: list[Any], job_type: str) -> str:
    """One line naming each bad field: `diag.sleep payload: seconds: Input should be greater
    than or equal to 0 (got -1)`."""
    parts = []
    for error in errors[:_MAX_ERRORS]:
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"]
        if error["type"] in _NOT_AN_OBJECT:
            message = "Input should be a JSON object"
        # A rule over the whole payload (a model validator) has no field: its input is the
        # whole payload, which the message names better than a copy of it would.
        if error["type"] != "missing" and (where or error["type"] in _NOT_AN_OBJECT):
            message += f" (got {_shown(error.get('input'))})"
        parts.append(f"{where}: {message}" if where else message)
    if len(errors) > _MAX_ERRORS:
        parts.append(f"and {len(errors) - _MAX_ERRORS} more")
    return f"{job_type} payload: " + "; ".join(parts)


def _shown(value: Any) -> str:
    """A bad value as JSON (what the web app sent), cut short."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"
