"""The live reads are shared: however many tabs poll, the database is read once per interval
(one statement for the overview's counts, three every few seconds for workers, limits and
pauses, three every half minute for schedules and budgets, one per watched job)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import pytest
from dash_support import access, client

from jobrunner import Runner
from jobrunner.dashboard import create_app

pytestmark = pytest.mark.anyio

READS = {
    "dashboard_overview",
    "worker_list",
    "limits_list",
    "paused_queues",
    "job_family",
    "schedules_list",
    "budgets_list",
    "budget_holds",
}
PLANS = ("schedules_list", "budgets_list", "budget_holds")


class Counting:
    """A backend that counts the calls of the dashboard's reads and passes everything on."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._backend, name)
        if name not in READS:
            return value

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return await value(*args, **kwargs)

        return counted


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_tabs_share_one_read_per_interval(store):
    plain = store.runner()
    counting = Counting(plain.backend)
    runner = Runner(store.url, worker=False, env={}, backend=counting, **store.settings)
    async with runner:
        job_id = await runner.enqueue("t.a")
        app = create_app(runner, access=access(), plugins=[])
        clock = Clock()
        app.state.site.snapshots.clock = clock
        async with client(app) as c:

            async def tabs(path: str, count: int = 5) -> None:
                async with anyio.create_task_group() as group:
                    for _ in range(count):
                        group.start_soon(c.get, path)

            await tabs("/overview/live")
            assert counting.calls == {
                "dashboard_overview": 1,
                "worker_list": 1,
                "limits_list": 1,
                "paused_queues": 1,
            }
            clock.now += 0.5
            await tabs("/overview/live")
            assert counting.calls["dashboard_overview"] == 1
            clock.now += 0.5
            await tabs("/overview/live")
            await tabs("/overview/cluster")
            assert counting.calls["dashboard_overview"] == 2 and counting.calls["worker_list"] == 1
            clock.now += 5
            await tabs("/overview/cluster")
            assert counting.calls["worker_list"] == 2
            await tabs(f"/jobs/{job_id}/live")
            await tabs(f"/jobs/{job_id}/live")
            assert counting.calls["job_family"] == 1
            clock.now += 1
            await tabs(f"/jobs/{job_id}/live")
            assert counting.calls["job_family"] == 2
            # Schedules and budgets: read with the page, then once per half minute.
            await tabs("/")
            await tabs("/overview/plans")
            assert [counting.calls[name] for name in PLANS] == [1, 1, 1]
            clock.now += 20
            await tabs("/overview/plans")
            assert [counting.calls[name] for name in PLANS] == [1, 1, 1]
            clock.now += 11
            await tabs("/overview/plans")
            assert [counting.calls[name] for name in PLANS] == [2, 2, 2]
