"""The worker's decisions, without a database: settling outcomes, waking the producer, claim
sizing and hand-back. The backends here are real objects that are never opened."""

from __future__ import annotations

import math
from pathlib import Path

import anyio
import pytest

from jobrunner import (
    Job,
    JobrunnerError,
    LeaseLost,
    OutcomeKind,
    PayloadError,
    PermanentFailure,
    Plugin,
    Retry,
    RetryPolicy,
    WaitForChildren,
)
from jobrunner._attempt import Attempt, SettlePolicy, StopReason, settle
from jobrunner._backend import Outcome
from jobrunner._context import JobContext, JobServices
from jobrunner._execute import run_attempt
from jobrunner._ledger import Ledger
from jobrunner._plugin import Handler
from jobrunner._settings import Settings
from jobrunner._sqlite import SQLiteBackend
from jobrunner._status import FINAL_OUTCOMES, RUNNABLE_AGAIN, JobStatus
from jobrunner._worker import Worker

POLICY = SettlePolicy(max_result_bytes=100, max_memory=512 << 20, rand=lambda: 0.0)


async def _noop(ctx: JobContext) -> None:
    return None


def handler(type: str = "t", **options) -> Handler:
    return Handler(type=type, func=options.pop("func", _noop), **options)


def attempt(job_id: int = 1, *, attempts: int = 1, max_attempts: int = 3, **options) -> Attempt:
    h = handler(max_attempts=max_attempts, **options)
    job = Job(id=job_id, type=h.type, attempts=attempts, max_attempts=max_attempts)
    services = JobServices(worker_id="w", backend=None, enqueue_many=None)  # type: ignore[arg-type]
    return Attempt(job=job, handler=h, ctx=JobContext(job=job, services=services))


# -- outcome kinds ---------------------------------------------------------------------------


def test_outcome_kinds_say_the_status_they_lead_to_and_whether_the_attempt_counts():
    assert {k.status for k in FINAL_OUTCOMES} == {
        JobStatus.COMPLETED,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
    }
    assert {
        OutcomeKind.RETRIED,
        OutcomeKind.RELEASED,
        OutcomeKind.WAITING,
        OutcomeKind.RATE_LIMITED,
    } == RUNNABLE_AGAIN
    assert {k for k in OutcomeKind if k.refunds_attempt} == {
        OutcomeKind.RELEASED,
        OutcomeKind.WAITING,
        OutcomeKind.RATE_LIMITED,  # the provider's limit, not the job's fault
    }
    assert not OutcomeKind.RETRIED.refunds_attempt  # a failure counts, even when retried


# -- settle ------------------------------------------------------------------------------------


def test_a_handler_that_returns_nothing_completes():
    assert settle(attempt(), POLICY) == Outcome(id=1, attempt=1, kind=OutcomeKind.COMPLETED)


def test_a_result_is_stored_as_json_or_fails_the_job_for_good_when_too_large():
    done = settle(attempt(), POLICY, result={"n": 1})
    assert (done.kind, done.result_json) == (OutcomeKind.COMPLETED, '{"n":1}')
    big = settle(attempt(), POLICY, result="x" * 200)
    assert big.kind is OutcomeKind.FAILED  # retrying would return the same result
    assert "over the limit of 100 bytes" in big.error


def test_a_failure_is_retried_with_the_handlers_backoff_while_attempts_are_left():
    a = attempt(attempts=2, retry=RetryPolicy(base=4, factor=3, jitter=0.5))
    out = settle(a, POLICY, failure=ValueError("boom"))
    assert (out.kind, out.delay, out.error) == (OutcomeKind.RETRIED, 12.0, "ValueError: boom")
    assert a.failure is not None  # unexpected: its traceback goes to the log
    last = settle(attempt(attempts=3), POLICY, failure=ValueError("boom"))
    assert last.kind is OutcomeKind.FAILED


def test_retry_asks_for_its_own_delay_and_nonsense_delays_become_zero():
    a = attempt()
    assert settle(a, POLICY, failure=Retry(delay=7)).delay == 7
    assert a.failure is None  # a chosen outcome, not a bug
    for delay in (-1, math.nan, math.inf):
        assert settle(attempt(), POLICY, failure=Retry(delay=delay)).delay == 0.0


@pytest.mark.parametrize("exc", [PermanentFailure("no"), PayloadError("bad field")])
def test_permanent_failures_and_bad_payloads_fail_at_once(exc: JobrunnerError):
    out = settle(attempt(attempts=1), POLICY, failure=exc)
    assert out.kind is OutcomeKind.FAILED
    assert out.error == f"{type(exc).__name__}: {exc}"


def test_how_a_stopped_attempt_ends():
    def stopped(reason: StopReason, failure: BaseException | None = None) -> Outcome | None:
        a = attempt()
        a.stop(reason)
        return settle(a, POLICY, failure=failure)

    assert stopped(StopReason.CANCEL).kind is OutcomeKind.CANCELLED
    assert stopped(StopReason.LOST) is None  # another worker owns the outcome now
    assert stopped(StopReason.SHUTDOWN).kind is OutcomeKind.RELEASED
    memory = stopped(StopReason.MEMORY)
    assert memory.kind is OutcomeKind.RETRIED
    assert "memory limit (512 MB)" in memory.error


def test_a_handler_can_park_its_job_or_give_up_a_lost_lease():
    parked = settle(attempt(), POLICY, failure=WaitForChildren(recheck=30))
    assert (parked.kind, parked.delay) == (OutcomeKind.WAITING, 30)
    assert settle(attempt(), POLICY, failure=LeaseLost()) is None


