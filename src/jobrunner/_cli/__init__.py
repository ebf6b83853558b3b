"""The `jobrunner` command line. Heavy modules are imported only by the command that needs them."""

from __future__ import annotations

import os
import signal
import sys

from ._parser import build_parser
from ._signals import remember_early

#: The exit code of a command whose stdout was closed under it (`jobrunner … | head`): what a
#: shell reports for a Unix tool that SIGPIPE ended (128 + 13).
EXIT_PIPE = 128 + signal.SIGPIPE


def main(argv: list[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
    except BrokenPipeError:
        return _stdout_closed()
    return code


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:  # the shell asks for completions (`jobrunner completion`)
        import argcomplete

        argcomplete.autocomplete(parser)
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


def _stdout_closed() -> int:
    """Whoever read our stdout went away: end quietly, as Unix tools do. Stdout now points at
    /dev/null, so the interpreter's own flush at exit cannot fail a second time."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return int(EXIT_PIPE)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
