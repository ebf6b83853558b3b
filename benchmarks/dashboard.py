"""Benchmark the dashboard over 1,000,000 finished jobs: server time of its pages, and the
statements an open tab costs the database.

Run with the project's venv (PostgreSQL at 127.0.0.1:5432, database `bench_dashboard`, which it
drops and recreates):  .venv/bin/python -m benchmarks.dashboard [--rows 1000000] [--runs 15]

The table gets `--rows` finished jobs (8 types, 4 queues, 1,000 users, ~2% failed with an error
text, ~1% cancelled, finishing evenly over the last `--span` seconds, a week by default, ids in
time order) plus
20,000 pending and 100 running jobs, then VACUUM ANALYZE. The app runs in-process
(`create_app`, driven through httpx's ASGI transport, no server): "server time" is the
handler's whole answer, routing, reads and templates included. Each figure is the median (and
p95) of `--runs` requests. The overview's shared reads are forced stale before every timed
request, so each one reads the database (pages that show the overview's type names read its
counts too). A fresh dashboard reads its hour of finished jobs newest minutes first, a chunk of
about 20,000 jobs per read, until the hour is complete (one or two reads when jobs finish at a
few per second; dozens when a million finish in the hour, `--span 3600`): those reads are
timed first; "warm" reads after them count only the minutes not settled yet.

A few limits, pauses, schedules and budgets (with usage) are stored too, so the overview
shows every panel. Statements per tab: the dashboard connects through a proxy that counts the
statements it sends (`_wirecount`); N tabs are simulated polling as the page script does (the
overview's counts every second, its workers/limits/pauses part every 5 s, its schedules and
budgets part every 30 s; a job page's live part every second) for `--window` seconds (make it
a multiple of 30 s to weigh the slowest part fairly). Target: ≤ 200 ms per page, < 2
statements per second per tab.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _db
from benchmarks._wirecount import counting_proxy
from jobrunner.dashboard import Access, create_app

DATABASE = "bench_dashboard"
TYPES = (
    "ARRAY['novel.split','character.extract','image.generate','novel.process','diag.sleep',"
    "'email.send','report.build','thumbnail.make']"
)
PASSWORD = "bench"


def finished_rows(count: int, span: float) -> dict[str, str]:
    step = span / count
    age = f"({count} - g.i) * interval '{step} s'"  # the newest id finished last
    return {
        "type": f"({TYPES})[1 + g.i %% 8]",
        "queue": "(ARRAY['default','default','bulk','media'])[1 + (g.i / 7) %% 4]",
        "status": "CASE WHEN g.i %% 50 = 0 THEN 'failed' WHEN g.i %% 97 = 0 THEN 'cancelled'"
        " ELSE 'completed' END",
        "user_id": "'u' || (g.i %% 1000)",
        "payload": "jsonb_build_object('n', g.i)",
        "error": "CASE WHEN g.i %% 50 = 0 THEN 'RuntimeError: upstream said ' || (g.i %% 13)"
        " ELSE NULL END",
        "attempts": "1",
        "turn": "0",
        "created_at": f"now() - {age} - interval '3 s'",
        "run_at": f"now() - {age} - interval '3 s'",
        "started_at": f"now() - {age} - interval '1 s'",
        "finished_at": f"now() - {age}",
    }


def active_rows(status: str) -> dict[str, str]:
    return {
        "type": f"({TYPES})[1 + g.i %% 8]",
        "queue": "(ARRAY['default','bulk'])[1 + g.i %% 2]",
        "status": f"'{status}'",
        "user_id": "'u' || (g.i %% 1000)",
        "turn": "g.i",
        "run_at": "now() - g.i * interval '10 ms'",
        "attempts": "1" if status == "running" else "0",
        "started_at": "now()" if status == "running" else "NULL",
        "locked_by": "'bench:1:x'" if status == "running" else "NULL",
        "locked_until": "now() + interval '1 hour'" if status == "running" else "NULL",
    }


async def fill(dsn: str, rows: int, span: float) -> None:
    from jobrunner._postgres import PostgresBackend
    from jobrunner._schema import migrate

    backend = PostgresBackend(dsn)
    await backend.open()
    await migrate(backend)
    await backend.aclose()
    started = time.perf_counter()
    await _db.insert_generated_rows(dsn, "public.job", finished_rows(rows, span), rows)
    await _db.insert_generated_rows(dsn, "public.job", active_rows("pending"), 20_000)
    await _db.insert_generated_rows(dsn, "public.job", active_rows("running"), 100)
    await plans(dsn)
    await _db.vacuum_analyze(dsn)
    print(f"filled {rows:,} finished jobs in {time.perf_counter() - started:.1f}s", file=sys.stderr)


async def plans(dsn: str) -> None:
    """What the overview's other panels show: limits, pauses, schedules, budgets, usage."""
    from jobrunner import Runner
    from jobrunner._budgets import UsageEntry

    async with Runner(dsn, worker=False, env={}) as runner:
        await runner.set_limits("image.generate", concurrency=4, rate="30/1m")
        await runner.set_limits("character.extract", per_user=2)
        await runner.pause("report.build", reason="bench")
        await runner.pause(queues=["media"], reason="bench")
        for n in range(10):
            await runner.add_schedule(f"bench-{n}", type="report.build", every=f"{n + 1}h")
        await runner.add_schedule("bench-cron", type="email.send", cron="0 3 * * *")
        for n in range(20):
            await runner.set_budget(user_id=f"u{n}", unit="tokens", amount=1000)
        await runner.set_budget(user_id=None, unit="cost_usd", amount=5)
        await runner.backend.usage_add(
            [
                UsageEntry(job_id=1, user_id=f"u{n}", amounts={"tokens": 600.0 * (n % 3)})
                for n in range(1000)
            ]
        )


