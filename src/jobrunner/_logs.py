"""Log set-up for the CLI: text or JSON lines, with secrets redacted."""

from __future__ import annotations

import json
import logging
import sys
import time

from ._secrets import redact

_EXTRA_KEYS = ("event", "job_id", "job_type", "attempt", "user_id", "duration", "delay")


class _Redacting(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return redact(text)  # every line: a handler may log a secret at any level


class TextFormatter(_Redacting):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")


class JSONFormatter(_Redacting):
    """One JSON object per line: time, level, logger, message and the job's fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _EXTRA_KEYS:
            value = getattr(record, key, None)
            if value is not None:
                data[key] = value
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return redact(json.dumps(data, ensure_ascii=False, default=str))


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "botocore", "aiobotocore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # The pool warns on every reconnection attempt; the worker reports an outage once, with
    # its cause (the backend asks the server directly when the pool gives up).
    logging.getLogger("psycopg.pool").setLevel(max(logging.ERROR, root.level))
