"""Value objects for jobs: what a job is, and what an enqueue asks for."""

from __future__ import annotations

import datetime as dt
import json
import json.encoder
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ._errors import PayloadError
from ._status import JobStatus

DEFAULT_QUEUE = "default"
DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024


# The one place that knows the job table's column names.
COLUMNS: tuple[str, ...] = (
    "id",
    "type",
    "queue",
    "user_id",
    "parent_id",
    "status",
    "priority",
    "payload",
    "result",
    "error",
    "progress",
    "progress_message",
    "checkpoint",
    "attempts",
    "max_attempts",
    "run_at",
    "created_at",
    "started_at",
    "finished_at",
    "locked_by",
    "locked_until",
    "cancel_requested",
    "turn",
    "traceparent",
    "unique_key",
    "usage",
)


@attrs.frozen(kw_only=True)
class Job:
    """One row of the job table."""

    id: int
    type: str
    queue: str = DEFAULT_QUEUE
    user_id: str | None = None
    parent_id: int | None = None
    status: JobStatus = JobStatus.PENDING
    priority: int = 0
    payload: Any = attrs.field(factory=dict)
    result: Any = None
    error: str | None = None
    progress: float | None = None
    progress_message: str | None = None
    checkpoint: dict[str, Any] | None = None
    attempts: int = 0
    max_attempts: int | None = None
    run_at: dt.datetime | None = None
    created_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    locked_by: str | None = None
    locked_until: dt.datetime | None = None
    cancel_requested: bool = False
    turn: int = 0  # its place in its user's line (fair claiming)
    traceparent: str | None = None  # W3C trace context of the enqueuer (OpenTelemetry)
    unique_key: str | None = None  # while pending or running, no other job has this key
    usage: dict[str, float] | None = None  # what it spent, by unit (ctx.record_usage)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Job:
        """Build a job from a database row (a mapping keyed by column name)."""
        values = {name: row[name] for name in COLUMNS if name in row}
        values["status"] = JobStatus(values.get("status", "pending"))
        if "cancel_requested" in values:
            values["cancel_requested"] = bool(values["cancel_requested"])
        return cls(**values)

    @classmethod
    def from_values(cls, values: tuple[Any, ...]) -> Job:
        """Build a job from a row whose columns are exactly COLUMNS, in order (the hot path)."""
        fields = dict(zip(COLUMNS, values, strict=True))
        fields["status"] = JobStatus(fields["status"])
        return cls(**fields)

    def as_dict(self) -> dict[str, Any]:
        """The job as plain JSON-friendly values, keyed by column."""
        out: dict[str, Any] = {}
        for name in COLUMNS:
            value = getattr(self, name)
            if isinstance(value, dt.datetime):
                value = value.isoformat()
            elif isinstance(value, JobStatus):
                value = value.value
            out[name] = value
        return out


_ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _check_text(name: str, value: str) -> None:
    """Text columns must be valid UTF-8 without NUL: PostgreSQL would refuse them."""
    if "\x00" in value:
        raise PayloadError(f"{name} contains a NUL character")
    if value.isascii():  # a flag read, no copy: ASCII text always encodes
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PayloadError(f"{name} contains invalid Unicode (lone surrogates)") from None


