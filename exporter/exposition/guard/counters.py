"""What the guard counts (`GuardCounters`, a collector for /metrics) and how often it says so in the log (at
most once per kind per interval, `Throttle`)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from exporter.exposition.families import registry_family

__all__ = ["LOG_INTERVAL_S", "GuardCounters", "Throttle", "since"]

LOG_INTERVAL_S = 60.0
"""A kind of bad request or refused connection is logged at most once in this many seconds."""


@dataclass(slots=True, eq=False)
class GuardCounters(Collector):
    """Everything refused or dropped, for /metrics; only the event loop writes them."""

    request_errors: Counter[str]
    closed: Counter[str]
    auth_refused: Counter[str]
    open_connections: int = 0

    @classmethod
    def new(cls) -> GuardCounters:
        return cls(Counter(), Counter(), Counter())

    def collect(self) -> Iterable[Metric]:
        errors = registry_family("lagwatch_http_request_errors_total")
        for kind, count in sorted(self.request_errors.items()):
            errors.add_metric([kind], count)
        closed = registry_family("lagwatch_http_connections_refused_total")
        for reason, count in sorted(self.closed.items()):
            closed.add_metric([reason], count)
        refused = registry_family("lagwatch_http_auth_refused_total")
        for reason, count in sorted(self.auth_refused.items()):
            refused.add_metric([reason], count)
        yield errors
        yield closed
        yield refused
        connections = registry_family("lagwatch_http_open_connections")
        connections.add_metric([], self.open_connections)
        yield connections


class Throttle:
    """Whether to log an event of a kind now: once per kind per interval, with the number left out since."""

    def __init__(self, interval: float = LOG_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._skipped: Counter[str] = Counter()

    def __call__(self, kind: str) -> int | None:
        """None to stay quiet; else the number of events of this kind not logged since the last line."""
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self._interval:
            self._skipped[kind] += 1
            return None
        self._last[kind] = now
        return self._skipped.pop(kind, 0)


def since(skipped: int) -> str:
    return f" ({skipped} more since the last report)" if skipped else ""
