"""Find plugins: installed ones through the `jobrunner.plugins` entry-point group, loading only
those asked for, and a project's own as `module:attribute` (`jobrunner run --app`)."""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points
from operator import attrgetter
from pathlib import Path

import attrs

from ._errors import ConfigurationError, PluginError, PluginLoadError, PluginNotFound
from ._plugin import Plugin

GROUP = "jobrunner.plugins"
log = logging.getLogger("jobrunner.plugins")


@attrs.frozen(kw_only=True)
class InstalledPlugin:
    name: str
    value: str
    distribution: str
    version: str

    @classmethod
    def from_entry_point(cls, ep: EntryPoint) -> InstalledPlugin:
        dist = ep.dist
        return cls(
            name=ep.name,
            value=ep.value,
            distribution=dist.name if dist else "?",
            version=dist.version if dist else "?",
        )


def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUP):
        found.setdefault(ep.name, ep)
    return found


def installed() -> list[InstalledPlugin]:
    """Every installed plugin, without importing any of them."""
    return sorted(
        (InstalledPlugin.from_entry_point(ep) for ep in _entry_points().values()),
        key=lambda p: p.name,
    )


def load(name: str) -> Plugin:
    """Import the plugin `name`; errors name its distribution, version and the import error."""
    eps = _entry_points()
    if name not in eps:
        names = ", ".join(sorted(eps)) or "none"
        raise PluginNotFound(f"no plugin named {name!r} is installed (installed: {names})")
    ep = eps[name]
    meta = InstalledPlugin.from_entry_point(ep)
    try:
        obj = ep.load()
    except Exception as exc:
        raise PluginLoadError(
            f"plugin {name!r} from {meta.distribution} {meta.version} failed to load "
            f"({ep.value}): {type(exc).__name__}: {exc}"
        ) from exc
    plugin = obj() if callable(obj) and not isinstance(obj, Plugin) else obj
    if not isinstance(plugin, Plugin):
        raise PluginError(
            f"plugin {name!r} from {meta.distribution} {meta.version}: {ep.value} is "
            f"{type(plugin).__name__}, not a jobrunner.Plugin"
        )
    return plugin


def load_many(names: list[str]) -> list[Plugin]:
    plugins = [load(name) for name in dict.fromkeys(names)]
    check_unique(plugins)
    return plugins


def check_unique(plugins: Iterable[Plugin]) -> None:
    """Refuse two plugins that provide the same job type."""
    seen: dict[str, str] = {}
    for plugin in plugins:
        for job_type in plugin.handlers:
            if job_type in seen:
                raise PluginError(
                    f"job type {job_type!r} is provided by both {seen[job_type]} and {plugin.name}"
                )
            seen[job_type] = plugin.name


def split_app(spec: str) -> tuple[str, str]:
    """(module, attribute) of `module:attribute`, or a ConfigurationError saying how to write it."""
    module, sep, attribute = spec.strip().partition(":")
    if not sep or not module or not attribute:
        raise ConfigurationError(
            f"--app {spec!r}: write module:attribute, e.g. myjobs:plugin "
            "(a Plugin, or a function that returns one)"
        )
    return module, attribute


def load_app(spec: str, *, folder: Path | None = None) -> Plugin:
    """The `Plugin` named by `module:attribute` (the attribute may be dotted, and may be a
    function that returns the plugin), imported like `python -m` would: from the current
    directory (or `folder`) first, then `sys.path`. No packaging or entry point needed."""
    module_name, attribute = split_app(spec)
    where = str((Path.cwd() if folder is None else folder).resolve())
    if where not in sys.path:
        sys.path.insert(0, where)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name or module_name.startswith(f"{exc.name}."):
            raise PluginNotFound(
                f"--app {spec!r}: no module named {exc.name!r} in {where} or on sys.path"
            ) from None
        raise _failed(spec, exc) from exc
    except Exception as exc:
        raise _failed(spec, exc) from exc
    try:
        obj = attrgetter(attribute)(module)
    except AttributeError:
        raise PluginError(
            f"--app {spec!r}: module {module_name} ({module.__file__}) has no {attribute!r}"
        ) from None
    if callable(obj) and not isinstance(obj, Plugin):
        try:
            obj = obj()
        except Exception as exc:
            raise _failed(spec, exc) from exc
    if not isinstance(obj, Plugin):
        raise PluginError(f"--app {spec!r} is {type(obj).__name__}, not a jobrunner.Plugin")
    return obj


def _failed(spec: str, exc: BaseException) -> PluginLoadError:
    return PluginLoadError(f"--app {spec!r} failed to load: {type(exc).__name__}: {exc}")
