"""Several hosts on one machine: network namespaces on a bridge, faked clocks, measurements.

    lan = Lan.create()                   # a bridge with 10.a.b.1/24, in the root namespace
    host = lan.add_host("a")             # a namespace with 10.a.b.N on a veth to the bridge
    host.run([...])                      # a command inside it
    host.cut(); host.restore()           # its link down (a partition), and up again
    lan.destroy()                        # every namespace, veth and the bridge

Names carry this process's pid and a random tag, so parallel runs never collide and a run
that was killed is swept by the next (`sweep()`). Addresses are only those of the bridge
and the veths created here. A worker on a host reaches the private PostgreSQL cluster, which
listens on the bridge's address, through the veth.

A worker with a shifted clock runs under libfaketime (Debian's `faketime` package), preloaded
into that one process: its wall clock is off, its monotonic clock is not, and PostgreSQL's
`now()` is unaffected.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
from rel_cluster import Cluster, create_cluster
from rel_support import WorkerProc

from jr_support import JOBRUNNER

CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
ALIAS = "jobrunner-test pid="
PREFIX = "jobrunner-test-"  # of every namespace made here
FAKETIME_LIBS = [
    *Path("/usr/lib").glob("*/faketime/libfaketime.so.1"),
    Path("/usr/lib/faketime/libfaketime.so.1"),
]


def missing(message: str) -> None:
    """Skip, or fail under CI=true (where a missing tool is a broken environment)."""
    if CI:
        pytest.fail(message + " (CI=true: failing, not skipping)")
    pytest.skip(message)


def record(scenario: str, **numbers: Any) -> None:
    """Print a scenario's measurements (seen with `pytest -s`) and, when JOBRUNNER_REL_RESULTS
    names a file, append them to it as one JSON line."""
    line = json.dumps({"scenario": scenario, **numbers}, default=str)
    print(f"\nRESULT {line}")
    target = os.environ.get("JOBRUNNER_REL_RESULTS")
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(line + "\n")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check)


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def need_netns() -> None:
    if shutil.which("ip") is None:
        missing("`ip` (iproute2) not found: network namespaces need it")
    if os.geteuid() != 0:
        missing("network namespaces need root")


def sweep() -> None:
    """Remove namespaces and bridges left by runs whose process is gone (killed mid-test)."""
    for line in _ip("netns", "list").stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        found = re.match(re.escape(PREFIX) + r"(\d+)-", name)
        if found and not _alive(int(found[1])):
            _ip("netns", "del", name, check=False)
    for line in _ip("-o", "link", "show", "type", "bridge").stdout.splitlines():
        found = re.search(r"^\d+: ([^:@]+).*alias " + re.escape(ALIAS) + r"(\d+)", line)
        if found and not _alive(int(found[2])):
            _ip("link", "del", found[1], check=False)


def _free_subnet() -> str:
    used = _ip("-o", "-4", "addr").stdout
    for _ in range(100):
        prefix = f"10.{random.randint(200, 249)}.{random.randint(0, 255)}"
        if f" {prefix}." not in used:
            return prefix
    raise RuntimeError("no free 10.x.y.0/24 subnet")


@attrs.define(eq=False)
class Host:
    """A network namespace with one veth on the bridge."""

    netns: str
    address: str
    outside: str  # its veth's end on the bridge
    device: str = "eth0"  # its end of the veth, inside the namespace
    workers: list[WorkerProc] = attrs.field(factory=list)  # killed when the host goes

    def run(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.netns, *cmd],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )

    def cut(self) -> None:
        """Take the host's link down: nothing leaves or reaches it (no reset is sent)."""
        self.run("ip", "link", "set", self.device, "down")

    def restore(self) -> None:
        self.run("ip", "link", "set", self.device, "up")

    def start_worker(
        self,
        env: Mapping[str, str],
        logs: Path,
        name: str,
        *args: str,
        plugin: str = "relchaos",
        clock: str | None = None,
    ) -> WorkerProc:
        """`jobrunner run` inside this host, its clock shifted by `clock` (e.g. "+10m")."""
        env = dict(env)
        if clock is not None:
            env.update(
                LD_PRELOAD=str(faketime_lib()),
                FAKETIME=clock,
                FAKETIME_DONT_FAKE_MONOTONIC="1",
            )
        logs.mkdir(parents=True, exist_ok=True)
        out, err = logs / f"{name}.out", logs / f"{name}.err"
        cmd = ["ip", "netns", "exec", self.netns, JOBRUNNER, "run", "--plugin", plugin, *args]
        with out.open("wb") as fo, err.open("wb") as fe:
            proc = subprocess.Popen(cmd, env=env, stdout=fo, stderr=fe)
        worker = WorkerProc(proc=proc, out=out, err=err)
        self.workers.append(worker)
        return worker


