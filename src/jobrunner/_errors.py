"""Every error jobrunner raises derives from one root.

    JobrunnerError
    ├── ConfigurationError (ValueError)       bad settings, bad URL, handler not ready
    │   └── UnsupportedDatabaseURL
    ├── PluginError
    │   ├── PluginNotFound (LookupError)      asked for a plugin that is not installed
    │   └── PluginLoadError (ImportError)     an installed plugin failed to import
    ├── DatabaseError                          a backend failed (retried by the worker loop)
    │   ├── SchemaError                        not migrated, newer schema, altered table
    │   └── QueryError                         a statement was refused (bad data): not retried
    ├── JobNotFound (LookupError)
    ├── PayloadError (ValueError)              payload is not JSON, too large, or invalid
    └── JobOutcome                             raised by handlers to steer the outcome
        ├── Retry                              retry after `delay` seconds (counts an attempt)
        ├── RateLimited                        the provider said "too many": pause the type
        ├── PermanentFailure                   fail now, never retry
        ├── WaitForChildren                    park the job until its child jobs are final
        └── LeaseLost                          this worker no longer owns the job

Whether a failure is retried is decided by its type, never by its message; a handler that
raises an exception group holding one exception (an anyio task group wraps even a single
failure) is judged by that exception (`sole_exception`).
"""

from __future__ import annotations


class JobrunnerError(Exception):
    """A jobrunner error."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or type(self).__name__).strip())


class ConfigurationError(JobrunnerError, ValueError):
    """The configuration is invalid."""


class UnsupportedDatabaseURL(ConfigurationError):
    """The database URL's scheme is not supported (use postgresql:// or sqlite:///)."""


class PluginError(JobrunnerError):
    """A plugin could not be used."""


class PluginNotFound(PluginError, LookupError):
    """No installed plugin has that name."""


class PluginLoadError(PluginError, ImportError):
    """An installed plugin failed to load."""


class DatabaseError(JobrunnerError):
    """The database could not be reached or refused an operation."""

    #: True when trying again later may work (connection lost, server restarting).
    transient: bool = True


class SchemaError(DatabaseError):
    """The database schema is missing, too new, or not the one jobrunner expects."""

    transient = False


class QueryError(DatabaseError):
    """The database refused a statement (bad data, constraint); retrying will not help."""

    transient = False


class JobNotFound(JobrunnerError, LookupError):
    """No job has that id."""


class PayloadError(JobrunnerError, ValueError):
    """The payload is not valid for this job."""


class JobOutcome(JobrunnerError):
    """Raised by a handler to choose how its job ends."""


class Retry(JobOutcome):
    """Retry the job after a delay."""

    def __init__(self, message: str | None = None, *, delay: float | None = None) -> None:
        super().__init__(message or "retry requested")
        self.delay = delay


class RateLimited(JobOutcome):
    """A rate-limited provider turned the job away (an HTTP 429 and its Retry-After).

    The job goes back to pending without using an attempt, and its type is paused for every
    worker until `retry_after` seconds have passed, so the cluster stops calling the provider
    meanwhile (`jobrunner limits show` and `status` show the pause).
    """

    def __init__(self, message: str | None = None, *, retry_after: float = 60.0) -> None:
        super().__init__(message or f"rate limited: retry after {retry_after:g}s")
        self.retry_after = retry_after


class PermanentFailure(JobOutcome):
    """The job failed and retrying cannot help."""


class WaitForChildren(JobOutcome):
    """Park the job (without using an attempt) until all its child jobs are final.

    The handler runs again, from the start, when the last child finishes; it reads what it
    did before from `ctx.checkpoint` and the children from `await ctx.children()`.
    `recheck` bounds the wait: the job also wakes after that many seconds.
    """

    def __init__(self, message: str | None = None, *, recheck: float = 60.0) -> None:
        super().__init__(message or "waiting for child jobs")
        self.recheck = recheck


class LeaseLost(JobOutcome):
    """This worker lost the job's lease; another worker may be running it."""


def sole_exception(exc: BaseException) -> BaseException:
    """The one exception inside `exc` when it is an exception group holding exactly one
    (nested groups flattened); else `exc` itself.

    A task group wraps even a lone failure in a group, which would hide a `Retry` or a
    `PermanentFailure` from the runner; the runner unwraps what handlers raise with this.
    """
    leaves: list[BaseException] = []
    pending = [exc]
    while pending and len(leaves) < 2:
        current = pending.pop()
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        else:
            leaves.append(current)
    return leaves[0] if len(leaves) == 1 and not pending else exc