@attrs.frozen(kw_only=True)
class NewJob:
    """What `enqueue` asks for. Unset fields take the table's defaults."""

    type: str
    payload: Any = attrs.field(factory=dict)
    queue: str = DEFAULT_QUEUE
    user_id: str | None = None
    parent_id: int | None = None
    priority: int = 0
    max_attempts: int | None = None
    run_at: dt.datetime | None = None
    delay: float | None = None
    #: The W3C trace context the worker's span continues; `Runner.enqueue` and `ctx.enqueue`
    #: fill it from the current OpenTelemetry span when it is left None.
    traceparent: str | None = None
    #: An idempotency key: while a job with this key is pending or running, enqueueing another
    #: creates nothing and returns that job's id.
    key: str | None = None

    def __attrs_post_init__(self) -> None:
        # One check for the text fields (bulk enqueues build many of these).
        if not self.type:
            raise ValueError("Length of 'type' must be >= 1: the job type cannot be empty")
        _check_text("type", self.type)
        if self.queue is not DEFAULT_QUEUE:
            _check_text("queue", self.queue)
        if self.user_id is not None:
            _check_text("user_id", self.user_id)
        if self.traceparent is not None:
            _check_text("traceparent", self.traceparent)
        if self.key is not None:
            _check_text("key", self.key)
            if not self.key:
                raise ValueError("an idempotency key cannot be empty (use None for none)")

    def payload_json(self, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> str:
        """The payload as JSON text, refusing what is not JSON or is too large."""
        return encode_json(self.payload, what="payload", max_bytes=max_bytes)

    def insert_values(self, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> dict[str, Any]:
        """The parameters of a single-row insert, named like the columns (plus `delay`)."""
        return {
            "type": self.type,
            "queue": self.queue,
            "user_id": self.user_id,
            "parent_id": self.parent_id,
            "priority": self.priority,
            "payload": self.payload_json(max_payload_bytes),
            "max_attempts": self.max_attempts,
            "run_at": self.run_at,
            "delay": self.delay,
            "traceparent": self.traceparent,
            "unique_key": self.key,
        }


class UnreadableJSON(str):
    """Stands in for a JSON value that could not be decoded (e.g. nested too deeply); a job
    whose payload is one fails with a PayloadError instead of crashing the worker."""


def safe_json_loads(data: str | bytes) -> Any:
    try:
        return json.loads(data)
    except RecursionError:
        return UnreadableJSON("nested too deeply to decode")


# One encoder for all: json.dumps with options builds a new encoder per call, and even a
# JSONEncoder builds a new C encoder per encode(). This one is built once; without a
# `markers` dict it skips the circular-reference bookkeeping (a cycle then ends in
# RecursionError, refused like any other unserialisable value).
def _model_json(value: Any) -> Any:
    """What JSON cannot hold as it is: a pydantic model (a typed payload or result) becomes
    its JSON form; anything else is refused. Called only for such values: plain JSON never
    pays for it."""
    if getattr(type(value), "__pydantic_serializer__", None) is not None:
        return value.model_dump(mode="json")
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_model_json
)
_C_ENCODE = (
    json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, _model_json, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
    if json.encoder.c_make_encoder is not None  # type: ignore[attr-defined]
    else None
)


def _encode(value: Any) -> str:
    if isinstance(value, str):
        return json.encoder.encode_basestring(value)
    if _C_ENCODE is None:
        return _ENCODER.encode(value)
    return "".join(_C_ENCODE(value, 0))


def encode_json(value: Any, *, what: str, max_bytes: int) -> str:
    """Serialise `value` as strict JSON (no NaN) within `max_bytes`, or raise PayloadError."""
    try:
        text = _encode(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise PayloadError(f"{what} is not JSON-serialisable: {exc}") from None
    if "\\u0000" in text and _ESCAPED_NUL.search(text):
        # PostgreSQL's jsonb cannot hold NUL (json.dumps writes it as \u0000): refuse it the
        # same way on every backend.
        raise PayloadError(f"{what} contains a NUL character")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise PayloadError(f"{what} contains invalid Unicode (lone surrogates)") from None
    if size > max_bytes:
        raise PayloadError(f"{what} is {size} bytes, over the limit of {max_bytes} bytes")
    return text


# Payloads encoded together, this many at a time: one encoder call per chunk instead of one per
# payload, and a chunk within the size limit proves that each of its payloads is.
_CHUNK = 256


def encode_json_array(values: Sequence[Any], *, what: str, max_bytes: int) -> str:
    """The JSON array of `values`, each refused exactly as `encode_json` refuses it alone."""
    parts = []
    for start in range(0, len(values), _CHUNK):
        chunk = values[start : start + _CHUNK]
        text = _chunk_json(chunk, max_bytes)
        if text is None:  # something to refuse, or simply large: value by value
            text = ",".join([encode_json(v, what=what, max_bytes=max_bytes) for v in chunk])
        parts.append(text)
    return "[" + ",".join(parts) + "]"


def _chunk_json(chunk: Sequence[Any], max_bytes: int) -> str | None:
    """The chunk's values as comma-separated JSON when that is certainly fine, else None."""
    if _C_ENCODE is None:
        return None
    try:
        text = "".join(_C_ENCODE(list(chunk), 0))
    except (TypeError, ValueError, RecursionError):
        return None
    if "\\u0000" in text:
        return None
    if text.isascii():
        size = len(text)
    else:
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            return None
    return text[1:-1] if size <= max_bytes else None
