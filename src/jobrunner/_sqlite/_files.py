"""Opening a SQLite file for jobrunner, and turning sqlite3 errors into jobrunner's.

Problems a person must fix (a missing or read-only directory, a file that is not a SQLite
database, a SQLite library too old) raise ConfigurationError at open. Failures while running
raise DatabaseError, which the worker loop retries, or QueryError when SQLite refused a value
(a constraint): retrying would not help.

Statements are always read to the end (fetchall), never left half-read: an unfinished SELECT
keeps its read transaction open, and that stops WAL checkpoints.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .._errors import ConfigurationError, DatabaseError, QueryError, SchemaError

# RETURNING arrived in 3.35, UPDATE … FROM in 3.33.
MIN_SQLITE = (3, 35, 0)
_HINT = "choose another file with DATABASE_URL=sqlite:///path/to/jobs.db"


def check_location(path: Path) -> None:
    """Refuse, with a readable reason, a path SQLite could not use for a shared job file."""
    if sqlite3.sqlite_version_info < MIN_SQLITE:
        raise ConfigurationError(
            f"the SQLite library is {sqlite3.sqlite_version}; jobrunner needs "
            f"{'.'.join(map(str, MIN_SQLITE))} or newer (use a newer Python build)"
        )
    where = f"cannot use SQLite database {path}"
    parent = path.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise ConfigurationError(f"{where}: directory {parent} {what}; create it or {_HINT}")
    if path.is_dir():
        raise ConfigurationError(f"{where}: it is a directory; {_HINT}")
    if not os.access(parent, os.W_OK | os.X_OK):
        # WAL mode keeps <file>-wal and <file>-shm beside the database, so the directory
        # must be writable even when the file already exists.
        raise ConfigurationError(
            f"{where}: directory {parent} is read-only, and SQLite must create "
            f"{path.name}-wal and {path.name}-shm beside it; {_HINT}"
        )
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise ConfigurationError(f"{where}: the file is not readable and writable; {_HINT}")
    # The file's header is not read here: closing any descriptor of the file would drop the
    # POSIX locks SQLite holds on it for other connections of this process. SQLite itself
    # says "file is not a database" at the first statement (see `connect`).


def connect(path: Path, *, busy_timeout: float) -> sqlite3.Connection:
    """A connection set up for several processes sharing the file (WAL, busy timeout)."""
    check_location(path)
    try:
        conn = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise ConfigurationError(f"cannot open SQLite database {path}: {exc}; {_HINT}") from None
    try:
        # WAL lets readers work while one writer commits; NORMAL is durable across process
        # crashes (a power cut may lose the last commits, never corrupt the file).
        [(mode,)] = conn.execute("PRAGMA journal_mode = WAL").fetchall()
        conn.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.Error as exc:
        conn.close()
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            raise DatabaseError(f"SQLite database {path} is locked: {exc}") from None
        if "not a database" in str(exc):
            raise ConfigurationError(
                f"cannot use SQLite database {path}: the file is not a SQLite database; {_HINT}"
            ) from None
        raise ConfigurationError(f"cannot use SQLite database {path}: {exc}; {_HINT}") from None
    if mode.lower() != "wal":
        conn.close()
        raise ConfigurationError(
            f"cannot use SQLite database {path}: it refused WAL mode (journal mode {mode}); "
            "it must be on a local file system"
        )
    return conn


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction that takes the write lock at once, so it never deadlocks on upgrade."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


# What sqlite3 raises for a statement or value SQLite refuses; retrying cannot help.
_REFUSED = (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.ProgrammingError, OverflowError)
FAILURES = (sqlite3.Error, OverflowError)


def translate(exc: sqlite3.Error | OverflowError, path: Path) -> DatabaseError:
    """The jobrunner error for a sqlite3 error raised while running."""
    text = str(exc)
    if isinstance(exc, _REFUSED):
        return QueryError(f"SQLite refused: {text}")
    if isinstance(exc, sqlite3.OperationalError):
        if text.startswith("no such table"):
            return SchemaError(f"{path}: {text}; run `jobrunner migrate`")
        if text.startswith("no such column"):
            return SchemaError(f"{path}: {text}: the job table was altered by hand")
        if "locked" in text or "busy" in text:
            return DatabaseError(
                f"SQLite database {path} stayed locked by another connection: {text}"
            )
    return DatabaseError(f"SQLite error on {path}: {text}")