@attrs.define(eq=False)
class Lan:
    """A bridge in the root namespace and the hosts on it."""

    tag: str
    subnet: str  # "10.a.b"
    hosts: list[Host] = attrs.field(factory=list)
    made: int = 0  # hosts made so far: names are never reused (a deleted one may linger)

    @property
    def bridge(self) -> str:
        return f"jrb{self.tag}"

    @property
    def gateway(self) -> str:
        """The bridge's address: where the root namespace (PostgreSQL) is reached."""
        return f"{self.subnet}.1"

    @classmethod
    def create(cls) -> Lan:
        sweep()
        lan = cls(tag=f"{random.getrandbits(24):06x}", subnet=_free_subnet())
        _ip("link", "add", lan.bridge, "type", "bridge")
        _ip("link", "set", "dev", lan.bridge, "alias", f"{ALIAS}{os.getpid()}")
        _ip("addr", "add", f"{lan.gateway}/24", "dev", lan.bridge)
        _ip("link", "set", lan.bridge, "up")
        return lan

    def add_host(self, name: str) -> Host:
        self.made += 1
        n = self.made
        if n > 200:
            raise RuntimeError("a LAN holds 200 hosts at most")
        netns = f"{PREFIX}{os.getpid()}-{self.tag}-{name}{n}"
        outside, inside = f"jrv{self.tag}{n:x}", f"jrp{self.tag}{n:x}"
        host = Host(netns=netns, address=f"{self.subnet}.{10 + n}", outside=outside)
        _ip("netns", "add", netns)
        self.hosts.append(host)
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", netns)
        _ip("link", "set", outside, "master", self.bridge)
        _ip("link", "set", outside, "up")
        host.run("ip", "link", "set", inside, "name", host.device)
        host.run("ip", "addr", "add", f"{host.address}/24", "dev", host.device)
        host.run("ip", "link", "set", host.device, "up")
        host.run("ip", "link", "set", "lo", "up")
        return host

    def remove_hosts(self) -> None:
        """Delete every host's namespace (its veth pair goes with it)."""
        for host in self.hosts:
            for worker in host.workers:
                if worker.alive():  # a test that failed half-way
                    worker.kill()
            _ip("link", "del", host.outside, check=False)  # and its peer in the namespace
            _ip("netns", "del", host.netns, check=False)
        self.hosts.clear()

    def destroy(self) -> None:
        self.remove_hosts()
        _ip("link", "del", self.bridge, check=False)


def lan_cluster(lan: Lan) -> Cluster:
    """A private PostgreSQL that also listens on the bridge's address and trusts its hosts."""
    made = create_cluster()
    if made is None:
        missing("PostgreSQL server binaries (initdb, pg_ctl) not found")
    assert made is not None
    made.stop()
    with (made.data / "postgresql.conf").open("a") as conf:
        conf.write(f"listen_addresses = '127.0.0.1,{lan.gateway}'\n")
    hba = made.data / "pg_hba.conf"
    hba.write_text(hba.read_text() + f"host all all {lan.subnet}.0/24 trust\n")
    made.start()
    return made


def url_via(url: str, address: str) -> str:
    """`url` with its host (127.0.0.1) replaced by `address`."""
    return url.replace("@127.0.0.1:", f"@{address}:", 1)


def url_via_socket(cluster: Cluster, db: str = "postgres") -> str:
    """The cluster through its Unix socket, which no network namespace cuts off."""
    return f"postgresql:///{db}?host={cluster.root}&port={cluster.port}&user=postgres"


def faketime_lib() -> Path:
    for path in FAKETIME_LIBS:
        if path.exists():
            return path
    missing("libfaketime not found (Debian's `faketime` package; scripts/test installs it)")
    raise AssertionError("unreachable")


def db_seconds(url: str, query: str, params: Sequence[Any] | None = None) -> float | None:
    """One number of seconds from the database (its clock is the one that counts)."""
    from rel_support import sql

    [(value,)] = sql(url, query, params)
    return None if value is None else float(value)
