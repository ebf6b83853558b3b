"""Run a parsed command; turn jobrunner errors into one readable line and an exit code."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time

import anyio

from .._errors import (
    ConfigurationError,
    DatabaseError,
    JobNotFound,
    JobrunnerError,
    PayloadError,
    PluginNotFound,
)
from .._secrets import redact

EXIT_FAILED = 1  # the database failed or refused, a job was not found or failed, …
EXIT_USAGE = 2  # the command line is wrong: flags, settings, payload, plugin names


def dispatch(args: argparse.Namespace) -> int:
    from . import (
        _budgets,
        _commands,
        _completion,
        _dashboard,
        _doctor,
        _limits,
        _ops,
        _plugins,
        _run,
        _schedules,
    )

    commands = {
        "run": _run.run,
        "migrate": _commands.migrate,
        "enqueue": _commands.enqueue,
        "status": _commands.status,
        "jobs": _commands.jobs,
        "prune": _commands.prune,
        "plugins": _plugins.plugins,
        "workers": _ops.workers,
        "healthcheck": _ops.healthcheck,
        "doctor": _doctor.doctor,
        "limits": _limits.limits,
        "pause": _limits.pause,
        "resume": _limits.resume,
        "schedules": _schedules.schedules,
        "budgets": _budgets.budgets,
        "usage": _budgets.usage,
        "completion": _completion.completion,
        "schema": _plugins.schema,
        "dashboard": _dashboard.dashboard,
    }
    if args.command != "run":  # `run` sets up logging from its own settings
        from .._logs import setup_logging

        setup_logging("warning")
    try:
        try:
            code = anyio.run(commands[args.command], args, backend_options=_loop_options(args))
            if args.command == "run":
                _exit_past_stuck_threads(code)
            return code
        except BaseExceptionGroup as group:
            raise _single(group) from None
    except KeyboardInterrupt:
        return 130
    except (ConfigurationError, PayloadError, PluginNotFound) as exc:
        _error(exc)
        return EXIT_USAGE
    except (DatabaseError, JobNotFound, JobrunnerError) as exc:
        _error(exc)
        return EXIT_FAILED


def _exit_past_stuck_threads(code: int) -> None:
    """A handler thread abandoned after its timeout may still be blocked: it must not keep a
    stopped worker process alive, so exit without waiting for it."""
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    # Idle pool threads are told to end when the loop closes and do so within moments: only
    # those still running after a short grace are stuck.
    deadline = time.monotonic() + 1.0
    for thread in others:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t for t in others if t.is_alive()]
    if stuck:
        logging.getLogger("jobrunner").warning(
            "%d handler threads are still blocked; exiting without waiting for them", len(stuck)
        )
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _loop_options(args: argparse.Namespace) -> dict[str, bool]:
    """Workers run on uvloop when it is installed (`pip install 'jobrunner[fast]'`)."""
    if args.command != "run" or os.environ.get("JOBRUNNER_UVLOOP", "1") == "0":
        return {}
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return {}
    return {"use_uvloop": True}


def _single(group: BaseExceptionGroup) -> BaseException:
    """The one error inside nested task-group wrappers, or the group itself."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _error(exc: BaseException) -> None:
    logging.getLogger("jobrunner").debug("command failed", exc_info=True)
    print(f"jobrunner: error: {redact(str(exc))}", file=sys.stderr)
