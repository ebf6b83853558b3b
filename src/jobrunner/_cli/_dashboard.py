"""`jobrunner dashboard`: serve the operators' web dashboard (`pip install 'jobrunner[dashboard]'`).

The web framework and server are imported only when the command runs, so `jobrunner --help`
and every other command stay as light as they were.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from typing import Any

from .._errors import ConfigurationError
from ._common import settings_kwargs

AddSettings = Callable[[argparse.ArgumentParser], None]
log = logging.getLogger("jobrunner.dashboard")


def add_command(sub: Any, add_settings: AddSettings) -> None:
    """The `dashboard` command, on the parser's subcommands."""
    dashboard = sub.add_parser("dashboard", help="serve the web dashboard (jobrunner[dashboard])")
    dashboard.add_argument("--host", default="127.0.0.1", help="address to listen on")
    dashboard.add_argument("--port", type=int, default=8080, help="port to listen on")
    dashboard.add_argument(
        "--read-only", action="store_true", help="show everything, change nothing"
    )
    dashboard.add_argument(
        "--plugin",
        "-p",
        action="append",
        default=None,
        metavar="NAME",
        help="show this plugin's views (repeatable; default JOBRUNNER_PLUGINS, else all)",
    )
    dashboard.add_argument(
        "--image-source",
        action="append",
        default=[],
        metavar="SRC",
        help="where plugin views may show images from, besides https: (e.g. http://localhost:9000)",
    )
    add_settings(dashboard)


async def dashboard(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..dashboard import Access, create_app
        from ..dashboard._access import is_loopback
    except ImportError as exc:
        raise ConfigurationError(
            f"the dashboard needs its extra: pip install 'jobrunner[dashboard]' ({exc})"
        ) from None
    from .._logs import setup_logging
    from .._settings import Settings

    settings = Settings.load(os.environ)
    setup_logging(settings.log_level, settings.log_format)
    access = Access.from_env(os.environ, read_only=args.read_only)
    if access.open and not is_loopback(args.host):
        raise ConfigurationError(
            f"refusing to serve the dashboard on {args.host} without a password: set "
            "JOBRUNNER_DASHBOARD_PASSWORD, or serve on 127.0.0.1"
        )
    plugins = [n for value in args.plugin for n in value.split(",") if n] if args.plugin else None
    app = create_app(
        plugins=plugins,
        access=access,
        image_sources=("https:", *args.image_source),
        **settings_kwargs(args),
    )
    mode = " (read-only)" if access.read_only else ""
    log.info("dashboard on http://%s:%s%s", _host(args.host), args.port, mode)
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_config=None, access_log=False, lifespan="on"
    )
    await uvicorn.Server(config).serve()
    return 0


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
