"""Several hosts on one machine: three workers, each in a network namespace of its own,
reach PostgreSQL over their veths (the cluster listens on the bridge's address), share the
queue, and run every job exactly once. Their connections come from their own addresses,
which exist only inside their namespaces.
"""

from __future__ import annotations

import subprocess

import pytest
from rel_net import record, url_via
from rel_support import migrate, sql, statuses, wait_until, worker_env

HOSTS = ("a", "b", "c")


@pytest.mark.parametrize(
    "jobs", [pytest.param(150, id="small"), pytest.param(5000, id="long", marks=pytest.mark.slow)]
)
def test_workers_on_three_hosts_share_the_queue_over_the_network(
    lan_pg, lan_schema, hosts, site, logs, jobs
):
    local = lan_pg.url()
    remote = url_via(local, hosts.gateway)
    env = worker_env(site, remote, lan_schema, CHAOS_LEASE="5")
    migrate(worker_env(site, local, lan_schema))
    sql(local, f'CREATE TABLE "{lan_schema}".side (job_id bigint, attempt int, pid int)')
    sql(
        local,
        f'INSERT INTO "{lan_schema}".job (type, payload) '
        "SELECT 'chaos.work', json_build_object('ms', 20 + i %% 30) FROM generate_series(1, %s) i",
        [jobs],
    )
    made = [hosts.add_host(name) for name in HOSTS]
    root_addresses = subprocess.run(
        ["ip", "-o", "-4", "addr"], capture_output=True, text=True, check=True
    ).stdout
    assert all(f" {h.address}/" not in root_addresses for h in made), "addresses stay inside"
    workers = [
        host.start_worker(env, logs, f"w{host.address}", "--concurrency", "5") for host in made
    ]
    seen: set[str] = set()

    def clients() -> set[str]:
        rows = sql(
            local,
            "SELECT DISTINCT host(client_addr) FROM pg_stat_activity WHERE client_addr IS NOT NULL",
        )
        seen.update(row[0] for row in rows)
        return seen

    wait_until(lambda: clients() >= {h.address for h in made}, 60, "every host to connect")
    wait_until(
        lambda: statuses(local, lan_schema) == {"completed": jobs}, 60 + jobs / 20, "every job"
    )
    codes = [w.stop() for w in workers]
    assert codes == [0, 0, 0], [w.stderr() for w in workers]
    by_pid = dict(sql(local, f'SELECT pid, count(*) FROM "{lan_schema}".side GROUP BY pid'))
    record("hosts", hosts=len(made), jobs=jobs, jobs_by_host=sorted(by_pid.values()))
    assert set(by_pid) == {w.pid for w in workers}, "each host ran jobs"
    once = sql(local, f'SELECT count(*), count(DISTINCT job_id) FROM "{lan_schema}".side')
    assert once == [(jobs, jobs)], "every job ran exactly once"
    # (127.0.0.1 is this test's own connections: a host's loopback is its own.)
    assert seen - {"127.0.0.1"} == {h.address for h in made}, "the hosts came over their veths"
