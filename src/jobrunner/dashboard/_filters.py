"""The jobs page's filters: from a query string or a form to a `JobQuery`, and back to links."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl

import attrs

from .._browse import JobQuery
from .._status import JobStatus

#: The filter fields, as they appear in links and forms.
FIELDS = ("status", "type", "queue", "user", "parent", "error")
MAX_FORM_BYTES = 64 * 1024


class BadFilter(ValueError):
    """A filter value that cannot be used (an unknown status, a parent that is not an id)."""


@attrs.frozen(kw_only=True)
class Filters:
    """The filters as given (text), and the query they make."""

    values: dict[str, str]
    query: JobQuery

    @property
    def active(self) -> bool:
        return any(self.values.values())


def parse(params: Mapping[str, str], *, limit: int = 50) -> Filters:
    values = {name: (params.get(name) or "").strip() for name in FIELDS}
    status = values["status"]
    if status and status not in {s.value for s in JobStatus}:
        raise BadFilter(f"unknown status {status!r}")
    query = JobQuery(
        statuses=(JobStatus(status),) if status else (),
        type=values["type"] or None,
        queue=values["queue"] or None,
        user_id=values["user"] or None,
        parent_id=_id(values["parent"], "parent"),
        error_contains=values["error"] or None,
        before_id=_id(params.get("before", ""), "before"),
        limit=limit,
    )
    return Filters(values=values, query=query)


def _id(text: str, name: str) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise BadFilter(f"{name} must be a job id, not {text!r}") from None
    if value < 0:
        raise BadFilter(f"{name} must be a job id, not {text!r}")
    return value


def for_action(
    filters: Filters, allowed: frozenset[JobStatus], max_id: int | None
) -> JobQuery | None:
    """The filter's query narrowed to the statuses an action applies to, up to `max_id`; None
    when the filter asks for none of them."""
    wanted = filters.query.statuses or tuple(JobStatus)
    statuses = tuple(s for s in wanted if s in allowed)
    if not statuses:
        return None
    return attrs.evolve(filters.query, statuses=statuses, before_id=None, max_id=max_id)


def form_fields(body: bytes) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body as a dict (the last value of a repeated
    name wins)."""
    if len(body) > MAX_FORM_BYTES:
        raise BadFilter("the form is too large")
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
