"""Fixtures for the Cineqo plugin's tests: local stand-ins for external services."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from standins.fal_server import FalStandIn, fal_stand_in
from standins.s3 import MotoS3, moto_s3


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoS3]:
    """One moto S3 server for the session; tests isolate themselves with fresh buckets."""
    with moto_s3() as server:
        yield server


@pytest.fixture
def r2_env(moto_server: MotoS3) -> dict[str, str]:
    """R2_* variables for a fresh, empty bucket on the moto server (fake credentials)."""
    return moto_server.r2_env(moto_server.create_bucket())


@pytest.fixture
def fal_server() -> Iterator[FalStandIn]:
    """A fresh fal.ai queue stand-in; script it through ``fal_server.script``."""
    with fal_stand_in() as server:
        yield server
