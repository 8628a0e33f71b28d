"""What a source says when Kafka fails it: one log line per change of state (failing, working again) with one
clean cause, however long the failure lasts, around the capped exponential `reconnect.Backoff` it waits by."""

from __future__ import annotations

import logging
import re

from exporter.sources.kafka_client import retry_log_level
from exporter.sources.reconnect import Backoff

__all__ = ["Retry", "cause"]

# aiokafka names the addresses it tried as Python tuples: `('10.0.0.1', 9092, <AddressFamily.AF_INET: 2>)`.
_ADDRESS = re.compile(r"\('([^']*)', (\d+), <AddressFamily\.\w+: \d+>\)")


def cause(exc: BaseException) -> str:
    """An exception as one line: its message, after its class name unless the message already starts with
    it (aiokafka's errors do, which gave `KafkaConnectionError: KafkaConnectionError: ...`), with the
    addresses aiokafka prints as tuples written `host:port`."""
    name = type(exc).__name__
    text = _ADDRESS.sub(r"\1:\2", " ".join(str(exc).split()))
    if not text:
        return name
    return text if text.startswith(name) else f"{name}: {text}"


class Retry:
    """The failure state of one source task. `failed` logs only the first failure of a run of them (at
    `kafka_client.retry_log_level`: a cluster that cannot be reached is the HEAD poller's to report) and
    returns how long to wait (doubling up to `cap_s`); `succeeded` logs the recovery once and resets."""

    def __init__(self, log: logging.Logger, what: str, first_s: float, cap_s: float) -> None:
        self._log = log
        self._what = what
        self._cap = cap_s
        self._backoff = Backoff(first_s, cap_s)
        self.cause = ""
        """The cause of the current failure; empty while the source works."""

    def failed(self, exc: BaseException) -> float:
        reason = cause(exc)
        if not self.cause:
            self._log.log(
                retry_log_level(exc),
                "%s failed (%s); retrying with backoff up to %g s",
                self._what,
                reason,
                self._cap,
            )
        else:
            self._log.debug("%s failed again (%s)", self._what, reason)
        self.cause = reason
        return self._backoff.next()

    def succeeded(self) -> None:
        if self.cause:
            self._log.info("%s works again", self._what)
        self.cause = ""
        self._backoff.reset()
