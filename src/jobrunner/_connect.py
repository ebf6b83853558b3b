"""Choose a backend from a database URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from ._backend import Backend
from ._errors import UnsupportedDatabaseURL
from ._secrets import mask_url
from ._settings import DEFAULT_SQLITE_PATH, Settings


def backend_from_settings(settings: Settings) -> Backend:
    """PostgreSQL for postgresql://, SQLite for sqlite:///path, a SQLite file when unset."""
    url = settings.database_url
    if not url:
        return _sqlite(Path(DEFAULT_SQLITE_PATH), settings)
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme in {"postgresql", "postgres"} or scheme.startswith("postgresql+"):
        from ._postgres import PostgresBackend

        return PostgresBackend(
            url.replace("postgresql+psycopg://", "postgresql://", 1),
            schema=settings.schema,
            table=settings.table,
            pool_size=min(max(4, settings.concurrency // 50 + 4), 20),
            prepare=settings.prepare,
            listen_url=settings.listen_url,
        )
    if scheme == "sqlite":
        return _sqlite(sqlite_path(url), settings)
    raise UnsupportedDatabaseURL(
        f"unsupported database URL {mask_url(url)!r}: use postgresql://user@host/db "
        "or sqlite:///path/to/file.db"
    )


def sqlite_path(url: str) -> Path:
    """`sqlite:///rel.db` → rel.db, `sqlite:////abs.db` → /abs.db."""
    parts = urlsplit(url)
    if parts.netloc not in {"", "localhost"}:
        raise UnsupportedDatabaseURL(
            f"sqlite URL {url!r} names a host; use sqlite:///relative.db or sqlite:////absolute.db"
        )
    path = unquote(parts.path)
    if path.startswith("/"):
        path = path[1:]
    if not path:
        raise UnsupportedDatabaseURL("sqlite URL has no file path: use sqlite:///jobrunner.db")
    return Path(path)


def _sqlite(path: Path, settings: Settings) -> Backend:
    from ._sqlite import SQLiteBackend

    return SQLiteBackend(path, table=settings.table)
