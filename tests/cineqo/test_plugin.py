"""The plugin object: each job package and the resources register themselves explicitly, on
the plugin they are given, with the policies the docs describe."""

from __future__ import annotations

import ast
from pathlib import Path

import jobrunner
import jobrunner_cineqo
from jobrunner_cineqo import _cast, _images, _pipeline, _resources, _split

POLICIES = {
    # type: (concurrency, timeout, lease, max_attempts, requires)
    "novel.split": (2, 900, 60, 5, ("storage", "cineqo_settings")),
    "character.extract": (2, 3600, 60, 5, ("openai", "storage", "cineqo_settings")),
    "image.generate": (2, 900, 60, 5, ("fal", "http", "storage", "cineqo_settings")),
    "novel.process": (None, 120, 30.0, 3, ()),
}


def test_the_plugin_holds_the_four_jobs_and_five_resources() -> None:
    plugin = jobrunner_cineqo.plugin
    assert jobrunner_cineqo.__all__ == ("plugin",)
    assert list(plugin.handlers) == list(POLICIES)  # the order `jobrunner plugins` shows
    assert list(plugin.resources) == ["cineqo_settings", "storage", "openai", "fal", "http"]
    for job_type, handler in plugin.handlers.items():
        policy = (handler.concurrency, handler.timeout, handler.lease, handler.max_attempts)
        assert (*policy, handler.requires) == POLICIES[job_type]
        assert handler.run_in == "loop" and handler.description


def test_each_package_registers_on_the_plugin_it_is_given() -> None:
    for package, job_type in [
        (_split, "novel.split"),
        (_cast, "character.extract"),
        (_images, "image.generate"),
        (_pipeline, "novel.process"),
    ]:
        plugin = jobrunner.Plugin("fresh")
        package.register(plugin)
        assert (package.JOB_TYPE, list(plugin.handlers)) == (job_type, [job_type])
        assert plugin.resources == {}
    plugin = jobrunner.Plugin("fresh")
    _resources.register(plugin)
    assert (len(plugin.resources), plugin.handlers) == (5, {})


def test_no_module_reaches_for_the_package_plugin() -> None:
    """Registration is explicit: nothing imports `plugin` back from the package."""
    root = Path(jobrunner_cineqo.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and any(a.name == "plugin" for a in node.names):
                offenders.append(str(path.relative_to(root)))
    assert offenders == []
