"""`jobrunner run --reload`: restart the worker when Python sources change (development).

The worker runs as a child process, `python -m jobrunner._cli run …` with the same options but
`--reload`. When a `.py` file changes under the current directory, in jobrunner's or
jobrunner_cineqo's sources, or in a plugin being run (`--plugin` or `--app`), the child gets
SIGTERM, drains like any worker, and a new one starts. A worker that exits by itself (a syntax
error, `--burst`) is started again on the next change. SIGTERM or Ctrl-C stops the child and
then the reloader.

Changes are seen with watchfiles when it is installed (`pip install watchfiles`), else by
comparing file times every 0.5 s.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import logging
import math
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path

import anyio
import anyio.abc
import attrs
from anyio.streams.memory import MemoryObjectSendStream

from .._discovery import _entry_points, split_app
from .._logs import setup_logging
from .._settings import Settings
from ._common import settings_kwargs

log = logging.getLogger("jobrunner.reload")

POLL_INTERVAL = 0.5
#: Always watched, besides the current directory and the plugins being run.
ALWAYS_WATCHED = ("jobrunner", "jobrunner_cineqo")
#: Past this many files, polling gets slow: say so.
MANY_FILES = 10_000
_SKIPPED_DIRS = frozenset({"__pycache__", "node_modules"})

Snapshot = dict[Path, tuple[int, int]]
Watch = Callable[[Sequence[Path], anyio.Event], AsyncIterator[set[Path]]]


# -- the child's command line ------------------------------------------------------------


def _run_parser() -> argparse.ArgumentParser:
    from ._parser import build_parser

    parser = build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    run: argparse.ArgumentParser = sub.choices["run"]
    return run


def child_command(args: argparse.Namespace, python: str = sys.executable) -> list[str]:
    """The `jobrunner run` command line that `args` came from, without `--reload`."""
    argv = [python, "-m", "jobrunner._cli", "run"]
    for action in _run_parser()._actions:
        if action.option_strings and action.dest not in {"help", "reload"}:
            argv += _flag(action, getattr(args, action.dest, None))
    return argv


def _flag(action: argparse.Action, value: object) -> list[str]:
    flag = next(s for s in action.option_strings if s.startswith("--"))
    if value is None:
        return []
    if isinstance(action, argparse.BooleanOptionalAction):
        return [flag if value else "--no-" + flag[2:]]
    if action.nargs == 0:  # store_true
        return [flag] if value else []
    values = value if isinstance(value, list) else [value]
    # `--flag=value` keeps a value that starts with "-" from reading as an option.
    return [f"{flag}={item}" for item in values]


# -- what to watch -----------------------------------------------------------------------


def watch_roots(plugins: Iterable[str], cwd: Path, apps: Iterable[str] = ()) -> list[Path]:
    """The current directory, and the source folder (or file) of jobrunner, jobrunner_cineqo,
    each plugin's top-level module and each `--app` module's (looked up from `cwd` first, as
    the worker imports it)."""
    eps = _entry_points()
    modules = [*ALWAYS_WATCHED]
    modules += [eps[name].module.split(".")[0] for name in plugins if name in eps]
    modules += [split_app(spec)[0].split(".")[0] for spec in apps]
    roots = [cwd.resolve()]
    for module in dict.fromkeys(modules):
        where = _source_of(module, cwd)
        if where is not None:
            roots.append(where)
    return list(dict.fromkeys(roots))


def _source_of(module: str, cwd: Path) -> Path | None:
    """A package's folder or a module's file, found without importing it."""
    try:
        spec = importlib.machinery.PathFinder.find_spec(module, [str(cwd), *sys.path])
        spec = spec or importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).resolve()
    if spec.origin and spec.origin.endswith(".py"):
        return Path(spec.origin).resolve()
    return None


def _skipped(folder: Path) -> bool:
    """Hidden folders, caches and virtualenvs: never sources being edited."""
    name = folder.name
    return name.startswith(".") or name in _SKIPPED_DIRS or (folder / "pyvenv.cfg").exists()


def snapshot(roots: Sequence[Path]) -> Snapshot:
    """(mtime_ns, size) of every `.py` file under `roots` (a root may be a single file)."""
    files: Snapshot = {}
    for root in roots:
        if root.is_file():
            _stat_into(files, root)
            continue
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if not _skipped(Path(folder, d))]
            for name in names:
                if name.endswith(".py"):
                    _stat_into(files, Path(folder, name))
    return files


def _stat_into(files: Snapshot, path: Path) -> None:
    try:
        st = path.stat()
    except OSError:
        return  # removed between listing and stat: the next snapshot sees it gone
    files[path] = (st.st_mtime_ns, st.st_size)


def changed(before: Snapshot, after: Snapshot) -> set[Path]:
    """Files added, removed or modified between two snapshots."""
    return {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}


async def poll_changes(
    roots: Sequence[Path], stop: anyio.Event, interval: float = POLL_INTERVAL
) -> AsyncIterator[set[Path]]:
    """Yield the set of changed `.py` files, checking every `interval` seconds until `stop`."""
    before = await anyio.to_thread.run_sync(snapshot, roots)
    log.info("polling %d .py files every %.1fs", len(before), interval)
    if len(before) > MANY_FILES:
        log.warning("that is many files to poll: start --reload from your project's folder")
    while not stop.is_set():
        await anyio.sleep(interval)
        after = await anyio.to_thread.run_sync(snapshot, roots)
        found = changed(before, after)
        before = after
        if found:
            yield found


async def watchfiles_changes(roots: Sequence[Path], stop: anyio.Event) -> AsyncIterator[set[Path]]:
    """Yield changed `.py` files as watchfiles reports them (inotify, or polling if
    WATCHFILES_FORCE_POLLING is set, e.g. on network or Docker-mounted folders)."""
    from watchfiles import PythonFilter, awatch

    logging.getLogger("watchfiles").setLevel(logging.WARNING)  # we log each change ourselves
    # `stop` ends watchfiles' thread at once; cancelling alone waits for its 5 s timeout.
    async for batch in awatch(*roots, watch_filter=PythonFilter(), stop_event=stop):
        yield {Path(path) for _change, path in batch}


def pick_watcher() -> tuple[str, Watch]:
    """watchfiles when installed, else polling."""
    if importlib.util.find_spec("watchfiles") is None:
        return f"polling every {POLL_INTERVAL}s", poll_changes
    return "watchfiles", watchfiles_changes


# -- the supervisor ----------------------------------------------------------------------


@attrs.define(eq=False)
class Reloader:
    """Runs `command` as a child process; restarts it when `watch(roots, stop)` sees changes."""

    command: list[str]
    roots: list[Path]
    watch: Watch
    process: anyio.abc.Process | None = None
    running: bool = False
    restarting: bool = False
    stopping: bool = False

    async def run(self) -> int:
        """Until SIGTERM or SIGINT; returns the last child's exit code."""
        send, receive = anyio.create_memory_object_stream[tuple[str, object]](math.inf)
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            # Signals first: one arriving while the child starts must not kill us alone.
            await tg.start(self._forward_signals, send.clone())
            tg.start_soon(self._forward_changes, send.clone(), stop)
            try:
                await self._start(tg, send)
                code = await self._loop(tg, send, receive)
            finally:
                stop.set()
                await self._kill_leftover()
            tg.cancel_scope.cancel()
        return code

    async def _loop(
        self,
        tg: anyio.abc.TaskGroup,
        send: MemoryObjectSendStream[tuple[str, object]],
        receive: anyio.abc.ObjectReceiveStream[tuple[str, object]],
    ) -> int:
        async for kind, value in receive:
            if kind == "signal":
                assert isinstance(value, int)
                if not self._on_signal(value):
                    return 0
            elif kind == "change":
                assert isinstance(value, set)
                if self._on_change(value):
                    await self._start(tg, send)
            else:
                assert isinstance(value, int)
                self.running = False
                if self.stopping:
                    return value
                if self.restarting:
                    self.restarting = False
                    await self._start(tg, send)
                else:
                    log.warning("worker exited with code %d; it restarts on the next change", value)
        return 0  # pragma: no cover - the stream never ends while we hold `send`

    def _on_signal(self, signum: int) -> bool:
        """Pass the signal on; False when no child is left to wait for."""
        self.stopping = True
        if not self.running or self.process is None:
            return False
        log.info("%s: stopping the worker", signal.Signals(signum).name)
        self.process.send_signal(signal.Signals(signum))
        return True

    def _on_change(self, paths: set[Path]) -> bool:
        """Stop the child for a restart; True when none runs and one should start now."""
        names = ", ".join(sorted(p.name for p in paths)[:5]) + (" …" if len(paths) > 5 else "")
        if self.stopping or self.restarting:
            # The next child starts after the old one exits, so it sees this change too.
            log.info("%s changed while the worker was stopping", names)
            return False
        log.info("%s changed: restarting the worker", names, extra={"event": "reload"})
        if not self.running or self.process is None:
            return True
        self.restarting = True
        self.process.send_signal(signal.SIGTERM)
        return False

    async def _start(
        self, tg: anyio.abc.TaskGroup, send: MemoryObjectSendStream[tuple[str, object]]
    ) -> None:
        # A session of its own: Ctrl-C reaches only us, and we pass on exactly one signal.
        process = await anyio.open_process(
            self.command, stdin=None, stdout=None, stderr=None, start_new_session=True
        )
        self.process, self.running = process, True
        tg.start_soon(self._report_exit, process, send.clone())

    @staticmethod
    async def _report_exit(
        process: anyio.abc.Process, send: MemoryObjectSendStream[tuple[str, object]]
    ) -> None:
        async with send:
            code = await process.wait()
            await send.send(("exit", 128 - code if code < 0 else code))

    async def _forward_signals(
        self,
        send: MemoryObjectSendStream[tuple[str, object]],
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        async with send:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                task_status.started()
                async for signum in signals:
                    await send.send(("signal", int(signum)))

    async def _forward_changes(
        self, send: MemoryObjectSendStream[tuple[str, object]], stop: anyio.Event
    ) -> None:
        async with send:
            async for paths in self.watch(self.roots, stop):
                await send.send(("change", paths))

    async def _kill_leftover(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        with anyio.CancelScope(shield=True):
            process.kill()
            await process.wait()


async def run_with_reload(args: argparse.Namespace) -> int:
    """`jobrunner run --reload …`: the worker as a child process, restarted on changes."""
    from ._common import app_specs, plugin_names

    settings = Settings.load(**settings_kwargs(args))  # bad settings fail here, not in a loop
    setup_logging(settings.log_level, settings.log_format)
    roots = watch_roots(plugin_names(args), Path.cwd(), app_specs(args))
    how, watch = pick_watcher()
    log.info("--reload: watching .py files in %s (%s)", ", ".join(map(str, roots)), how)
    reloader = Reloader(command=child_command(args), roots=roots, watch=watch)
    return await reloader.run()