def client(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40100))
    return httpx.AsyncClient(
        transport=transport, base_url="http://bench.test", auth=("admin", PASSWORD)
    )


async def timed(c: httpx.AsyncClient, path: str, runs: int, fresh: Any) -> tuple[float, float]:
    """Median and p95 ms of `runs` requests, the shared reads made stale before each."""
    times = []
    for _ in range(runs):
        fresh()
        await anyio.sleep(0.05)
        start = time.perf_counter()
        answer = await c.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:500])
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


async def pages(dsn: str, runs: int) -> list[tuple[str, float, float]]:
    app = create_app(database_url=dsn, access=Access(password=PASSWORD), plugins=[], env={})
    site = app.state.site
    out = []
    async with app.router.lifespan_context(app), client(app) as c:
        await site.runner()  # opened (pool, schema check) before anything is timed
        await c.get("/jobs/1")
        reads = []
        while not reads or site.snapshots._window.filled(time.time()) < 60:
            site.snapshots.invalidate()
            start = time.perf_counter()
            assert (await c.get("/overview/live")).status_code == 200
            reads.append((time.perf_counter() - start) * 1000)
        out.append(("overview counts, first read (newest 3 minutes)", reads[0], 0.0))
        out.append(
            (
                f"overview counts, filling the hour in ({len(reads) - 1} reads, max)",
                max(reads[1:], default=0.0),
                0.0,
            )
        )
        cases = [
            ("overview page (every panel)", "/"),
            ("overview counts, warm (live poll)", "/overview/live"),
            ("overview workers, limits, pauses (poll)", "/overview/cluster"),
            ("overview schedules and budgets (poll)", "/overview/plans"),
            ("jobs page, no filter", "/jobs"),
            ("jobs page, status=failed", "/jobs?status=failed"),
            ("jobs page, type + status=failed", "/jobs?type=image.generate&status=failed"),
            ("jobs page, error contains text", "/jobs?error=said%207"),
            ("jobs page, user id", "/jobs?user=u42"),
            ("jobs page, error text nothing has (a whole window)", "/jobs?error=no%20such%20text"),
            ("jobs page, type nothing has (a whole window)", "/jobs?type=no.such.type"),
            ("jobs page, deep page (before=500000)", "/jobs?status=failed&before=500000"),
            ("a job's page", "/jobs/777777"),
            ("a job's live part", "/jobs/777777/live"),
        ]
        for name, path in cases:
            median, p95 = await timed(c, path, runs, site.snapshots.invalidate)
            out.append((name, median, p95))
    return out


async def statements(dsn: str, tabs: int, window: float, job_page: bool) -> float:
    """Statements per second the dashboard sends for `tabs` open tabs."""
    async with counting_proxy(dsn) as proxy:
        app = create_app(
            database_url=proxy.dsn, access=Access(password=PASSWORD), plugins=[], env={}
        )
        async with app.router.lifespan_context(app), client(app) as c:
            await c.get("/overview/live")  # open the runner, read the hour once
            await anyio.sleep(1.1)
            before = proxy.statements
            started = time.monotonic()

            async def tab(n: int) -> None:
                await anyio.sleep(n * 0.13)  # tabs opened at different moments
                tick = 0
                while time.monotonic() - started < window:
                    if job_page:
                        await c.get("/jobs/777777/live")
                    else:
                        await c.get("/overview/live")
                        if tick % 5 == 0:
                            await c.get("/overview/cluster")
                        if tick % 30 == 0:
                            await c.get("/overview/plans")
                    tick += 1
                    await anyio.sleep(1.0)

            async with anyio.create_task_group() as group:
                for n in range(tabs):
                    group.start_soon(tab, n)
            elapsed = time.monotonic() - started
            return (proxy.statements - before) / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--window", type=float, default=60.0, help="seconds tabs poll")
    parser.add_argument(
        "--span",
        type=float,
        default=7 * 86400.0,
        help="seconds the finished jobs are spread over (3600: all in the last hour)",
    )
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the database")
    args = parser.parse_args()
    dsn = _db.dsn(DATABASE)
    if not args.keep or not _exists(dsn):
        dsn = _db.recreate_database(DATABASE)
        await fill(dsn, args.rows, args.span)
    print(
        f"\n{args.rows:,} finished jobs over {args.span / 3600:g} h;"
        f" {_db.server_version().split(',')[0]}"
    )
    print(f"{'page':<52} {'median ms':>10} {'p95 ms':>8}")
    for name, median, p95 in await pages(dsn, args.runs):
        print(f"{name:<52} {median:>10.1f} {p95 if p95 else float('nan'):>8.1f}")
    print(f"\n{'open tabs':<52} {'statements/s':>10} {'per tab':>8}")
    for tabs, job_page in ((1, False), (5, False), (1, True)):
        rate = await statements(dsn, tabs, args.window, job_page)
        label = f"{tabs} tab{'s' if tabs > 1 else ''} on {'a job' if job_page else 'the overview'}"
        print(f"{label:<52} {rate:>10.2f} {rate / tabs:>8.2f}")
    if not args.keep:
        _db.drop_database(DATABASE)


def _exists(dsn: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(dsn) as conn:
            return bool(conn.execute("SELECT count(*) > 0 FROM job").fetchone()[0])  # type: ignore[index]
    except psycopg.Error:
        return False


if __name__ == "__main__":
    anyio.run(main)
