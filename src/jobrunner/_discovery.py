"""Find plugins through the `jobrunner.plugins` entry-point group, loading only those asked for."""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint, entry_points

import attrs

from ._errors import PluginError, PluginLoadError, PluginNotFound
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
    seen: dict[str, str] = {}
    for plugin in plugins:
        for job_type in plugin.handlers:
            if job_type in seen:
                raise PluginError(
                    f"job type {job_type!r} is provided by both {seen[job_type]} and {plugin.name}"
                )
            seen[job_type] = plugin.name
    return plugins
