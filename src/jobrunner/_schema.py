"""Migrations and schema checks: the policy, written once above the backends.

A backend offers a small surface (`SchemaStore`): its migration files, what it finds in the
database (`SchemaState`), and a way to apply migrations in one locked transaction. Here is
decided what to apply, what to refuse (a schema newer than this jobrunner, a table altered
by hand) and what to tell the operator. Migrations are append-only and numbered 1..n.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import attrs

from ._errors import SchemaError
from ._job import COLUMNS
from ._version import __version__


@attrs.frozen(kw_only=True)
class Migration:
    """One migration file, rendered for the configured schema and table."""

    version: int
    name: str
    sql: str

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


@attrs.frozen(kw_only=True)
class SchemaState:
    """What a backend found in the database."""

    where: str  # names the table for messages, e.g. "public.job" or a file path
    version: int | None  # the highest migration applied; None: no bookkeeping table yet
    applied_by: str | None = None  # the jobrunner version that applied it
    columns: Mapping[str, str] | None = None  # the job table's columns and types; None: none


class SchemaStore(Protocol):
    """The part of a backend that migrations and schema checks use."""

    #: Types (as the backend's catalog spells them) of the columns jobrunner relies on.
    column_types: Mapping[str, str]

    def migrations(self) -> Sequence[Migration]:
        """This backend's migrations, in order."""
        ...

    async def schema_state(self) -> SchemaState: ...

    async def schema_apply(self, plan: Callable[[set[int]], list[Migration]]) -> list[Migration]:
        """Excluding other migrators: read the applied versions, call `plan(applied)` for the
        migrations to apply, apply and record each; return those applied. A backend may
        apply them all in one transaction (SQLite) or each in its own, calling `plan` again
        before each (PostgreSQL, so that no lock is held across migrations)."""
        ...


def plan(
    applied: set[int], known: Sequence[Migration], *, applied_by: str | None
) -> list[Migration]:
    """The migrations still to apply; refuses a database migrated by a newer jobrunner."""
    newest = max(applied, default=0)
    if newest > len(known):
        by = f" (applied by jobrunner {applied_by})" if applied_by else ""
        to = f" to {applied_by} or newer" if applied_by else ""
        raise SchemaError(
            f"the database schema is at version {newest}{by}, newer than this jobrunner "
            f"{__version__} knows (up to {len(known)}); upgrade jobrunner{to} to run against it"
        )
    return [m for m in known if m.version not in applied]


def check(state: SchemaState, known: Sequence[Migration], types: Mapping[str, str]) -> None:
    """Raise SchemaError unless the schema is exactly what this version expects."""
    if state.version is None:
        raise SchemaError(f"{state.where} is not set up; run `jobrunner migrate`")
    plan({state.version}, known, applied_by=state.applied_by)
    if state.version < len(known):
        raise SchemaError(
            f"{state.where} is at schema version {state.version}, this jobrunner needs "
            f"{len(known)}; run `jobrunner migrate`"
        )
    if not state.columns:
        raise SchemaError(
            f"{state.where}: migrations are recorded but the job table is missing; restore it "
            "from a backup or start afresh"
        )
    missing = set(COLUMNS) - set(state.columns)
    if missing:
        raise SchemaError(
            f"{state.where} lacks columns {sorted(missing)}: the table was altered by hand; "
            "refusing to run rather than corrupt data"
        )
    wrong = {c: t for c, t in types.items() if state.columns.get(c, t) != t}
    if wrong:
        found = state.columns
        described = ", ".join(f"{c} is {found[c]}, not {t}" for c, t in sorted(wrong.items()))
        raise SchemaError(
            f"{state.where} was altered by hand ({described}); refusing to run rather than "
            "corrupt data"
        )


async def check_schema(store: SchemaStore) -> None:
    """Raise SchemaError unless the database holds exactly the schema this version needs."""
    check(await store.schema_state(), store.migrations(), store.column_types)


async def migrate(store: SchemaStore) -> list[str]:
    """Apply pending migrations; return their labels. Safe to run from several processes at
    once, and runs no DDL at all when the schema is current (so a role without DDL rights
    can start a worker with auto-migrate on)."""
    known = store.migrations()
    state = await store.schema_state()
    plan({state.version or 0}, known, applied_by=state.applied_by)  # refuses a newer schema
    try:
        check(state, known, store.column_types)
    except SchemaError:
        pass  # something to do (a hand-altered table is refused by the check after it)
    else:
        return []
    applied = await store.schema_apply(lambda done: plan(done, known, applied_by=None))
    await check_schema(store)
    return [m.label for m in applied]
