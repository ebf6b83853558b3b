#!/usr/bin/env python
"""Regenerate the reference parts of docs/ from the code, so they cannot drift.

- docs/configuration.md: the settings table, from `jobrunner._settings.reference_table()`;
- docs/schema.md: the PostgreSQL schema, from `jobrunner/_postgres/schema.sql` rendered for
  the default table `public.job`.

Each generated part sits between a BEGIN and an END marker comment; the text around them is
written by hand and left alone. Usage: `scripts/gen_config_docs.py` rewrites the files,
`scripts/gen_config_docs.py --check` exits 1 when one of them is stale (tests/unit/test_docs.py
runs the same check).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"


def _begin(name: str) -> str:
    return f"<!-- BEGIN GENERATED {name}: edit scripts/gen_config_docs.py, not this block -->"


def _end(name: str) -> str:
    return f"<!-- END GENERATED {name} -->"


def _default(text: str) -> str:
    return f"`{text}`" if text else "unset"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def settings_table() -> str:
    """The Markdown table of every setting: flag, environment variable, default, meaning."""
    from jobrunner._settings import reference_table

    lines = [
        "| Flag | Environment variable | Default | What it sets |",
        "| --- | --- | --- | --- |",
    ]
    for flag, env, default, help_text in reference_table():
        shown = f"`{flag}`"
        if default in {"true", "false"}:
            shown += f" / `--no-{flag[2:]}`"
        env_cell = f"`{env}`" if env else ""
        lines.append(f"| {shown} | {env_cell} | {_default(default)} | {_cell(help_text)} |")
    return "\n".join(lines)


def schema_sql() -> str:
    """schema.sql rendered for the default schema and table (`public.job`)."""
    from jobrunner._postgres import PostgresBackend
    from jobrunner._postgres._backend import _render

    text = resources.files("jobrunner._postgres").joinpath("schema.sql").read_text("utf-8")
    backend = PostgresBackend("postgresql://localhost/jobs")  # names only; never connects
    lines = _render(text, backend._names).strip().splitlines()
    while lines and lines[0].startswith("--"):
        lines.pop(0)  # the file's own header talks about placeholders, gone once rendered
    header = "-- src/jobrunner/_postgres/schema.sql for the default table public.job"
    return "```sql\n" + header + "\n" + "\n".join(lines) + "\n```"


# file name in docs/ → (block name, generator)
GENERATED: dict[str, tuple[str, Callable[[], str]]] = {
    "configuration.md": ("settings", settings_table),
    "schema.md": ("schema", schema_sql),
}


def render(text: str, name: str, body: str) -> str:
    """`text` with the block `name` replaced by `body`; ValueError when a marker is missing."""
    begin, end = _begin(name), _end(name)
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise ValueError(f"markers for the generated block {name!r} are missing:\n{begin}\n{end}")
    return text[: start + len(begin)] + "\n" + body + "\n" + text[stop:]


def expected(path: Path) -> str:
    """What `path` (a file named in GENERATED) should contain."""
    name, generate = GENERATED[path.name]
    return render(path.read_text("utf-8"), name, generate())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    args = parser.parse_args(argv)
    stale = []
    for filename in GENERATED:
        path = DOCS / filename
        want = expected(path)
        if path.read_text("utf-8") == want:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(want, "utf-8")
            print(f"rewrote {path.relative_to(REPO)}")
    if args.check and stale:
        names = ", ".join(str(p.relative_to(REPO)) for p in stale)
        print(f"stale: {names}; run scripts/gen_config_docs.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
