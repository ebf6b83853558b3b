"""A throwaway PostgreSQL cluster the reliability suite may stop, restart and break.

The shared PostgreSQL on 5432 serves other tests at the same time, so faults are injected
into a private cluster: `initdb` in a temporary directory, a free port, `fsync=off`.
Under root (initdb refuses it) the cluster runs as the `postgres` system user.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import attrs
import psycopg

PG_BIN_DIRS = [
    Path(os.environ.get("JOBRUNNER_PG_BIN", "/nonexistent")),
    *sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True),
]
PASSWORD_ROLES = ("jr_secret", "jr_worker")  # these must log in with a password


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_pg_bin() -> Path | None:
    for candidate in PG_BIN_DIRS:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@attrs.define
class Cluster:
    """A private PostgreSQL: `start()`, `stop()`, `restart()`, `url(...)`."""

    bin: Path
    root: Path
    port: int = attrs.field(factory=free_port)
    _as_postgres: bool = attrs.field(default=False, init=False)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, user: str = "postgres", password: str | None = None, db: str = "postgres") -> str:
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{db}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=check)

    def init(self) -> None:
        self._as_postgres = os.geteuid() == 0
        self.root.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
        hba = [f"host all {role} 127.0.0.1/32 scram-sha-256" for role in PASSWORD_ROLES]
        hba += ["host all all 127.0.0.1/32 trust", "local all all trust"]
        (self.data / "pg_hba.conf").write_text("\n".join(hba) + "\n")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\nfsync = off\n"
                "synchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n"
            )
        if self._as_postgres:
            for path in (self.data / "pg_hba.conf", self.data / "postgresql.conf"):
                shutil.chown(path, "postgres", "postgres")

    def start(self) -> None:
        log = self.root / "server.log"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(log), "-w", "-t", "60", "start")
        self.wait_ready()

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; `fast` ends every session at once, as a restart would."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url(), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def destroy(self) -> None:
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def create_cluster() -> Cluster | None:
    """A started private cluster, or None when PostgreSQL's server binaries are missing."""
    pg_bin = find_pg_bin()
    if pg_bin is None:
        return None
    root = Path(tempfile.mkdtemp(prefix="jr-reliability-pg-"))
    cluster = Cluster(bin=pg_bin, root=root)
    cluster.init()
    cluster.start()
    return cluster
