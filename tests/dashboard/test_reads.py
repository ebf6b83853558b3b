"""The dashboard's block of the backend protocol, on both backends: overview counts, pages of
jobs within a window of ids, counts and ids for bulk actions, families, and bulk changes."""

from __future__ import annotations

import time

import pytest

from jobrunner import JobStatus, NewJob
from jobrunner._browse import JobQuery

pytestmark = pytest.mark.anyio


async def enqueue(store, count: int, **fields) -> list[int]:
    async with store.runner() as runner:
        return await runner.enqueue_many(
            [NewJob(**{"type": "t.a", **fields}) for _ in range(count)]
        )


async def test_overview_counts_active_jobs_and_finished_ones_in_the_ranges_asked(store):
    pending = await enqueue(store, 3, queue="q1")
    running = await enqueue(store, 2, type="t.b")
    done = await enqueue(store, 4)
    old = await enqueue(store, 2)
    store.start(running)
    store.finish(done[:3], "completed", ago=5)
    store.finish(done[3:], "failed", ago=5, error="boom")
    store.finish(old, "completed", ago=2 * 3600)
    store.sql("UPDATE {job} SET run_at = " + store.ago(30) + " WHERE id = ?", pending[0])
    now = time.time()
    async with store.runner() as runner:
        recent = await runner.backend.dashboard_overview(since=now - 60)
        both = await runner.backend.dashboard_overview(
            since=now - 60, older=(now - 3 * 3600, now - 3600)
        )
        none = await runner.backend.dashboard_overview(since=now + 3600)
    active = {(a.type, a.queue, a.status): a for a in recent.active}
    assert {k: a.count for k, a in active.items()} == {
        ("t.a", "q1", JobStatus.PENDING): 3,
        ("t.b", "default", JobStatus.RUNNING): 2,
    }
    assert 29 < active[("t.a", "q1", JobStatus.PENDING)].oldest_pending_seconds < 120
    finished = {(f.type, f.status): f.count for f in recent.finished}
    assert finished == {("t.a", JobStatus.COMPLETED): 3, ("t.a", JobStatus.FAILED): 1}
    assert sum(f.count for f in both.finished) == 6
    assert all(f.minute % 60 == 0 for f in both.finished)
    assert both.older_from == now - 3 * 3600 and recent.older_from is None
    assert none.finished == () and len(none.active) == 2
    assert abs(recent.now - now) < 60


async def test_older_minutes_are_read_newest_first_up_to_the_budget(store):
    ids = await enqueue(store, 9)
    for n, job_id in enumerate(ids):  # one job per minute, 10 to 18 minutes ago
        store.finish([job_id], "completed", ago=600 + 60 * n + 1)
    now = time.time() // 60 * 60 + 30
    async with store.runner() as runner:
        read = runner.backend.dashboard_overview
        some = await read(since=now, older=(now - 3600, now - 300), budget=3)
        tiny = await read(since=now, older=(now - 3600, now - 300), budget=0)
        all_ = await read(since=now, older=(now - 3600, now - 300), budget=100)
    # The budget's worth of the newest older minutes, whole minutes: where the 4th job is.
    assert sum(f.count for f in some.finished) == 3
    assert some.older_from is not None and now - 3600 < some.older_from < now - 300
    assert all(f.minute >= some.older_from for f in some.finished)
    # No budget: up to the newest job's minute (at least one minute on, so reads progress).
    assert sum(f.count for f in tiny.finished) == 0 and tiny.older_from <= now - 360
    assert sum(f.count for f in all_.finished) == 9 and all_.older_from == now - 3600


async def test_pages_run_newest_first_and_follow_on(store):
    ids = await enqueue(store, 7)
    async with store.runner() as runner:
        first = await runner.backend.job_browse(JobQuery(limit=3))
        second = await runner.backend.job_browse(JobQuery(limit=3, before_id=first.next_before_id))
        third = await runner.backend.job_browse(JobQuery(limit=3, before_id=second.next_before_id))
    assert [j.id for j in first.jobs] == ids[::-1][:3]
    assert [j.id for j in second.jobs] == ids[::-1][3:6]
    assert [j.id for j in third.jobs] == ids[:1]
    assert third.next_before_id is None
    assert first.jobs[0].payload == {}  # the list leaves the payload out


