from __future__ import annotations

from jobrunner import RetryPolicy


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    policy = RetryPolicy(base=2, factor=2, cap=60, jitter=0.5)
    assert policy.delay(1, rand=lambda: 0.0) == 2
    assert policy.delay(3, rand=lambda: 0.0) == 8
    assert policy.delay(3, rand=lambda: 1.0) == 4
    assert policy.delay(50, rand=lambda: 0.0) == 60
