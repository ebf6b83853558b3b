"""Migrations and schema checks for the SQLite backend (blocking; run in a worker thread)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

from .._errors import SchemaError
from .._schema import Migration, SchemaState
from .._sql import COMPANION_TABLES, load_migrations
from .._version import __version__
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

    @property
    def where(self) -> str:
        return f"table {self.table!r} in {self.path}"

    def migrations(self) -> list[Migration]:
        return [
            Migration(version=v, name=n, sql=self.render(text))
            for v, n, text in load_migrations(PACKAGE)
        ]

    def state(self, conn: sqlite3.Connection) -> SchemaState:
        """What the file holds (refusing one that belongs to another application)."""
        tables = self._tables(conn)
        if self.migrations_table not in tables:
            self._refuse_foreign(tables)
            return SchemaState(where=self.where, version=None)
        found = conn.execute(self.queries["schema_version"]).fetchall()
        columns = conn.execute(self.queries["schema_columns"], {"table": self.table}).fetchall()
        return SchemaState(
            where=self.where,
            version=found[0][0] if found else 0,
            applied_by=found[0][1] if found else None,
            columns={name: kind for name, kind in columns} or None,
        )

    def apply(
        self, conn: sqlite3.Connection, plan: Callable[[set[int]], list[Migration]], now: float
    ) -> list[Migration]:
        """Apply what `plan` chooses in one write transaction (which excludes other
        migrators: SQLite has one writer); returns what it applied."""
        with immediate(conn):
            tables = self._tables(conn)
            if self.migrations_table not in tables:
                self._refuse_foreign(tables)
            conn.execute(self.queries["migrations_create"])
            done = {row[0] for row in conn.execute(self.queries["migrations_applied"])}
            todo = plan(done)
            for migration in todo:
                for statement in statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    self.queries["migration_record"],
                    {
                        "version": migration.version,
                        "name": migration.name,
                        "jobrunner_version": __version__,
                        "now": now,
                    },
                )
        return todo

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


def _other_jobrunner_tables(tables: set[str]) -> set[str]:
    """Tables of other jobrunner table sets in the file (another JOBRUNNER_TABLE)."""
    found: set[str] = set()
    for name in tables:
        if name.endswith(COMPANION_TABLES["migrations"]):
            base = name.removesuffix(COMPANION_TABLES["migrations"])
            found |= {base, *(base + suffix for suffix in COMPANION_TABLES.values())} & tables
    return found
