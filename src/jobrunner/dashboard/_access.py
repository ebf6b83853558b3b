"""Who may look and who may act: HTTP Basic users, loopback-only without a password, CSRF
tokens and the Origin check, and the security headers every response carries.

Passwords and tokens are compared in constant time (`hmac.compare_digest`). A CSRF token is
an HMAC of the user's name under the app's secret (`JOBRUNNER_DASHBOARD_SECRET`, or a random
one per process): a page can only have it if it was served to that user.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import logging
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from .._errors import ConfigurationError

log = logging.getLogger("jobrunner.dashboard")

USER_ENV = "JOBRUNNER_DASHBOARD_USER"
PASSWORD_ENV = "JOBRUNNER_DASHBOARD_PASSWORD"
READONLY_USER_ENV = "JOBRUNNER_DASHBOARD_READONLY_USER"
READONLY_PASSWORD_ENV = "JOBRUNNER_DASHBOARD_READONLY_PASSWORD"
SECRET_ENV = "JOBRUNNER_DASHBOARD_SECRET"
ANONYMOUS = "anonymous"


@attrs.frozen(kw_only=True)
class Identity:
    """The user of a request, and whether they may change anything."""

    name: str
    can_act: bool


@attrs.frozen(kw_only=True)
class Access:
    """The dashboard's users. Without any password the dashboard has no login and answers
    loopback clients only; `read_only` makes every user (the admin too) a viewer."""

    user: str = "admin"
    password: str | None = attrs.field(default=None, repr=False)
    readonly_user: str | None = None
    readonly_password: str | None = attrs.field(default=None, repr=False)
    read_only: bool = False
    secret: bytes = attrs.field(factory=lambda: secrets.token_bytes(32), repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, read_only: bool = False) -> Access:
        secret = env.get(SECRET_ENV)
        return cls(
            user=env.get(USER_ENV) or "admin",
            password=env.get(PASSWORD_ENV) or None,
            readonly_user=env.get(READONLY_USER_ENV) or None,
            readonly_password=env.get(READONLY_PASSWORD_ENV) or None,
            read_only=read_only,
            **({"secret": hashlib.sha256(secret.encode()).digest()} if secret else {}),
        )

    @property
    def open(self) -> bool:
        """No password at all: no login, loopback clients only."""
        return not self.password and not self.readonly_password

    def identify(self, authorization: str | None) -> Identity | None:
        """The user an `Authorization` header names with the right password, or None."""
        if self.open:
            return Identity(name=ANONYMOUS, can_act=not self.read_only)
        given = _basic(authorization)
        if given is None:
            return None
        name, password = given
        if _matches(name, password, self.user, self.password):
            return Identity(name=name, can_act=not self.read_only)
        if _matches(name, password, self.readonly_user, self.readonly_password):
            return Identity(name=name, can_act=False)
        return None

    def csrf_token(self, identity: Identity) -> str:
        return hmac.new(self.secret, b"csrf\0" + identity.name.encode(), hashlib.sha256).hexdigest()

    def csrf_valid(self, identity: Identity, token: str | None) -> bool:
        expected = self.csrf_token(identity)
        return token is not None and hmac.compare_digest(expected.encode(), token.encode())


def _basic(authorization: str | None) -> tuple[str, str] | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, sep, password = decoded.partition(":")
    return (name, password) if sep else None


def _matches(name: str, password: str, user: str | None, expected: str | None) -> bool:
    if not user or not expected:
        return False
    # Both compared whatever the first says, so the time taken tells nothing.
    same_user = hmac.compare_digest(name.encode(), user.encode())
    same_password = hmac.compare_digest(password.encode(), expected.encode())
    return same_user and same_password


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def same_origin(headers: Mapping[str, str], allowed: frozenset[str] = frozenset()) -> bool:
    """Whether a state-changing request comes from a page of this dashboard: its `Origin` (or,
    without one, its `Referer`) names the host it was sent to, or an origin in `allowed`. A
    request with neither header (not a browser's) passes on its CSRF token alone."""
    source = headers.get("origin") or headers.get("referer")
    if not source:
        return True
    if source == "null":
        return False
    parts = urlsplit(source)
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    if origin in allowed:
        return True
    host = (headers.get("host") or "").lower()
    return bool(host) and parts.netloc.lower() == host


def content_security_policy(image_sources: tuple[str, ...]) -> str:
    """Scripts and styles from the app's own static route only (nothing inline); images also
    from the given sources (plugin views show portraits from their public URLs)."""
    for source in image_sources:
        if not source or any(c in source for c in " ;,'\"\n\r\t"):
            raise ConfigurationError(f"not an image source for the CSP: {source!r}")
    images = " ".join(["'self'", "data:", *image_sources])
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        f"img-src {images}; connect-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )


def security_headers(csp: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", csp.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        # Same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on a
        # form POST, and the Origin check could not tell our own pages from others.
        (b"referrer-policy", b"same-origin"),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]


def client_host(scope: Mapping[str, Any]) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None
