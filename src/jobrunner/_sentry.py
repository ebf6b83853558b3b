"""Optional Sentry reporting (`SENTRY_DSN`, extra `jobrunner[sentry]`): handler failures with
their job's context, and never a secret."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ._job import Job
from ._observe import Observer
from ._secrets import redact
from ._status import OutcomeKind

log = logging.getLogger("jobrunner")


def scrub(value: Any) -> Any:
    """`value` with every string redacted, however deeply nested."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def _before_send(event: Any, hint: Any) -> Any:
    return scrub(event)


class SentryObserver(Observer):
    """Sends each unexpected handler exception to Sentry, tagged with the job."""

    def __init__(self, sentry_sdk: Any) -> None:
        self.sdk = sentry_sdk

    def job_raised(self, job: Job, exc: BaseException, kind: OutcomeKind) -> None:
        with self.sdk.new_scope() as scope:
            scope.set_tag("job_type", job.type)
            scope.set_tag("job_outcome", kind.value)
            scope.set_context(
                "job",
                {
                    "id": job.id,
                    "type": job.type,
                    "queue": job.queue,
                    "attempt": job.attempts,
                    "max_attempts": job.max_attempts,
                    "user_id": job.user_id,
                },
            )
            self.sdk.capture_exception(exc)


def sentry_observer(env: Mapping[str, str], **options: Any) -> SentryObserver | None:
    """A SentryObserver when SENTRY_DSN is set and sentry-sdk is installed, else None."""
    dsn = env.get("SENTRY_DSN")
    if not dsn:
        return None
    try:
        import sentry_sdk
    except ImportError:
        log.warning(
            "SENTRY_DSN is set but sentry-sdk is not installed: pip install 'jobrunner[sentry]'"
        )
        return None
    sentry_sdk.init(
        dsn=dsn,
        before_send=_before_send,
        include_local_variables=False,  # locals may hold payloads and keys
        **options,
    )
    return SentryObserver(sentry_sdk)
