"""The `jobrunner` command line. Heavy modules are imported only by the command that needs them."""

from __future__ import annotations

import signal
import sys

from ._parser import build_parser
from ._signals import remember_early


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "command", None) == "run":
        # A supervisor may stop a worker that is still starting up: remember the signal
        # instead of dying of it, and stop cleanly once the worker loop can hear it.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, remember_early)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    from ._dispatch import dispatch

    return dispatch(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
