"""jobrunner: a PostgreSQL-backed job runner for Python, with an embedded SQLite default."""

from __future__ import annotations

__version__ = "0.1.0"

from ._backend import Backend, ClaimSlot, Held, JobFilter, LeaseReport, Outcome, TypeStats
from ._context import JobContext
from ._errors import (
    ConfigurationError,
    DatabaseError,
    JobNotFound,
    JobOutcome,
    JobrunnerError,
    LeaseLost,
    PayloadError,
    PermanentFailure,
    PluginError,
    PluginLoadError,
    PluginNotFound,
    Retry,
    SchemaError,
    UnsupportedDatabaseURL,
)
from ._job import Job, JobStatus, NewJob
from ._plugin import Handler, Plugin
from ._retry import RetryPolicy
from ._runner import Runner
from ._settings import Settings

__all__ = (
    "Backend",
    "ClaimSlot",
    "ConfigurationError",
    "DatabaseError",
    "Handler",
    "Held",
    "Job",
    "JobContext",
    "JobFilter",
    "JobNotFound",
    "JobOutcome",
    "JobStatus",
    "JobrunnerError",
    "LeaseLost",
    "LeaseReport",
    "NewJob",
    "Outcome",
    "PayloadError",
    "PermanentFailure",
    "Plugin",
    "PluginError",
    "PluginLoadError",
    "PluginNotFound",
    "Retry",
    "RetryPolicy",
    "Runner",
    "SchemaError",
    "Settings",
    "TypeStats",
    "UnsupportedDatabaseURL",
    "__version__",
)
