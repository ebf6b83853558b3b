"""Screenshots of the dashboard for docs/dashboard.md: the overview, a job, a Cineqo pipeline.

Taken on a fresh site every run (each must be a real, non-trivial PNG); written to
docs/dashboard/ when missing there, or always with JOBRUNNER_UPDATE_SCREENSHOTS=1. Chinese text
needs a CJK font on the machine (Debian: fonts-wqy-zenhei) to look right.
"""

from __future__ import annotations

import os

from browser_support import enqueue, run
from cineqo_data import insert_pipeline

from jobrunner import NewJob
from jr_support import REPO

TARGET = REPO / "docs" / "dashboard"
TYPES = ["novel.split", "character.extract", "image.generate", "novel.process"]


def test_screenshots_for_the_docs(page, site, tmp_path):
    _fill(site)
    ids = run(insert_pipeline, site.store, site.media)
    update = os.environ.get("JOBRUNNER_UPDATE_SCREENSHOTS") == "1"
    shots = {
        "overview.png": ("/", True),
        "job.png": (f"/jobs/{ids['images'][0]}", True),
        "pipeline.png": (f"/jobs/{ids['parent']}", True),
    }
    for name, (path, full) in shots.items():
        page.goto(path)
        if name == "overview.png":  # the hour counted in full
            page.wait_for_function("() => !document.querySelector('#filling')", timeout=20_000)
        page.wait_for_timeout(700)  # a live refresh, images loaded
        out = tmp_path / name
        page.screenshot(path=str(out), full_page=full)
        data = out.read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 20_000, name
        if update or not (TARGET / name).exists():
            TARGET.mkdir(parents=True, exist_ok=True)
            (TARGET / name).write_bytes(data)


def _fill(site) -> None:
    """Jobs that finished over the last hour (a chart with a shape), a backlog, running jobs,
    limits, pauses (by hand and by back-pressure), schedules, budgets with usage, and two
    workers' heartbeats."""
    store = site.store
    jobs = [
        NewJob(type=TYPES[n % 4], queue="media" if n % 4 == 2 else "default") for n in range(1000)
    ]
    ids = enqueue(store, *jobs)
    for minute in range(60):
        share = ids[minute * 15 : minute * 15 + 8 + (minute * 7) % 8]
        failed = share[:1] if minute % 9 == 4 else []
        store.finish([i for i in share if i not in failed], "completed", ago=60 * minute + 5)
        if failed:
            store.finish(failed, "failed", ago=60 * minute + 5, error="RuntimeError: 502")
    store.start(ids[-12:-6], progress=0.45, message="chapter 12/30")

    async def cluster() -> None:
        from jobrunner import Runner
        from jobrunner._backend import WorkerInfo
        from jobrunner._budgets import UsageEntry

        runner: Runner
        async with store.runner() as runner:
            await runner.set_limits("image.generate", concurrency=2, rate="30/1m")
            await runner.set_limits("character.extract", per_user=1)
            await runner.pause(queues=["bulk"], reason="nightly import")
            await runner.add_schedule(
                "nightly-digest", type="novel.process", cron="0 3 * * *", tz="Asia/Shanghai"
            )
            await runner.add_schedule("cleanup", type="character.extract", every="15m")
            await runner.pause_schedule("cleanup")
            await runner.set_budget(user_id="reader-42", unit="cost_usd", amount=5)
            await runner.set_budget(
                user_id=None, unit="images", amount=200, types=["image.generate"]
            )
            await runner.backend.usage_add(
                [UsageEntry(job_id=ids[0], user_id="reader-42", amounts={"cost_usd": 5.4})]
            )
            for n in range(2):
                await runner.backend.worker_heartbeat(
                    WorkerInfo(
                        id=f"render-{n}:{4100 + n}:a",
                        host=f"render-{n}",
                        pid=4100 + n,
                        version="0.1.0",
                        job_types=tuple(TYPES),
                        concurrency=8,
                        running=3,
                        processed=4000 + 1234 * n,
                    )
                )

    run(cluster)
    # A RateLimited outcome's back-pressure: the type waits until a time.
    store.sql(
        f"INSERT INTO {{job}}_limits (type, paused_until, pause_reason)"
        f" VALUES ('novel.split', {store.ago(-90)}, 'RateLimited: 429 from the model API')"
    )
