"""jobrunner: a PostgreSQL-backed job runner for Python, with an embedded SQLite default.

The public API is the list of imports under `TYPE_CHECKING` below, and nothing else: type
checkers read it as written, and at run time `__getattr__` imports each name from the module
that list gives, on first use, so `import jobrunner` (and `jobrunner --help`) stays fast.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._version import __version__ as __version__

if TYPE_CHECKING:
    from ._backend import Backend as Backend
    from ._backend import ClaimSlot as ClaimSlot
    from ._backend import Held as Held
    from ._backend import JobFilter as JobFilter
    from ._backend import LeaseReport as LeaseReport
    from ._backend import Outcome as Outcome
    from ._backend import TypeStats as TypeStats
    from ._budgets import Budget as Budget
    from ._budgets import BudgetHold as BudgetHold
    from ._budgets import UsageTotal as UsageTotal
    from ._context import JobContext as JobContext
    from ._errors import ConfigurationError as ConfigurationError
    from ._errors import DatabaseError as DatabaseError
    from ._errors import JobNotFound as JobNotFound
    from ._errors import JobOutcome as JobOutcome
    from ._errors import JobrunnerError as JobrunnerError
    from ._errors import LeaseLost as LeaseLost
    from ._errors import PayloadError as PayloadError
    from ._errors import PermanentFailure as PermanentFailure
    from ._errors import PluginError as PluginError
    from ._errors import PluginLoadError as PluginLoadError
    from ._errors import PluginNotFound as PluginNotFound
    from ._errors import QueryError as QueryError
    from ._errors import RateLimited as RateLimited
    from ._errors import Retry as Retry
    from ._errors import SchemaError as SchemaError
    from ._errors import UnsupportedDatabaseURL as UnsupportedDatabaseURL
    from ._errors import WaitForChildren as WaitForChildren
    from ._errors import sole_exception as sole_exception
    from ._job import Job as Job
    from ._job import NewJob as NewJob
    from ._limits import LimitState as LimitState
    from ._limits import Rate as Rate
    from ._limits import TypeLimits as TypeLimits
    from ._metrics import MetricsServer as MetricsServer
    from ._metrics import PrometheusObserver as PrometheusObserver
    from ._observe import Observer as Observer
    from ._observe import Observers as Observers
    from ._plugin import Handler as Handler
    from ._plugin import Plugin as Plugin
    from ._retry import RetryPolicy as RetryPolicy
    from ._runner import Runner as Runner
    from ._schedules import Schedule as Schedule
    from ._settings import Settings as Settings
    from ._settings import parse_duration as parse_duration
    from ._settings import parse_size as parse_size
    from ._status import JobStatus as JobStatus
    from ._status import OutcomeKind as OutcomeKind
    from ._tracing import TracingObserver as TracingObserver


def _exports() -> dict[str, str]:
    """{public name: module} read from the `TYPE_CHECKING` imports above (one per line)."""
    source = Path(__file__).read_text("utf-8")
    block = source.split("if TYPE_CHECKING:\n", 1)[1].split("\n\n", 1)[0]
    found = re.findall(r"^    from (\.\w+) import (\w+) as \2$", block, re.MULTILINE)
    return {name: module for module, name in found}


_EXPORTS = _exports()
__all__ = tuple(sorted([*_EXPORTS, "__version__"]))


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jobrunner' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
