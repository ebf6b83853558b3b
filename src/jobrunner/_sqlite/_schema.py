"""Migrations and schema checks for the SQLite backend (blocking; run in a worker thread)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

from .. import __version__
from .._errors import SchemaError
from .._job import COLUMNS
from .._sql import load_migrations
from ._files import immediate

PACKAGE = "jobrunner._sqlite"


def statements(script: str) -> Iterator[str]:
    """The statements of a migration script, one by one (executescript would commit)."""
    chunk = ""
    for line in script.splitlines(keepends=True):
        chunk += line
        if sqlite3.complete_statement(chunk):
            yield chunk.strip()
            chunk = ""
    if chunk.strip() and not all(
        line.strip().startswith("--") or not line.strip() for line in chunk.splitlines()
    ):
        raise ValueError(f"unterminated statement in a migration: {chunk.strip()[:80]!r}")


@attrs.frozen(kw_only=True)
class Schema:
    """Where jobrunner's tables live in one file, and the SQL to manage them."""

    path: Path
    table: str
    ours: frozenset[str]  # the table names jobrunner owns in this file
    queries: dict[str, str]
    render: Callable[[str], str]
    allow_other_tables: bool = False

    @property
    def migrations_table(self) -> str:
        return f"{self.table}_migrations"

    def migrate(self, conn: sqlite3.Connection, now: float) -> list[str]:
        """Apply pending migrations in one write transaction; return the names applied."""
        migrations = load_migrations(PACKAGE)
        applied_now: list[str] = []
        with immediate(conn):
            tables = self._tables(conn)
            if self.migrations_table not in tables:
                self._refuse_foreign(tables)
            conn.execute(self.queries["migrations_create"])
            done = {row[0] for row in conn.execute(self.queries["migrations_applied"])}
            self._refuse_newer(conn, max(done, default=0), len(migrations))
            for version, name, text in migrations:
                if version in done:
                    continue
                for statement in statements(self.render(text)):
                    conn.execute(statement)
                conn.execute(
                    self.queries["migration_record"],
                    {
                        "version": version,
                        "name": name,
                        "jobrunner_version": __version__,
                        "now": now,
                    },
                )
                applied_now.append(f"{version:04d}_{name}")
        return applied_now

    def check(self, conn: sqlite3.Connection) -> None:
        """Raise SchemaError unless the schema is exactly what this version expects."""
        known = len(load_migrations(PACKAGE))
        tables = self._tables(conn)
        if self.migrations_table not in tables:
            self._refuse_foreign(tables)
            raise SchemaError(
                f"{self.path} has no jobrunner tables yet; run `jobrunner migrate` "
                "(or start a worker, which migrates by default)"
            )
        found = conn.execute(self.queries["schema_version"]).fetchall()
        version = found[0][0] if found else 0
        self._refuse_newer(conn, version, known)
        if version < known:
            raise SchemaError(
                f"{self.path} is at schema version {version}, this jobrunner needs {known}; "
                "run `jobrunner migrate`"
            )
        found = {r[0] for r in conn.execute(self.queries["schema_columns"], {"table": self.table})}
        if not found:
            raise SchemaError(
                f"{self.path} records jobrunner migrations but its table {self.table!r} is "
                "missing; restore it from a backup or use a new file"
            )
        missing = set(COLUMNS) - found
        if missing:
            raise SchemaError(
                f"table {self.table!r} in {self.path} lacks columns {sorted(missing)}: the table "
                "was altered by hand; refusing to run rather than corrupt data"
            )

    def _tables(self, conn: sqlite3.Connection) -> set[str]:
        return {row[0] for row in conn.execute(self.queries["tables"])}

    def _refuse_foreign(self, tables: set[str]) -> None:
        """Refuse a file that clearly belongs to another application."""
        others = tables - self.ours - _other_jobrunner_tables(tables)
        if others and not self.allow_other_tables:
            listed = ", ".join(sorted(others)[:5]) + (", …" if len(others) > 5 else "")
            raise SchemaError(
                f"{self.path} is not a jobrunner database: it holds other tables ({listed}) "
                "and none of jobrunner's. Refusing to add jobrunner's tables to another "
                "application's database; use a separate file with DATABASE_URL=sqlite:///jobs.db "
                "(or SQLiteBackend(..., allow_other_tables=True) to share it on purpose)"
            )

    def _refuse_newer(self, conn: sqlite3.Connection, version: int, known: int) -> None:
        if version <= known:
            return
        found = conn.execute(self.queries["schema_version"]).fetchall()
        by = found[0][1] if found else "?"
        raise SchemaError(
            f"{self.path} has schema version {version}, applied by jobrunner {by}; this "
            f"jobrunner {__version__} knows versions up to {known}. Upgrade jobrunner to {by} "
            "or newer to use this database"
        )


def _other_jobrunner_tables(tables: set[str]) -> set[str]:
    """Tables of other jobrunner table sets in the file (another JOBRUNNER_TABLE)."""
    found: set[str] = set()
    for name in tables:
        if name.endswith("_migrations"):
            base = name.removesuffix("_migrations")
            found |= {name, base, f"{base}_wakeup", f"{base}_workers"} & tables
    return found
