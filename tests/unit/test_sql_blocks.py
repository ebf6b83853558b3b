from __future__ import annotations

import pytest

from jobrunner._sql import load_blocks, load_migrations, parse_blocks


def test_blocks_are_parsed_by_name_without_comments():
    text = "-- a --\n-- does a\nSELECT 1\n\n-- b --\n-- does b\nSELECT\n  2\n"
    assert parse_blocks(text) == {"a": "SELECT 1", "b": "SELECT\n  2"}


def test_duplicate_block_names_are_refused():
    with pytest.raises(ValueError, match="twice"):
        parse_blocks("-- a --\nSELECT 1\n-- a --\nSELECT 2\n")


def test_postgres_queries_and_migrations_load():
    blocks = load_blocks("jobrunner._postgres", "queries.sql")
    assert {"job_claim", "job_finish_many", "job_rescue_expired"} <= set(blocks)
    versions = [v for v, _, _ in load_migrations("jobrunner._postgres")]
    assert versions == list(range(1, len(versions) + 1))
