"""ClaimAhead sizing: fast jobs get a buffer, slow ones none, and never more than the cap."""

from __future__ import annotations

from jobrunner._ahead import ClaimAhead


def _sized(run: float, round_trip: float, *, concurrency: int = 200, cap: int = 500) -> ClaimAhead:
    ahead = ClaimAhead(concurrency, cap)
    for _ in range(10):
        ahead.ended(run)
    ahead.after_claim(round_trip)
    return ahead


def test_nothing_is_claimed_ahead_before_any_job_has_ended():
    ahead = ClaimAhead(200, 500)
    ahead.after_claim(0.005)
    assert (ahead.jobs, ahead.claim_at) == (0, 1)


def test_ten_millisecond_jobs_get_what_their_slots_finish_during_a_claim_three_times_over():
    ahead = _sized(run=0.010, round_trip=0.005)
    assert ahead.jobs == 300  # 200 slots finish 100 jobs in 5 ms
    assert ahead.claim_at == 150


def test_slow_jobs_get_none_and_fast_ones_no_more_than_the_cap():
    assert _sized(run=30.0, round_trip=0.005).jobs == 0
    assert _sized(run=0.0001, round_trip=0.005).jobs == 500
    assert _sized(run=0.0001, round_trip=0.005, cap=0).jobs == 0


def test_a_slow_round_trip_is_remembered_and_forgotten_slowly():
    ahead = _sized(run=0.010, round_trip=0.020, concurrency=10)
    assert ahead.jobs == 60  # 10 slots finish 20 jobs in 20 ms, three times over
    ahead.after_claim(0.001)  # one fast claim: the remembered peak decays by 10 %
    assert ahead.jobs == 54


def test_off_claims_none_ahead_until_the_next_sizing():
    ahead = _sized(run=0.010, round_trip=0.005)
    ahead.off()
    assert (ahead.jobs, ahead.claim_at) == (0, 1)
    ahead.after_claim(0.005)
    assert ahead.jobs == 300
