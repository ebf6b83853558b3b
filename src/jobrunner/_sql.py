"""Load SQL kept in `.sql` files as named blocks.

A block starts with a line `-- name --`, then a one-line comment saying what it does,
then the statement(s). Parameters use `%(name)s`; identifiers that are configurable
appear as `{job}`-style placeholders, filled in by each backend.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_HEADER = re.compile(r"^-- ([a-z_0-9]+) --$", re.MULTILINE)


def parse_blocks(text: str) -> dict[str, str]:
    """Split the text of a `.sql` file into {name: sql}."""
    parts = _HEADER.split(text)
    blocks: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in blocks:
            raise ValueError(f"SQL block {name!r} is defined twice")
        lines = [line for line in body.strip().splitlines() if not line.startswith("--")]
        blocks[name] = "\n".join(lines).strip()
    return blocks


@cache
def load_blocks(package: str, filename: str) -> dict[str, str]:
    """The named blocks of `filename` inside `package`, parsed once."""
    return parse_blocks(resources.files(package).joinpath(filename).read_text("utf-8"))


def load_migrations(package: str) -> list[tuple[int, str, str]]:
    """The migrations of `package`'s `migrations/` folder as (version, name, sql), in order."""
    found = []
    for entry in resources.files(package).joinpath("migrations").iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort()
    versions = [version for version, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations of {package} are not numbered 1..n: {versions}")
    return found


#: The job table's companions: tables (schema-qualified on PostgreSQL), then the names of
#: indexes, triggers and functions, each derived from the configured table name.
COMPANION_TABLES = {
    "migrations": "_migrations",
    "workers": "_workers",
    "wakeup": "_wakeup",
    "limits": "_limits",
    "queue_pauses": "_queue_pauses",
    "turns": "_turns",
    "usage": "_usage",
    "budgets": "_budgets",
    "schedules": "_schedules",
    "over_budget": "_over_budget",
}
COMPANION_OBJECTS = {
    "claim_index": "_claim_idx",
    "lease_index": "_lease_idx",
    "user_index": "_user_status_idx",
    "finished_index": "_finished_idx",
    "parent_index": "_parent_idx",
    "notify_function": "_notify",
    "notify_trigger": "_notify",
    "fair_claim_index": "_claim_turn_idx",
    "turn_function": "_turn",
    "turn_trigger": "_turn",
    "limits_notify_function": "_limits_notify",
    "limits_notify_trigger": "_limits_notify",
    "limits_change_trigger": "_limits_change",
    "queue_pauses_notify_trigger": "_qpause_notify",
    "unique_key_index": "_unique_key_idx",
    "budgets_notify_trigger": "_budget_notify",
    "budgets_change_trigger": "_budget_change",
    "budgets_insert_trigger": "_budget_insert",
    "schedules_notify_trigger": "_sched_notify",
    "schedules_notify_function": "_sched_notify",
    "schedules_change_trigger": "_sched_change",
}


#: PostgreSQL cuts identifiers at 63 bytes: the table name leaves room for the longest suffix.
MAX_TABLE_BYTES = 63 - max(
    len(s) for s in (*COMPANION_TABLES.values(), *COMPANION_OBJECTS.values())
)


def table_names(table: str) -> tuple[dict[str, str], dict[str, str]]:
    """({placeholder: table name}, {placeholder: index/trigger/function name}) for `table`;
    the job table itself is `{job}`."""
    tables = {"job": table} | {key: table + suffix for key, suffix in COMPANION_TABLES.items()}
    objects = {key: table + suffix for key, suffix in COMPANION_OBJECTS.items()}
    return tables, objects
