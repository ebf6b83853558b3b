"""Keep secrets out of logs, errors and job rows.

`redact` runs on every log line, so the secret values are worked out once: from `os.environ`
when it changes (tests set variables while the process runs) and from each environment given
to `register_secrets`, then compiled into one pattern. A line with no secret costs a few
substring checks, a comparison of the environment with the one the values came from, and a
substring search per value (under a microsecond); `may_hold_secret` is that check alone.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import attrs

# Environment variables whose values must never be printed.
SECRET_ENV_NAMES = (
    "DATABASE_URL",
    "JOBRUNNER_DATABASE_URL",
    "OPENAI_API_KEY",
    "FAL_KEY",
    "R2_SECRET_ACCESS_KEY",
    "R2_ACCESS_KEY_ID",
    "PGPASSWORD",
    "SENTRY_DSN",
)
_SECRET_WORDS = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|PASSWD|DSN)", re.IGNORECASE)
# Linear on hostile text: a scheme starts only where a run of scheme characters starts, and a
# password ends before the next `://` (else a megabyte of `a://b:` would take minutes).
_URL_PASSWORD = re.compile(
    r"(?<![a-z0-9+.-])(?P<scheme>[a-z0-9+.-]+://)"
    r"(?P<user>[^:/@\s]*):(?P<pw>(?:(?!://)[^@\s])*)@",
    re.IGNORECASE,
)
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)
# A password as a quoted key with a quoted value: a dict's repr, a JSON document (looked for
# when the text holds "assword" or "ASSWORD", which covers the usual spellings).
_QUOTED_PASSWORD = re.compile(r"""(["']password["']\s*:\s*(["']))(?:(?!\2)[^\\]|\\.)*\2""", re.I)
_MIN_LENGTH = 4  # shorter values would mask ordinary words


def mask_url(url: str) -> str:
    """The URL with its password replaced by `***`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _URL_PASSWORD.sub(r"\g<scheme>\g<user>:***@", url)
    if parts.password is None:
        return _KV_PASSWORD.sub(r"\1***", url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


@attrs.frozen(kw_only=True)
class _Known:
    """The secret values in force, worked out from `environ` (and registered environments)."""

    environ: dict[Any, Any] | None  # a copy of _environ_items()
    values: tuple[str, ...]  # longest first, each also as JSON writes it
    pattern: re.Pattern[str] | None  # matches any of them


_registered: set[str] = set()
_known = _Known(environ=None, values=(), pattern=None)


def register_secrets(env: Mapping[str, str]) -> None:
    """Remember the secret values of an environment other than os.environ (e.g. `Runner(env=…)`)."""
    global _known
    _registered.update(_secrets_of(env))
    _known = attrs.evolve(_known, environ=None)  # rebuilt on the next line


def secret_values(extra: Iterable[str] = ()) -> list[str]:
    """Secret values known from the environment (and `extra`), longest first."""
    values = set(extra) | _registered | _secrets_of(os.environ)
    return sorted((v for v in values if len(v) >= _MIN_LENGTH), key=len, reverse=True)


def _environ_items() -> dict[Any, Any]:
    # CPython keeps os.environ's items, encoded, in a plain dict: comparing it with a copy takes
    # a fraction of a microsecond, where decoding every item takes tens.
    data = getattr(os.environ, "_data", None)
    return data if isinstance(data, dict) else dict(os.environ)


def _known_secrets() -> _Known:
    global _known
    items = _environ_items()
    known = _known
    if items != known.environ:
        values = secret_values()
        # Also as JSON writes them (quotes, backslashes, non-ASCII escaped): a JSON log line or an
        # error quoting a JSON document is checked as it is.
        forms = {json.dumps(v, ensure_ascii=a)[1:-1] for v in values for a in (False, True)}
        found = tuple(sorted({*values, *forms}, key=len, reverse=True))
        pattern = re.compile("|".join(map(re.escape, found))) if found else None
        known = _known = _Known(environ=dict(items), values=found, pattern=pattern)
    return known


def may_hold_secret(text: str) -> bool:
    """False when `redact(text)` would certainly leave `text` as it is (cheap, for hot paths)."""
    if "://" in text or "=" in text or "assword" in text or "ASSWORD" in text:
        return True
    # A substring search per value beats one regex of them all, which tries each at each place.
    return any(map(text.__contains__, _known_secrets().values))


def _secrets_of(env: Mapping[str, str]) -> set[str]:
    values: set[str] = set()
    for name, value in env.items():
        if name in SECRET_ENV_NAMES or _SECRET_WORDS.search(name):
            if "://" in value and not name.endswith("DSN"):
                values.update(_passwords_of(value))  # a URL: only its password is secret
            else:
                values.add(value)
    return values


def redact(text: str, *extra: str) -> str:
    """`text` with URL passwords, `password=…` and `"password": "…"` values, every known secret
    value and every value in `extra` (or the password of a URL in `extra`) replaced by `***`."""
    if "://" in text:
        text = _URL_PASSWORD.sub(r"\g<scheme>\g<user>:***@", text)
    if "=" in text:
        text = _KV_PASSWORD.sub(r"\1***", text)
    if "assword" in text or "ASSWORD" in text:
        text = _QUOTED_PASSWORD.sub(r"\1***\2", text)
    known = _known_secrets()
    if known.pattern is not None and any(map(text.__contains__, known.values)):
        text = known.pattern.sub("***", text)
    if extra:
        given = {*extra, *(p for value in extra for p in _passwords_of(value))}
        for secret in sorted(given, key=len, reverse=True):
            if len(secret) >= _MIN_LENGTH and secret in text:
                text = text.replace(secret, "***")
    return text


def _passwords_of(value: str) -> set[str]:
    """The password of a URL, as written and decoded; empty when `value` is no URL."""
    if "://" not in value:
        return set()
    try:
        password = urlsplit(value).password
    except ValueError:
        return set()
    return {password, unquote(password)} if password else set()
