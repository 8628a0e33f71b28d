"""The backoff every reconnection path uses: doubling, capped, jittered, reset by a success."""

from __future__ import annotations

import random

from exporter.sources.reconnect import Backoff


def test_delays_double_up_to_the_cap_and_a_reset_starts_over() -> None:
    backoff = Backoff(0.25, 2.0, jitter=0.0)
    assert [backoff.next() for _ in range(6)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    backoff.reset()
    assert backoff.next() == 0.25


def test_jitter_spreads_each_delay_within_its_bounds() -> None:
    random.seed(7)
    backoff = Backoff(1.0, 1.0, jitter=0.2)
    delays = [backoff.next() for _ in range(1000)]
    assert 0.8 <= min(delays) < 0.85
    assert 1.15 < max(delays) <= 1.2
