"""Settings: one table of options, read from flags, then environment, then defaults.

Each option's CLI flag, environment variable and help text live here, so the CLI, the
`jobrunner run` start-up log and the configuration reference in docs/ cannot drift apart.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ._errors import ConfigurationError
from ._secrets import mask_url
from ._sql import MAX_TABLE_BYTES

DEFAULT_SQLITE_PATH = "jobrunner.db"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(text: str | float) -> float:
    """Seconds from `90`, `1.5`, `250ms`, `30s`, `10m`, `2h`, `7d` or `1w`."""
    if isinstance(text, int | float):
        return float(text)
    match = _DURATION.match(text)
    if not match:
        raise ConfigurationError(f"not a duration: {text!r} (use e.g. 30s, 10m, 7d)")
    return float(match[1]) * _UNITS[match[2]]


def parse_bool(text: str | bool) -> bool:
    if isinstance(text, bool):
        return text
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigurationError(f"not a boolean: {text!r} (use true or false)")


def parse_size(text: str | int) -> int:
    """Bytes from `1048576`, `512k`, `100MB`, `1GiB`."""
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?)i?b?\s*", text.lower())
    if not match:
        raise ConfigurationError(f"not a size: {text!r} (use e.g. 512MB)")
    return int(float(match[1]) * 1024 ** " kmg".index(match[2] or " "))


def _whole(text: str | int) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigurationError(f"not a whole number: {text!r}") from None


def parse_port(text: str | int) -> int:
    """A TCP port number, 1 to 65535 (0: any free port, for tests)."""
    try:
        port = int(text)
    except ValueError:
        raise ConfigurationError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigurationError(f"not a port number: {text!r} (use 1 to 65535)")
    return port


def _queues(text: str | list[str] | None) -> list[str] | None:
    if text is None or isinstance(text, list):
        return text or None
    return [q.strip() for q in text.split(",") if q.strip()] or None


def _one_of(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise ConfigurationError(f"not one of {', '.join(choices)}: {text!r}")
        return value

    parse.choices = choices  # type: ignore[attr-defined]
    return parse


# The placeholder a flag's help shows for its value, by how the value is read.
_METAVARS: dict[Callable[[Any], Any], str] = {
    _whole: "N",
    parse_duration: "DURATION",
    parse_size: "SIZE",
    parse_port: "PORT",
    _queues: "Q1,Q2",
}


def _option(
    default: Any,
    help: str,
    *,
    env: str | None = None,
    parse: Callable[[Any], Any] = str,
    metavar: str | None = None,
) -> Any:
    choices = getattr(parse, "choices", None)
    shown = metavar or ("{" + ",".join(choices) + "}" if choices else _METAVARS.get(parse, "TEXT"))
    return attrs.field(
        default=default, metadata={"help": help, "env": env, "parse": parse, "metavar": shown}
    )


@attrs.frozen(kw_only=True)
class Settings:
    """Everything a worker can be told. `Settings.load(...)` applies env and defaults."""

    database_url: str | None = _option(
        None,
        "Where jobs live: postgresql://… or sqlite:///path. Unset: a SQLite file ./jobrunner.db.",
        env="DATABASE_URL",
        metavar="URL",
    )
    schema: str = _option(
        "public", "PostgreSQL schema of the job table.", env="JOBRUNNER_SCHEMA", metavar="NAME"
    )
    table: str = _option("job", "Name of the job table.", env="JOBRUNNER_TABLE", metavar="NAME")
    concurrency: int = _option(
        5, "Jobs run at once by one worker process.", env="JOBRUNNER_CONCURRENCY", parse=_whole
    )
    poll_interval: float | None = _option(
        None,
        "Seconds between polls when no notification arrives (PostgreSQL 10, SQLite 0.2).",
        env="JOBRUNNER_POLL_INTERVAL",
        parse=parse_duration,
    )
    queues: list[str] | None = _option(
        None,
        "Only claim jobs of these queues (comma-separated).",
        env="JOBRUNNER_QUEUES",
        parse=_queues,
    )
    listen: bool = _option(
        True,
        "Wake on LISTEN/NOTIFY. Behind PgBouncer in transaction mode, either set "
        "--listen-url to the database itself or turn this off (polling only).",
        env="JOBRUNNER_LISTEN",
        parse=parse_bool,
    )
    listen_url: str | None = _option(
        None,
        "Where to LISTEN when not the database URL: a direct or session-mode connection, "
        "for workers that reach PostgreSQL through a pooler in transaction mode.",
        env="JOBRUNNER_LISTEN_URL",
        metavar="URL",
    )
    prepare: bool = _option(
        True,
        "Use prepared statements on PostgreSQL. Turned off by itself, with one warning, when "
        "a pooler in transaction mode (PgBouncer before 1.21) makes them collide.",
        env="JOBRUNNER_PREPARE",
        parse=parse_bool,
    )
    statement_timeout: float | None = _option(
        None,
        "PostgreSQL: seconds a worker's statement may wait for an answer before its "
        "connection is dropped and a new one opened (a network that silently drops "
        "packets). Unset: a third of the shortest lease of the worker's job types, 5s to 30s.",
        env="JOBRUNNER_STATEMENT_TIMEOUT",
        parse=parse_duration,
    )
    shutdown_timeout: float = _option(
        30.0,
        "On SIGTERM, seconds running jobs get to finish before they are handed back.",
        env="JOBRUNNER_SHUTDOWN_TIMEOUT",
        parse=parse_duration,
    )
    error_retry_delay: float = _option(
        30.0,
        "Longest wait between retries of the worker loop while the database is down.",
        env="JOBRUNNER_ERROR_RETRY_DELAY",
        parse=parse_duration,
    )
    retention: float | None = _option(
        None,
        "Delete finished jobs older than this (e.g. 7d). Unset: keep them.",
        env="JOBRUNNER_RETENTION",
        parse=parse_duration,
    )
    auto_migrate: bool = _option(
        True,
        "Apply pending migrations at start. Turn off for roles without DDL rights.",
        env="JOBRUNNER_AUTO_MIGRATE",
        parse=parse_bool,
    )
    max_payload_bytes: int = _option(
        1 << 20,
        "Largest payload accepted at enqueue.",
        env="JOBRUNNER_MAX_PAYLOAD",
        parse=parse_size,
    )
    max_result_bytes: int = _option(
        1 << 20,
        "Largest result a handler may return.",
        env="JOBRUNNER_MAX_RESULT",
        parse=parse_size,
    )
    max_memory: int | None = _option(
        None,
        "Stop claiming, drain and exit with code 75 when RSS passes this (e.g. 512MB).",
        env="JOBRUNNER_MAX_MEMORY",
        parse=parse_size,
    )
    claim_batch: int = _option(
        500, "Jobs claimed in one statement at most.", env="JOBRUNNER_CLAIM_BATCH", parse=_whole
    )
    claim_ahead: int = _option(
        500,
        "Jobs claimed at most beyond the free slots, so the next jobs are on hand when slots "
        "free; sized to what finishes during one claim, so slow jobs get none. 0: claim only "
        "for free slots.",
        env="JOBRUNNER_CLAIM_AHEAD",
        parse=_whole,
    )
    completion_batch: int = _option(
        500,
        "Outcomes written in one statement at most.",
        env="JOBRUNNER_COMPLETION_BATCH",
        parse=_whole,
    )
    completion_interval: float = _option(
        0.01,
        "Seconds an outcome may wait to be written with others.",
        env="JOBRUNNER_COMPLETION_INTERVAL",
        parse=parse_duration,
    )
    log_level: str = _option(
        "info",
        "Least severe log lines written: debug, info, warning or error.",
        env="JOBRUNNER_LOG_LEVEL",
        parse=_one_of("debug", "info", "warning", "error"),
    )
    log_format: str = _option(
        "text",
        "Log lines as text or as JSON objects.",
        env="JOBRUNNER_LOG_FORMAT",
        parse=_one_of("text", "json"),
    )
    tracing: bool = _option(
        True,
        "Trace each job attempt with OpenTelemetry, continuing the trace that enqueued it, "
        "when an OpenTelemetry SDK is set up (jobrunner[otel]); off: the worker makes no spans "
        "and Runner.enqueue stores no trace context.",
        env="JOBRUNNER_TRACING",
        parse=parse_bool,
    )
    metrics_port: int | None = _option(
        None,
        "Serve Prometheus metrics, /healthz and /readyz on this port (jobrunner run; needs "
        "jobrunner[metrics]). Unset: no metrics server.",
        env="JOBRUNNER_METRICS_PORT",
        parse=parse_port,
    )

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **given: Any) -> Settings:
        """Flags (`given`, None means unset) win over the environment, which wins over defaults."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for field in attrs.fields(cls):
            parse = field.metadata["parse"]
            if given.get(field.name) is not None:
                raw, where = given[field.name], field.name
            elif field.metadata["env"] and env.get(field.metadata["env"]):
                raw, where = env[field.metadata["env"]], field.metadata["env"]
            else:
                continue
            try:
                values[field.name] = parse(raw)
            except (TypeError, ValueError) as exc:
                # Name where the value came from: the keyword (or flag) given, else the variable.
                raise ConfigurationError(f"{where}: {exc}") from None
        unknown = set(given) - {f.name for f in attrs.fields(cls)}
        if unknown:
            raise ConfigurationError(f"unknown settings {sorted(unknown)}")
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.concurrency < 1:
            raise ConfigurationError("concurrency must be at least 1")
        if self.claim_batch < 1 or self.completion_batch < 1 or self.claim_ahead < 0:
            raise ConfigurationError(
                "claim_batch and completion_batch must be at least 1, claim_ahead at least 0"
            )
        if self.poll_interval is not None and self.poll_interval <= 0:
            raise ConfigurationError("poll_interval must be positive")
        if self.statement_timeout is not None and self.statement_timeout <= 0:
            raise ConfigurationError("statement_timeout must be positive")
        if not self.table or len(self.table.encode()) > MAX_TABLE_BYTES:
            # Index, trigger and companion-table names add a suffix to the table's, and
            # PostgreSQL cuts identifiers at 63 bytes.
            raise ConfigurationError(
                f"table name {self.table!r} is empty or too long: at most {MAX_TABLE_BYTES} bytes"
            )
        if self.log_format not in {"text", "json"}:
            raise ConfigurationError("log_format must be text or json")
        if self.log_level not in {"debug", "info", "warning", "error"}:
            raise ConfigurationError("log_level must be debug, info, warning or error")

    def describe(self) -> dict[str, Any]:
        """The effective settings, safe to log (the database password is masked)."""
        out = attrs.asdict(self)
        out["database_url"] = mask_url(self.database_url) if self.database_url else None
        out["listen_url"] = mask_url(self.listen_url) if self.listen_url else None
        return out


def shown_default(field: attrs.Attribute[Any]) -> str | None:
    """A setting's default as a user would type it (`30s`, `1MB`, `true`); None when unset."""
    value, parse = field.default, field.metadata["parse"]
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if parse is parse_duration:
        return f"{value:g}s"
    if parse is parse_size and value % 1024 == 0:
        for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
            if value % size == 0:
                return f"{value // size}{unit}"
    return str(value)


def reference_table() -> list[tuple[str, str, str, str]]:
    """(flag, environment variable, default, help) for every setting: the docs' reference."""
    rows = []
    for field in attrs.fields(Settings):
        flag = "--" + field.name.replace("_", "-")
        default = shown_default(field)
        rows.append((flag, field.metadata["env"] or "", default or "", field.metadata["help"]))
    return rows
