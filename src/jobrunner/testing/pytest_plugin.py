"""jobrunner's pytest plugin, registered through the `pytest11` entry point: fixtures for a
throw-away SQLite-backed `Runner`, in the test's `tmp_path`.

```python
async def test_greet_end_to_end(jobrunner_runner):
    async with jobrunner_runner(plugin) as runner:
        job = await runner.wait_for(await runner.enqueue("hello.greet", {"name": "Ada"}))
    assert job.result == {"greeting": "Hello, Ada!"}
```

Loading it costs a pytest session nothing: jobrunner is imported by a fixture, when a test
uses one. `pytest -p no:jobrunner` turns it off.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from jobrunner import Plugin, Runner

#: The settings a test runner starts with: quick to notice jobs, quick to stop.
TEST_SETTINGS: dict[str, Any] = {
    "poll_interval": 0.05,
    "completion_interval": 0.005,
    "shutdown_timeout": 5.0,
}


@pytest.fixture
def jobrunner_database_url(tmp_path: Path) -> str:
    """A SQLite database in the test's `tmp_path`, created on first use."""
    return f"sqlite:///{tmp_path / 'jobrunner.db'}"


@pytest.fixture
def jobrunner_runner(jobrunner_database_url: str) -> Callable[..., Runner]:
    """Makes a `Runner` on the test's own SQLite database: `jobrunner_runner(plugin, …)`
    takes plugins (objects or installed names) and any `Runner` keyword, and ignores the
    process environment (`env={}`). Open it with `async with`; its worker runs the jobs."""

    def make(*plugins: Plugin | str, **options: Any) -> Runner:
        from jobrunner import Runner

        settings = {**TEST_SETTINGS, **options}
        settings.setdefault("env", {})
        return Runner(jobrunner_database_url, plugins=plugins, **settings)

    return make
