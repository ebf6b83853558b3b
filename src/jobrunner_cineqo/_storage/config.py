"""Choosing and configuring storage from environment variables.

R2 is used when any ``R2_*`` variable below is set (empty values count as unset):

    R2_ACCOUNT_ID         Cloudflare account; gives https://{id}.r2.cloudflarestorage.com
    R2_ACCESS_KEY_ID      secret, never printed
    R2_SECRET_ACCESS_KEY  secret, never printed
    R2_BUCKET_NAME
    R2_PUBLIC_URL         optional: base of public object URLs (a custom domain or r2.dev)
    R2_ENDPOINT_URL       optional: replaces the account endpoint (S3-compatible servers, tests)

Otherwise files go to ``CINEQO_DATA_DIR`` (default ``./jobrunner-data``), with public URLs
under ``CINEQO_PUBLIC_BASE_URL`` when that is set.

This module only reads the environment; ``opening.storage_from_env`` opens what it describes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import attrs

from .errors import StorageConfigError
from .local import DEFAULT_DATA_DIR

R2_VARIABLES = (
    "R2_ACCOUNT_ID",
    "R2_ACCESS_KEY_ID",
    "R2_SECRET_ACCESS_KEY",
    "R2_BUCKET_NAME",
    "R2_PUBLIC_URL",
    "R2_ENDPOINT_URL",
)
_ACCOUNT_ID = re.compile(r"[A-Za-z0-9-]+")


@attrs.frozen(kw_only=True)
class R2Config:
    """Where and how to reach the bucket. Credentials and account stay out of ``repr``."""

    bucket: str
    endpoint_url: str = attrs.field(repr=False)
    access_key_id: str = attrs.field(repr=False)
    secret_access_key: str = attrs.field(repr=False)
    public_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> R2Config | None:
        """The R2 config, None when no R2 variable is set, or ``StorageConfigError``."""
        values = {name: env.get(name, "").strip() for name in R2_VARIABLES}
        if not any(values.values()):
            return None
        required = ["R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "R2_BUCKET_NAME"]
        if not values["R2_ENDPOINT_URL"]:
            required.insert(0, "R2_ACCOUNT_ID")
        missing = [name for name in required if not values[name]]
        if missing:
            raise StorageConfigError(
                f"R2 storage is partly configured; missing {', '.join(missing)}"
            )
        return cls(
            bucket=values["R2_BUCKET_NAME"],
            endpoint_url=_endpoint(values["R2_ENDPOINT_URL"], values["R2_ACCOUNT_ID"]),
            access_key_id=values["R2_ACCESS_KEY_ID"],
            secret_access_key=values["R2_SECRET_ACCESS_KEY"],
            public_url=_http_url("R2_PUBLIC_URL", values["R2_PUBLIC_URL"]) or None,
        )

    def describe(self) -> str:
        """For logs: bucket and public URL only."""
        public = f", public URL {self.public_url}" if self.public_url else ""
        return f"R2 bucket {self.bucket!r}{public}"

    def redact(self, text: str) -> str:
        """``text`` with the credentials replaced, for messages built from library errors."""
        for secret in (self.secret_access_key, self.access_key_id):
            if len(secret) >= 4:  # replacing one or two letters would only garble the text
                text = text.replace(secret, "***")
        return text


@attrs.frozen(kw_only=True)
class LocalConfig:
    """The local directory used when R2 is not configured, and its public base URL if any."""

    root: Path
    public_base_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LocalConfig:
        """``CINEQO_DATA_DIR`` and ``CINEQO_PUBLIC_BASE_URL``, or ``StorageConfigError``."""
        public = _http_url("CINEQO_PUBLIC_BASE_URL", env.get("CINEQO_PUBLIC_BASE_URL", ""))
        return cls(root=data_dir(env), public_base_url=public or None)


def data_dir(env: Mapping[str, str]) -> Path:
    """The local storage directory: ``CINEQO_DATA_DIR``, else ``./jobrunner-data``."""
    return Path(env.get("CINEQO_DATA_DIR") or DEFAULT_DATA_DIR)


def _endpoint(override: str, account_id: str) -> str:
    if override:
        return _http_url("R2_ENDPOINT_URL", override)
    if not _ACCOUNT_ID.fullmatch(account_id):
        raise StorageConfigError("R2_ACCOUNT_ID may hold only letters, digits and '-'")
    return f"https://{account_id}.r2.cloudflarestorage.com"


def _http_url(name: str, value: str) -> str:
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StorageConfigError(f"{name} must be an http:// or https:// URL")
    return value