async def test_a_page_reads_at_most_its_window_and_says_where_it_stopped(store):
    ids = await enqueue(store, 30)
    store.finish(ids[:2], "failed", error="rare")  # the two oldest only
    query = JobQuery(statuses=(JobStatus.FAILED,), limit=5, window=10)
    async with store.runner() as runner:
        pages = [await runner.backend.job_browse(query)]
        while pages[-1].next_before_id is not None:
            query = JobQuery(
                statuses=(JobStatus.FAILED,), limit=5, window=10, before_id=pages[-1].next_before_id
            )
            pages.append(await runner.backend.job_browse(query))
    assert [len(p.jobs) for p in pages] == [0, 0, 2]
    assert pages[0].searched_to_id == ids[-1] + 1 - 10
    assert [j.id for j in pages[-1].jobs] == [ids[1], ids[0]]


async def test_filters_each_narrow_the_list(store):
    async with store.runner() as runner:
        parent = await runner.enqueue("t.parent")
        child = await runner.enqueue("t.child", parent_id=parent, user_id="u7", queue="media")
        other = await runner.enqueue("t.child", user_id="u8")
    store.finish([other], "failed", error="Upstream TIMEOUT after 30s")

    async def ids(**filters) -> list[int]:
        async with store.runner() as runner:
            page = await runner.backend.job_browse(JobQuery(**filters))
        return [j.id for j in page.jobs]

    assert await ids(type="t.child") == [other, child]
    assert await ids(queue="media") == [child]
    assert await ids(user_id="u8") == [other]
    assert await ids(parent_id=parent) == [child]
    assert await ids(error_contains="timeout") == [other]
    assert await ids(statuses=(JobStatus.PENDING,)) == [child, parent]
    assert await ids(type="t.child", statuses=(JobStatus.FAILED,)) == [other]


async def test_bulk_counts_and_ids_stop_at_max_id_and_cap(store):
    ids = await enqueue(store, 12)
    async with store.runner() as runner:
        backend = runner.backend
        upto = JobQuery(max_id=ids[9])
        assert await backend.job_count_matching(upto, cap=100) == 10
        assert await backend.job_count_matching(upto, cap=4) == 5  # counts one past the cap
        assert await backend.job_ids_matching(JobQuery(max_id=ids[9], limit=3)) == ids[9:6:-1]


async def test_family_holds_ancestors_and_descendants(store):
    async with store.runner() as runner:
        root = await runner.enqueue("t.root")
        mid = await runner.enqueue("t.mid", parent_id=root)
        leaf = await runner.enqueue("t.leaf", parent_id=mid)
        sibling = await runner.enqueue("t.sib", parent_id=root)
        await runner.enqueue("t.stranger")
        family = await runner.backend.job_family(mid)
    assert [j.id for j in family] == [root, mid, leaf]
    async with store.runner() as runner:
        assert {j.id for j in await runner.backend.job_family(root)} == {root, mid, leaf, sibling}


async def test_bulk_changes_are_fenced_by_status(store):
    ids = await enqueue(store, 5)
    pending, running, failed, done, later = ids
    store.start([running])
    store.finish([failed], "failed", error="x")
    store.finish([done], "completed")
    store.sql("UPDATE {job} SET run_at = " + store.ago(-3600) + " WHERE id = ?", later)
    async with store.runner() as runner:
        backend = runner.backend
        assert await backend.job_run_now_many(ids) == [pending, later]
        cancelled = await backend.job_cancel_many(ids)
        assert [(j.id, j.status, j.cancel_requested) for j in cancelled] == [
            (pending, JobStatus.CANCELLED, False),
            (running, JobStatus.RUNNING, True),
            (later, JobStatus.CANCELLED, False),
        ]
        assert await backend.job_retry_many([failed, running]) == [failed]
        assert await backend.job_delete_many(ids) == [pending, done, later]
        assert {j.id: j.status for j in await runner.list_jobs()} == {
            running: JobStatus.RUNNING,
            failed: JobStatus.PENDING,
        }
