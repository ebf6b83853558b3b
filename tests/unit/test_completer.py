"""The completer without a database: batches, parallel writes while behind, outages, drain."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from jobrunner._backend import Outcome
from jobrunner._completer import Completer
from jobrunner._errors import DatabaseError
from jobrunner._outage import Outage
from jobrunner._status import OutcomeKind

pytestmark = pytest.mark.anyio


class SlowStore:
    """Writes take until `release` is set; `fail` makes the next writes fail transiently."""

    def __init__(self) -> None:
        self.release = anyio.Event()
        self.in_flight = 0
        self.most_in_flight = 0
        self.batches: list[list[int]] = []
        self.fail = 0

    async def job_finish_many(self, *, worker: str, outcomes: Any) -> set[int]:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.release.wait()
            if self.fail:
                self.fail -= 1
                raise DatabaseError("connection refused")
            self.batches.append([o.id for o in outcomes])
            return {o.id for o in outcomes}
        finally:
            self.in_flight -= 1


def outcomes(first: int, count: int) -> list[Outcome]:
    ids = range(first, first + count)
    return [Outcome(id=i, attempt=1, kind=OutcomeKind.COMPLETED) for i in ids]


def completer(store: SlowStore, **options: Any) -> Completer:
    outage = Outage(first_delay=0.01, max_delay=0.01)
    return Completer(backend=store, worker_id="w", outage=outage, **options)  # type: ignore[arg-type]


async def test_one_batch_at_a_time_until_a_full_one_waits_then_up_to_the_writers():
    store = SlowStore()
    done = completer(store, batch_size=10, interval=0.001, writers=3)
    async with anyio.create_task_group() as group:
        group.start_soon(done.run)
        for o in outcomes(1, 5):
            done.add(o)
        await anyio.sleep(0.02)
        assert store.in_flight == 1  # a partial batch waits for the write in flight
        for o in outcomes(6, 40):
            done.add(o)
        await anyio.sleep(0.02)
        assert store.in_flight == 3
        assert len(done) == 45 and {o.id for o in done.pending} == set(range(1, 46))
        store.release.set()
        with anyio.fail_after(2):
            while len(done):
                await anyio.sleep(0.005)
        group.cancel_scope.cancel()
    assert sorted(i for batch in store.batches for i in batch) == list(range(1, 46))
    assert max(map(len, store.batches)) == 10
    assert store.most_in_flight == 3


async def test_a_failed_batch_comes_back_and_is_written_one_at_a_time_until_it_works():
    store = SlowStore()
    store.fail = 2
    store.release.set()
    done = completer(store, batch_size=10, interval=0.001, writers=3)
    async with anyio.create_task_group() as group:
        group.start_soon(done.run)
        for o in outcomes(1, 30):
            done.add(o)
        with anyio.fail_after(2):
            while len(done):
                await anyio.sleep(0.005)
        group.cancel_scope.cancel()
    assert sorted(i for batch in store.batches for i in batch) == list(range(1, 31))
    assert done.outage.failures == 0  # recovered


async def test_drain_writes_everything_left_in_parallel_batches():
    store = SlowStore()
    store.release.set()
    done = completer(store, batch_size=10, writers=2)
    for o in outcomes(1, 35):
        done.add(o)
    await done.drain(anyio.current_time() + 2)
    assert not done.pending
    assert sorted(map(len, store.batches)) == [5, 10, 10, 10]


async def test_drain_gives_up_at_its_deadline_and_keeps_what_is_unwritten():
    store = SlowStore()
    store.fail = 1000
    store.release.set()
    done = completer(store, batch_size=10)
    for o in outcomes(1, 15):
        done.add(o)
    with anyio.fail_after(2):
        await done.drain(anyio.current_time() + 0.1)
    assert len(done) == 15


async def test_an_idle_worker_writes_an_outcome_at_once_a_busy_one_waits_for_company():
    store = SlowStore()
    store.release.set()
    busy = False
    done = completer(store, batch_size=10, interval=5.0)
    done.busy = lambda: busy
    async with anyio.create_task_group() as group:
        group.start_soon(done.run)
        done.add(outcomes(1, 1)[0])
        with anyio.fail_after(1):
            while len(done):
                await anyio.sleep(0.001)
        busy = True
        done.add(outcomes(2, 1)[0])
        await anyio.sleep(0.05)
        assert len(done) == 1  # waits up to the interval for others to join its batch
        group.cancel_scope.cancel()
