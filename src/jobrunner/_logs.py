"""Log set-up for the CLI: text or JSON lines on stderr, with secrets redacted.

A busy worker writes two lines per job, so a line must cost a few microseconds: the formatters
build their line directly (no `Formatter.format` machinery), format the time once per second,
and redact with the cached pattern of `_secrets`.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import logging
import math
import re
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from ._secrets import may_hold_secret, redact

# What logging itself sets on a record; anything else on it is a caller's `extra`.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}
_JSON_FIELDS = ("time", "level", "logger", "message", "traceback", "stack")
_JSON_PLAIN = frozenset({str, int, bool})  # written as they are (floats may be NaN)
_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_DEPTH = 8  # nested extras deeper than this are written as their str()


class _PerSecond:
    """A timestamp's seconds part, formatted once per second instead of once per line."""

    def __init__(self, fmt: str, convert: Callable[[float], time.struct_time]) -> None:
        self._fmt = fmt
        self._convert = convert
        self._last = (-1, "")

    def __call__(self, created: float) -> str:
        second = int(created)
        last_second, text = self._last
        if second != last_second:
            text = time.strftime(self._fmt, self._convert(second))
            self._last = (second, text)  # one tuple: safe to share between threads
        return text


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # a caller's wrong arguments: keep the line rather than lose it
        return f"{record.msg!s} (log arguments that do not fit: {record.args!r})"


class TextFormatter(logging.Formatter):
    """`2026-11-28 22:46:10,489 INFO    jobrunner.job: …` in local time, redacted."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        self._second = _PerSecond("%Y-%m-%d %H:%M:%S", time.localtime)

    def format(self, record: logging.LogRecord) -> str:
        record.message = _message(record)
        line = (
            f"{self._second(record.created)},{int(record.msecs):03d} "
            f"{record.levelname:<7} {record.name}: {record.message}"
        )
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        if record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        return _utf8(redact(line))  # every line: a handler may log a secret at any level


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, every `extra` the caller passed,
    and the traceback. Values are redacted before they are serialised, so a line is valid JSON
    whatever it holds."""

    def __init__(self, *, ensure_ascii: bool = False) -> None:
        super().__init__()
        self._second = _PerSecond("%Y-%m-%dT%H:%M:%S", time.gmtime)
        self._encode = json.JSONEncoder(
            ensure_ascii=ensure_ascii, allow_nan=False, check_circular=False
        ).encode

    def format(self, record: logging.LogRecord) -> str:
        try:
            data = self._fields(record)
            line = self._encode(data)
            # Checking the finished line is enough (the secrets are also known as JSON writes
            # them); the rare line that may hold one is written again with every string redacted.
            if may_hold_secret(line):
                line = self._encode(_jsonable(data, redact, 0))
        except Exception as exc:  # e.g. an int too long to print: still one valid line
            line = self._encode(self._fallback(record, exc))
        return _utf8(line, backslash="\\\\")

    def _fields(self, record: logging.LogRecord) -> dict[str, Any]:
        data: dict[str, Any] = {
            "time": f"{self._second(record.created)}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _message(record),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and value is not None:
                name = f"extra_{key}" if key in _JSON_FIELDS else key
                data[name] = value if type(value) in _JSON_PLAIN else _jsonable(value, _as_is, 0)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["traceback"] = record.exc_text
        if record.stack_info:
            data["stack"] = record.stack_info
        return data

    def _fallback(self, record: logging.LogRecord, exc: Exception) -> dict[str, Any]:
        return {
            "time": f"{self._second(record.created)}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": redact(record.name),
            "message": redact(_safe_str(record.msg)),
            "log_error": redact(f"{type(exc).__name__}: {_safe_str(exc)}"),
        }


def _as_is(text: str) -> str:
    return text


def _utf8(line: str, backslash: str = "\\") -> str:
    """`line`, with each lone surrogate (which UTF-8 cannot hold) written as the text `\\udcff`
    (its backslash doubled inside JSON strings)."""
    if line.isascii():
        return line
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub(lambda m: f"{backslash}u{ord(m[0]):04x}", line)
    return line


def _jsonable(value: Any, scrub: Callable[[str], str], depth: int) -> Any:
    """`value` as JSON can hold it: strings scrubbed, containers walked, the rest as str()."""
    if isinstance(value, str):
        return scrub(value)
    if value is None or value is True or value is False:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else str(value)
    if depth < _MAX_DEPTH:
        if isinstance(value, list | tuple | set | frozenset):
            return [_jsonable(v, scrub, depth + 1) for v in value]
        if isinstance(value, dict):
            return {scrub(_safe_str(k)): _jsonable(v, scrub, depth + 1) for k, v in value.items()}
    return scrub(_safe_str(value))


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__} that cannot be shown>"


class _LineHandler(logging.StreamHandler[TextIO]):
    """Writes each line with one call, and flushes only a stream that does not write through.

    On an asyncio loop's thread, lines below warning are gathered and written together once
    the loop has run the callbacks at hand (a busy worker's job lines: one write per round of
    the loop instead of one per line); a warning, a line from another thread and `flush()`
    write what is gathered first, in order."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        # stderr writes each line through already (Python 3.9+); a flush per line is then waste.
        self._flush = not (
            getattr(stream, "write_through", False) or getattr(stream, "line_buffering", False)
        )
        self._gathered: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
            loop = asyncio._get_running_loop() if record.levelno < logging.WARNING else None
            if loop is not None:
                self._gathered.append(line)
                if len(self._gathered) == 1:
                    loop.call_soon(self.flush)
                return
            if self._gathered:
                line = self._take() + line
            self.stream.write(line)
            if self._flush:
                self.stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def _take(self) -> str:
        text = "".join(self._gathered)
        self._gathered.clear()
        return text

    def flush(self) -> None:
        self.acquire()
        try:
            if self._gathered:
                try:
                    self.stream.write(self._take())
                except Exception as exc:
                    _report(exc, "jobrunner")
        finally:
            self.release()
        super().flush()

    def handleError(self, record: logging.LogRecord) -> None:
        # The stock handler prints the record's message and arguments as they are: secrets too.
        _report(sys.exc_info()[1], record.name)


def _report(exc: BaseException | None, where: str) -> None:
    if logging.raiseExceptions and sys.stderr:
        with contextlib.suppress(Exception):
            sys.stderr.write(f"--- Logging error in {where}: {redact(repr(exc))}\n")


def setup_logging(level: str = "info", fmt: str = "text", *, stream: TextIO | None = None) -> None:
    """Log to `stream` (stderr) in `fmt` ("text" or "json") at `level` and above.

    For the CLI's processes only: it also turns off what logging records that no jobrunner
    line shows (the caller's file and line, thread and process names), a third of a line's cost.
    """
    out = sys.stderr if stream is None else stream
    handler = _LineHandler(out)
    utf8 = codecs.lookup(getattr(out, "encoding", None) or "utf-8").name == "utf-8"
    handler.setFormatter(JSONFormatter(ensure_ascii=not utf8) if fmt == "json" else TextFormatter())
    logging._srcfile = None  # no stack walk per line to find the caller's file and line
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    if hasattr(logging, "logAsyncioTasks"):  # Python 3.12+: no current-task lookup per line
        setattr(logging, "logAsyncioTasks", False)  # noqa: B010
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "botocore", "aiobotocore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # The pool warns on every reconnection attempt, and psycopg on every pipeline a lost
    # connection interrupted; the worker reports an outage once, with its cause (the backend
    # asks the server directly when the pool gives up).
    for name in ("psycopg.pool", "psycopg"):
        logging.getLogger(name).setLevel(max(logging.ERROR, root.level))
