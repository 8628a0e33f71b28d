"""A token bucket: `rate` tokens a second on average, at most `burst` saved up. Pure and synchronous; the
HTTP rate limit and the exact reader's pacing both use it."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst at least 1")
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now

    def delay(self) -> float:
        """Seconds until a token is available; 0 when one is."""
        self._refill()
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self._rate

    def take(self) -> None:
        """Spend a token, even one not yet there: the debt delays the next ones."""
        self._refill()
        self._tokens -= 1

    def allow(self) -> bool:
        """Spend a token if one is available now."""
        if self.delay() > 0:
            return False
        self._tokens -= 1
        return True
