"""The shared token bucket: `allow` is the HTTP rate limit's view of it (delay/take are pinned through the
exact reader's RateLimit in test_exact_reads.py)."""

from __future__ import annotations

import pytest

from exporter.token_bucket import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_allow_spends_the_burst_then_one_token_per_interval() -> None:
    clock = Clock()
    bucket = TokenBucket(2.0, burst=3, clock=clock)
    assert [bucket.allow() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.4
    assert bucket.allow() is False
    clock.now += 0.1
    assert [bucket.allow(), bucket.allow()] == [True, False]
    clock.now += 3600
    assert [bucket.allow() for _ in range(4)] == [True, True, True, False]


def test_a_refused_request_costs_nothing() -> None:
    clock = Clock()
    bucket = TokenBucket(1.0, burst=1, clock=clock)
    assert bucket.allow() is True
    for _ in range(5):
        assert bucket.allow() is False
    clock.now += 1.0
    assert bucket.allow() is True


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (1.0, 0)])
def test_nonsense_is_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate must be > 0"):
        TokenBucket(rate, burst)
