"""Testing handlers: `run_job` runs one job through the worker's own execution path, without a
worker or a database; the pytest plugin (`jobrunner.testing.pytest_plugin`, loaded by pytest
on its own) adds fixtures for a throw-away SQLite-backed `Runner`.

```python
from jobrunner.testing import run_job

async def test_greet():
    run = await run_job(plugin, "hello.greet", {"name": "Ada"})
    assert run.result == {"greeting": "Hello, Ada!"}
```

Like `jobrunner` itself, the names below are imported on first use, so loading the pytest
plugin costs a pytest session next to nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._run import JobRun as JobRun
    from ._run import Progress as Progress
    from ._run import assert_enqueued as assert_enqueued
    from ._run import run_job as run_job

_EXPORTS = {"JobRun": "._run", "Progress": "._run", "assert_enqueued": "._run", "run_job": "._run"}
__all__ = tuple(sorted(_EXPORTS))


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jobrunner.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
