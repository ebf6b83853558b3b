"""Keep secrets out of logs, errors and job rows."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

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
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)


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


_REGISTERED: set[str] = set()


def register_secrets(env: Mapping[str, str]) -> None:
    """Remember the secret values of an environment other than os.environ (e.g. `Runner(env=…)`)."""
    _REGISTERED.update(_secrets_of(env))


def secret_values(extra: Iterable[str] = ()) -> list[str]:
    """Secret values known from the environment (and `extra`), longest first."""
    values = set(extra) | _REGISTERED | _secrets_of(os.environ)
    return sorted((v for v in values if len(v) >= 4), key=len, reverse=True)


def _secrets_of(env: Mapping[str, str]) -> set[str]:
    values: set[str] = set()
    for name, value in env.items():
        if name in SECRET_ENV_NAMES or _SECRET_WORDS.search(name):
            if "://" in value and not name.endswith("DSN"):
                password = _password_of(value)  # a URL: only its password is secret
                if password:
                    values.add(password)
            else:
                values.add(value)
    return values


def redact(text: str, *extra: str) -> str:
    """`text` with URL passwords and every known secret value replaced by `***`."""
    text = _URL_PASSWORD.sub(r"\g<scheme>\g<user>:***@", text)
    text = _KV_PASSWORD.sub(r"\1***", text)
    secrets = list(extra)
    for value in extra:
        password = _password_of(value)
        if password:
            secrets.append(password)
    for secret in secret_values(secrets):
        if secret in text:
            text = text.replace(secret, "***")
    return text


def _password_of(value: str) -> str | None:
    if "://" not in value:
        return None
    try:
        return urlsplit(value).password
    except ValueError:
        return None
