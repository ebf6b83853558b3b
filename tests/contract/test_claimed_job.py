"""A claimed job looks like any other Job, whatever the backend builds it from.

The PostgreSQL backend builds claimed jobs lazily from raw rows (ClaimedJob); these tests hold
it to the same face as a job read back with job_get: fields, equality, repr, evolve, pickle.
"""

from __future__ import annotations

import datetime as dt
import pickle

import attrs
import pytest

from jobrunner import ClaimSlot, Job, JobStatus, NewJob

pytestmark = pytest.mark.anyio


async def _claim_one(backend, **new) -> Job:
    await backend.job_insert_many([NewJob(type="t", **new)])
    return await _claim_one_existing(backend)


async def _claim_one_existing(backend) -> Job:
    slot = ClaimSlot(type="t", free=1, max_attempts=3, lease=60.0)
    [job] = await backend.job_claim(worker="w1", slots=[slot], limit=1, queues=None)
    return job


async def test_claimed_job_equals_the_stored_row(backend):
    job = await _claim_one(
        backend, payload={"novel": "红楼梦", "n": [1, 2.5, None]}, user_id="u1", priority=3
    )
    stored = await backend.job_get(job.id)
    assert job == stored and stored == job
    assert (job != stored) is False
    assert isinstance(job, Job)
    assert job.status is JobStatus.RUNNING
    assert job.payload == {"novel": "红楼梦", "n": [1, 2.5, None]}
    assert (job.user_id, job.priority, job.attempts, job.max_attempts) == ("u1", 3, 1, 3)
    for name in ("run_at", "created_at", "started_at", "locked_until"):
        value = getattr(job, name)
        assert isinstance(value, dt.datetime) and value.tzinfo is not None, name
        assert value == getattr(stored, name), name
    assert job.finished_at is None and job.result is None and job.checkpoint is None


async def test_claimed_job_behaves_like_a_plain_job(backend):
    job = await _claim_one(backend, payload={"a": 1})
    assert repr(job).startswith("Job(id=")
    assert job.as_dict()["status"] == "running"
    moved = attrs.evolve(job, priority=9)
    assert moved.priority == 9 and moved.payload == {"a": 1} and moved.id == job.id
    copy = pickle.loads(pickle.dumps(job))
    assert type(copy) is Job and copy == job
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        job.priority = 5  # type: ignore[misc]
    assert job.payload is job.payload  # decoded once


async def test_claimed_job_reads_infinite_timestamps(pg_backend, pg_conn, pg_schema):
    """PostgreSQL's ±infinity cannot be a Python datetime: it reads as datetime.min/max."""
    [job_id] = await pg_backend.job_insert_many([NewJob(type="t")])
    pg_conn.execute(
        f"UPDATE \"{pg_schema}\".job SET created_at = '-infinity', run_at = '-infinity'"
    )
    job = await _claim_one_existing(pg_backend)
    assert job.id == job_id
    assert job.created_at == dt.datetime.min.replace(tzinfo=dt.UTC)
    assert job.run_at == dt.datetime.min.replace(tzinfo=dt.UTC)
