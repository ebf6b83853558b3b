"""jobrunner: a PostgreSQL-backed job runner for Python, with an embedded SQLite default."""

from __future__ import annotations

__version__ = "0.1.0"

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
        QueryError,
        Retry,
        SchemaError,
        UnsupportedDatabaseURL,
        WaitForChildren,
    )
    from ._job import Job, JobStatus, NewJob
    from ._plugin import Handler, Plugin
    from ._retry import RetryPolicy
    from ._runner import Runner
    from ._settings import Settings

# Names are imported on first use, so `jobrunner --help` stays fast.
_EXPORTS = {
    "Backend": "._backend",
    "ClaimSlot": "._backend",
    "ConfigurationError": "._errors",
    "DatabaseError": "._errors",
    "Handler": "._plugin",
    "Held": "._backend",
    "Job": "._job",
    "JobContext": "._context",
    "JobFilter": "._backend",
    "JobNotFound": "._errors",
    "JobOutcome": "._errors",
    "JobStatus": "._job",
    "JobrunnerError": "._errors",
    "LeaseLost": "._errors",
    "LeaseReport": "._backend",
    "NewJob": "._job",
    "Outcome": "._backend",
    "PayloadError": "._errors",
    "PermanentFailure": "._errors",
    "Plugin": "._plugin",
    "PluginError": "._errors",
    "PluginLoadError": "._errors",
    "PluginNotFound": "._errors",
    "QueryError": "._errors",
    "Retry": "._errors",
    "RetryPolicy": "._retry",
    "Runner": "._runner",
    "SchemaError": "._errors",
    "Settings": "._settings",
    "TypeStats": "._backend",
    "UnsupportedDatabaseURL": "._errors",
    "WaitForChildren": "._errors",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jobrunner' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


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
    "QueryError",
    "Retry",
    "RetryPolicy",
    "Runner",
    "SchemaError",
    "Settings",
    "TypeStats",
    "UnsupportedDatabaseURL",
    "WaitForChildren",
    "__version__",
)