def test_error_text_is_bounded_and_has_no_nul():
    out = settle(attempt(attempts=3), POLICY, failure=ValueError("a\x00b" + "x" * 9000))
    assert "\x00" not in out.error
    assert len(out.error) <= 4000 and out.error.endswith("chars cut]")


@pytest.mark.anyio
async def test_a_lone_exception_group_is_judged_by_the_exception_inside():
    async def grouped(ctx: JobContext) -> None:
        async with anyio.create_task_group() as tg:

            async def fail() -> None:
                raise Retry(delay=5)

            tg.start_soon(fail)

    out = await run_attempt(attempt(func=grouped), POLICY)
    assert (out.kind, out.delay) == (OutcomeKind.RETRIED, 5)


# -- the ledger and claim sizing -------------------------------------------------------------


def test_the_ledger_counts_by_type_and_replaces_a_stale_attempt():
    ledger = Ledger()
    first, again = attempt(7), attempt(7, attempts=2)
    assert ledger.add(first) is None
    assert ledger.add(again) is first  # claimed again after losing the lease
    assert (len(ledger), ledger.of_type("t"), ledger.get(7)) == (1, 2, again)
    ledger.remove(first)  # the stale one ends: the newer keeps the job's entry
    assert (len(ledger), ledger.of_type("t"), ledger.get(7)) == (1, 1, again)


def test_claim_slots_never_pass_a_handlers_own_limit():
    ledger = Ledger()
    limited, free = handler("a", concurrency=2), handler("b")
    ledger.add(Attempt(job=Job(id=1, type="a"), handler=limited, ctx=attempt().ctx))
    slots = {s.type: s.free for s in ledger.slots([limited, free], free_total=10)}
    assert slots == {"a": 1, "b": 10}
    assert ledger.slots([limited, free], free_total=0) == []


def test_unwritten_outcomes_are_still_held_with_the_longest_lease():
    ledger = Ledger()
    ledger.add(attempt(1, lease=5.0))
    held = ledger.held([Outcome(id=2, attempt=1, kind=OutcomeKind.COMPLETED)], {"t": 5, "u": 60})
    assert [(h.id, h.lease) for h in held] == [(1, 5.0), (2, 60)]


# -- the worker: waking the producer, hand-back ----------------------------------------------


def worker(tmp_path: Path, *handlers: Handler, **settings) -> Worker:
    plugin = Plugin("unit")
    for h in handlers or (handler(),):
        plugin.add(h)
    return Worker(
        backend=SQLiteBackend(tmp_path / "never-opened.db"),
        handlers=plugin.handlers,
        settings=Settings.load({}, **settings),
    )


def hold(w: Worker, job_id: int, type: str = "t") -> Attempt:
    return w._start(Job(id=job_id, type=type, attempts=1, max_attempts=3))


def test_a_finished_job_wakes_the_producer_only_when_it_can_matter(tmp_path: Path):
    w = worker(tmp_path, handler("t"), handler("lim", concurrency=1), concurrency=4)
    p = w.producer
    done = Outcome(id=1, attempt=1, kind=OutcomeKind.COMPLETED)
    a = hold(w, 1)
    assert p.should_wake(a, done)  # the last claim may have left jobs, and a slot is free
    p._maybe_more = False  # the last claim found the queue empty
    assert not p.should_wake(a, done)
    assert p.should_wake(a, None)  # a lost lease: rethink
    retry = Outcome(id=1, attempt=1, kind=OutcomeKind.RETRIED, delay=3)
    assert p.should_wake(a, retry)  # a retry changes when to look next
    lim = hold(w, 2, "lim")
    w.ledger.remove(lim)
    assert p.should_wake(lim, done)  # a type at its own limit got its slot back
    w.stop()
    assert p.should_wake(a, done)  # stopping: every end matters


@pytest.mark.anyio
async def test_a_retry_shortens_the_producers_sleep(tmp_path: Path):
    w = worker(tmp_path, handler("t", concurrency=1), poll_interval=10)
    now = [100.0]
    w.producer.clock = lambda: now[0]
    a = hold(w, 1)  # the only slot is taken: the producer asks the database nothing
    w.producer.ended(a, Outcome(id=9, attempt=1, kind=OutcomeKind.RETRIED, delay=2.5))
    assert await w.producer._idle_timeout() == pytest.approx(2.501)


def test_jobs_claimed_ahead_that_wait_too_long_go_back_without_using_an_attempt(tmp_path: Path):
    w = worker(tmp_path, concurrency=1)
    stale, fresh = hold(w, 1), hold(w, 2)
    w._queue.put_many([stale, fresh])
    stale.started -= 5  # waited five seconds for a slot
    w.ahead.jobs = 10
    w._hand_back_stale()
    assert [(o.id, o.kind) for o in w.completer.pending] == [(1, OutcomeKind.RELEASED)]
    assert w.ahead.jobs == 0  # the estimate proved wrong: claim none ahead for now
    assert (w.running, w.ledger.get(2)) == (1, fresh)


def test_stop_hands_back_what_has_not_started(tmp_path: Path):
    w = worker(tmp_path)
    w._queue.put_many([hold(w, 1), hold(w, 2)])
    w.stop()
    assert w.stopping
    assert [o.kind for o in w.completer.pending] == [OutcomeKind.RELEASED] * 2
    assert w.running == 0
