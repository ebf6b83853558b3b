"""`jobrunner run`: a worker process under PM2, systemd, Docker or a terminal."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
from typing import Any

import anyio

from .._errors import DatabaseError, SchemaError
from .._logs import setup_logging
from .._observe import Observers
from .._outage import Outage
from .._runner import Runner
from .._settings import Settings
from ._common import load_plugins, settings_kwargs, slow_driver
from ._signals import EARLY_SIGNALS

log = logging.getLogger("jobrunner")


def _sentry() -> Any:
    if not os.environ.get("SENTRY_DSN"):
        return None
    from .._sentry import sentry_observer

    return sentry_observer(os.environ)


async def run(args: argparse.Namespace) -> int:
    if args.reload:
        from ._reload import run_with_reload

        return await run_with_reload(args)
    kwargs = settings_kwargs(args)
    if args.queue:
        kwargs["queues"] = args.queue
    settings = Settings.load(**kwargs)
    setup_logging(settings.log_level, settings.log_format)
    plugins = load_plugins(args)  # a missing or broken plugin fails before anything starts
    names = [p if isinstance(p, str) else f"{p.name} (--app)" for p in plugins]
    observer = None
    if settings.metrics_port is not None:
        from .._metrics import PrometheusObserver

        observer = PrometheusObserver()
    observers: list[Any] = [o for o in (observer, _sentry()) if o is not None]
    combined = Observers(observers) if len(observers) > 1 else (observers or [None])[0]
    runner = Runner(worker=False, plugins=plugins, observer=combined, **kwargs)
    log.info(
        "jobrunner starting: %s; plugins %s; settings %s",
        runner.backend.description,
        ", ".join(names) or "none",
        {k: v for k, v in runner.settings.describe().items() if v is not None},
        extra={"event": "starting"},
    )
    warning = slow_driver(runner.settings.database_url)
    if warning:
        log.warning("%s", warning, extra={"event": "slow_driver"})
    code = 0
    server = None
    if observer is not None and settings.metrics_port is not None:
        from .._metrics import MetricsServer

        server = MetricsServer(runner=runner, observer=observer, port=settings.metrics_port)
        server.start()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_watch_signals, runner, tg.cancel_scope)
            code = await _start_and_run(runner, args, observer)
            tg.cancel_scope.cancel()
    finally:
        if server is not None:
            server.close()
    return code


async def _start_and_run(runner: Runner, args: argparse.Namespace, observer: Any) -> int:
    outage = Outage(max_delay=runner.settings.error_retry_delay)
    while True:
        try:
            async with runner, anyio.create_task_group() as tg:
                outage.recovered()
                if observer is not None:
                    from .._metrics import refresh_queue_gauges

                    tg.start_soon(refresh_queue_gauges, runner, observer)
                _tune_garbage_collector()
                code = await runner.run(burst=args.burst)
                tg.cancel_scope.cancel()
                return code
        except SchemaError:
            raise
        except DatabaseError as exc:
            if not exc.transient:
                raise  # refused, not unreachable: waiting will not help
            if runner.worker is not None and runner.worker.stopping:
                return 0
            outage.failed("starting the worker", exc)
            await anyio.sleep(outage.delay())


def _tune_garbage_collector() -> None:
    """The process is the worker's own, so tune the cyclic collector for it: what start-up built
    (modules, plugins, clients) is frozen out of its way, and the youngest generation waits for
    10,000 new objects instead of 700. A busy worker holds a few thousand young objects (its
    claimed jobs and their attempts), so at 700 it ran a collection every few hundred jobs,
    each stalling the event loop for up to a few milliseconds; nearly all of them die by their
    reference count, and cycles are still collected within a second of a busy worker."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(max(10_000, gc.get_threshold()[0]), middle, old)


async def _watch_signals(runner: Runner, scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        count = 0
        async for signum in _early_then(EARLY_SIGNALS, signals):
            count += 1
            name = signal.Signals(signum).name
            if runner.worker is None:
                log.warning("%s: stopping gracefully (the worker had not started)", name)
                scope.cancel()
                return
            if count == 1:
                log.warning(
                    "%s: stopping gracefully (a second signal stops at once)",
                    name,
                    extra={"event": "signal"},
                )
            else:
                log.warning("%s again: handing running jobs back now", name)
            runner.stop()


async def _early_then(early: list[int], signals: Any) -> Any:
    """Signals that arrived while the process was starting, then the live ones."""
    while early:
        yield early.pop(0)
    async for signum in signals:
        yield signum
