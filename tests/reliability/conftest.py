"""Fixtures of the reliability suite: a private PostgreSQL to break, the suite's plugins.

Tests marked `slow` (the full chaos, outage and restart profiles) run only with
JOBRUNNER_FULL=1 (or `scripts/chaos`); the default profile is sized for CI.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from rel_cluster import Cluster, create_cluster
from rel_net import Lan, lan_cluster, need_netns
from rel_support import FULL, install_plugins, sql


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if FULL:
        return
    skip = pytest.mark.skip(reason="full reliability profile: set JOBRUNNER_FULL=1")
    for item in items:
        if "slow" in item.keywords and str(item.path).startswith(str(Path(__file__).parent)):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """A private PostgreSQL cluster that tests may stop and restart (never the shared one)."""
    made = create_cluster()
    if made is None:
        message = "PostgreSQL server binaries (initdb, pg_ctl) not found"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message + " (CI=true: failing, not skipping)")
        pytest.skip(message)
    try:
        yield made
    finally:
        made.destroy()


@pytest.fixture
def cluster_schema(cluster: Cluster) -> Iterator[str]:
    """A fresh schema in the private cluster (started again if a test left it stopped)."""
    if not cluster.running():
        cluster.start()
    name = f"r_{uuid.uuid4().hex[:10]}"
    yield name
    if not cluster.running():
        cluster.start()
    sql(cluster.url(), f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the suite's plugins as installed distributions."""
    return install_plugins(tmp_path_factory.mktemp("site"))


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    path = tmp_path / "logs"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def lan() -> Iterator[Lan]:
    """A bridge in the root namespace for the hosts of one test at a time (see rel_net)."""
    need_netns()
    made = Lan.create()
    try:
        yield made
    finally:
        made.destroy()


@pytest.fixture(scope="session")
def lan_pg(lan: Lan) -> Iterator[Cluster]:
    """A private PostgreSQL listening on 127.0.0.1 and on the bridge's address."""
    made = lan_cluster(lan)
    try:
        yield made
    finally:
        made.destroy()


@pytest.fixture
def lan_schema(lan_pg: Cluster) -> Iterator[str]:
    if not lan_pg.running():
        lan_pg.start()
    name = f"n_{uuid.uuid4().hex[:10]}"
    yield name
    sql(lan_pg.url(), f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def hosts(lan: Lan) -> Iterator[Lan]:
    """The LAN, whose hosts (`hosts.add_host(name)`) are removed after the test, pass or fail."""
    try:
        yield lan
    finally:
        lan.remove_hosts()
