"""Lag in seconds: how long ago the record a group must process next was appended. Pure and synchronous: the
state file that keeps the HEAD histories across restarts is the shell's (`exporter/state_file.py`).

For a group-partition with committed offset c and HEAD h the lag is exactly 0 when c >= h, otherwise
now - t(c), where t(c) is the time the record at offset c was appended (docs/lag-seconds.md). It is never
negative, infinite or NaN: when no trustworthy figure exists the result carries no seconds and a reason.

How t(c) is found:

* Interpolation on the HEAD history. An observation (o, t) says that at time t the log held offsets below o,
  so the record at c was appended in the bracket (t_i, t_i+1] where o_i <= c < o_i+1. Its k = o_i+1 - o_i
  records are taken to have arrived uniformly over a window of the bracket, and c, the j-th of them
  (j = c - o_i + 1), at the window's start plus j / (k + 1) of its width: the expected time of the j-th of k
  uniform arrivals. The window is the whole bracket, unless the bracket's rate lies between its neighbours'
  rates: then the traffic started (or stopped) inside it, and its records came at the busier neighbour's
  rate, next to that neighbour (a burst that began mid-interval ends at the bracket's end). The estimate is
  always inside the bracket, so its error is below the bracket's width: one `offset_refresh` in
  steady state. The ends are the bounds: t_i+1 gives the smallest lag the observations allow (a guaranteed
  "at least"), t_i the largest; neither is used, because either is off by up to a refresh on every figure.
  Nothing is extrapolated: an offset outside the history, or inside a bracket wider than
  `Policy.max_bracket_s` (a restart, an outage), is not answered by interpolation.
* An exact read of the record at c, made by the shell and cached per (topic, partition, offset) in
  `exact_answers.ExactCache`. It answers where interpolation cannot, and confirms a lag on a log that
  stopped growing (`Policy.verify_after_s`), where a committed offset resting on a transaction marker or
  aborted records would otherwise show a lag that grows forever (Burrow #570, klag-exporter #104).

The HEAD history and the interpolation on it are `head_history.py`; the exact reads' answers and their cache
`exact_answers.py`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Literal, NamedTuple

from exporter.core.exact_answers import (
    Appended,
    BelowLogStart,
    ExactAnswer,
    ExactCache,
    NothingBefore,
    PartitionOffset,
    Untimed,
)
from exporter.core.head_history import HeadHistory, Policy, interpolate

__all__ = [
    "METHODS",
    "REASONS",
    "SOURCE_CODES",
    "LagSeconds",
    "Method",
    "Reason",
    "Source",
    "TimeLag",
    "lag_seconds",
]

Method = Literal["caught_up", "interpolated", "exact"]
"""How a figure was obtained: c >= h, interpolation on the HEAD history, or the record's own timestamp."""
Reason = Literal["head_unknown", "no_history", "pending_exact_read", "below_log_start", "no_timestamp"]
"""Why there is no figure: no HEAD offset yet; the offset is outside the HEAD history (or in a gap wider than
`max_bracket_s`) and exact reads are off; the same with a read requested; the record was deleted by retention;
the record carries no timestamp."""
Source = Method | Reason

METHODS: tuple[Method, ...] = ("caught_up", "interpolated", "exact")
REASONS: tuple[Reason, ...] = (
    "head_unknown",
    "no_history",
    "pending_exact_read",
    "below_log_start",
    "no_timestamp",
)
SOURCE_CODES: Mapping[Source, int] = {
    "caught_up": 1,
    "interpolated": 2,
    "exact": 3,
    "head_unknown": 10,
    "no_history": 11,
    "pending_exact_read": 12,
    "below_log_start": 13,
    "no_timestamp": 14,
}
"""Numbers of the partition-level source gauge (docs/lag-seconds.md): below 10 a figure exists."""


class LagSeconds(NamedTuple):
    """Lag in seconds of one group-partition, or why there is none. A NamedTuple: one is built per
    group-partition per evaluation, three times faster than a frozen dataclass."""

    seconds: float | None
    """Finite and >= 0 when `source` is a Method; None when it is a Reason."""
    source: Source
    read: int | None = None
    """Offset whose exact read would answer (source "pending_exact_read") or confirm the figure."""


# ----------------------------------------------------------------------------------------------------
# The decision: which method answers, and which read is needed.

_HEAD_UNKNOWN = LagSeconds(None, "head_unknown")
_NO_HISTORY = LagSeconds(None, "no_history")
_CAUGHT_UP = LagSeconds(0.0, "caught_up")
_NOTHING_LEFT = LagSeconds(0.0, "exact")
_BELOW_LOG_START = LagSeconds(None, "below_log_start")
_NO_TIMESTAMP = LagSeconds(None, "no_timestamp")
_new_lag = tuple.__new__
"""LagSeconds without NamedTuple's Python-level __new__: one is built per lagging group-partition and
round."""


def lag_seconds(
    committed: int,
    head: int | None,
    history: HeadHistory | None,
    now: float,
    answer: ExactAnswer | None = None,
    *,
    exact_reads: bool = True,
) -> LagSeconds:
    """Lag in seconds of a group-partition at `now`, from its committed offset, HEAD, HEAD history and the
    cached exact answer for the committed offset (if any). With `exact_reads` off, what needs a read is
    reported as "no_history" and `read` stays None."""
    if head is None:
        return _HEAD_UNKNOWN
    if committed >= head:
        return _CAUGHT_UP
    offset = committed
    if answer is not None:
        match answer:
            case Appended(timestamp_s=timestamp):
                # A create time outside the interval the history proves (a producer's clock, replayed
                # data) is clamped into it.
                low, high = (-math.inf, math.inf) if history is None else history.bounds(committed)
                return LagSeconds(_age(now, min(max(timestamp, low), high)), "exact")
            case NothingBefore(end=end):
                if end >= head:
                    return _NOTHING_LEFT
                # Records arrived since the read; the consumer's next data record is at or after `end`.
                offset = end
            case BelowLogStart():
                return _BELOW_LOG_START
            case Untimed():
                return _NO_TIMESTAMP
    appended = None if history is None else interpolate(history, offset)
    if appended is None or history is None:
        return LagSeconds(None, "pending_exact_read", committed) if exact_reads else _NO_HISTORY
    confirm = False
    if exact_reads:
        reached = history.reached_head_at
        confirm = reached is not None and now - reached >= history.policy.verify_after_s
    return _new_lag(LagSeconds, (_age(now, appended), "interpolated", committed if confirm else None))


def _age(now: float, then: float) -> float:
    # max() also turns a clock that stepped back below an observation into 0, never a negative lag.
    return max(0.0, now - then)


class TimeLag:
    """Lag in seconds for one Kafka cluster: HEAD histories, cached exact answers, and the reads wanted.

    Its writers, all on one event loop: the HEAD poller calls `observe` and `forget_topic`; the evaluation
    task hands `want` the reads its published round asked for (the round itself only reads, with `figure`)
    and forgets restored histories of topics that are gone; the exact reader takes work from `take_reads` and
    hands back `answer`. Reads wanted are kept most recently wanted first, at most `max_pending`; a read is
    answered only while in flight, so a reset of its partition voids it."""

    def __init__(
        self,
        policy: Policy,
        *,
        histories: Mapping[tuple[str, int], HeadHistory] | None = None,
        exact_reads: bool = True,
        cache_size: int = 50_000,
        max_pending: int = 4_096,
    ) -> None:
        self.policy = policy
        self.exact_reads = exact_reads
        self.cache = ExactCache(cache_size)
        self._histories: dict[tuple[str, int], HeadHistory] = dict(histories or {})
        self._added = 0
        self._max_pending = max_pending
        self._pending: OrderedDict[PartitionOffset, None] = OrderedDict()
        self._in_flight: set[PartitionOffset] = set()

    @property
    def histories(self) -> Mapping[tuple[str, int], HeadHistory]:
        return self._histories

    def containers(self) -> list[object]:
        """The HEAD histories (two arrays, a count and the policy's numbers each) and the dict of them by
        partition: nothing that could refer back to them (for the shell's `gc_pause.untrack`)."""
        return [self._histories, *self._histories.values()]

    @property
    def containers_version(self) -> int:
        """Grows whenever a HEAD history is added (a new one, and the dict of them back in the cycle
        collector's lists): `containers()` then holds something to take out again."""
        return self._added

    @property
    def pending_reads(self) -> int:
        return len(self._pending)

    def observe(self, topic: str, partition: int, offset: int, now: float) -> None:
        """A HEAD offset polled at `now` (seconds since the epoch)."""
        history = self._histories.get((topic, partition))
        if history is None:
            history = self._histories[(topic, partition)] = HeadHistory(self.policy)
            self._added += 1
        if history.append(offset, now):
            self.cache.discard(topic, partition)
            self._drop_reads(lambda read: read.topic == topic and read.partition == partition)

    def forget_topic(self, topic: str) -> None:
        """The topic was deleted."""
        for key in [k for k in self._histories if k[0] == topic]:
            del self._histories[key]
        self.cache.discard(topic)
        self._drop_reads(lambda read: read.topic == topic)

    def figure(self, topic: str, partition: int, committed: int, head: int | None, now: float) -> LagSeconds:
        """`lag_seconds` with this cluster's history and cache. The read it asks for (`read`) is not queued:
        an evaluation round collects them and hands them to `want` when it publishes."""
        if head is not None and committed >= head:
            # What `lag_seconds` answers first, without looking up the history and the cache: a round asks
            # this of every committed partition, and most of a healthy cluster's are caught up.
            return _CAUGHT_UP
        return lag_seconds(
            committed,
            head,
            self._histories.get((topic, partition)),
            now,
            self.cache.get((topic, partition, committed)),
            exact_reads=self.exact_reads,
        )

    def lag(self, topic: str, partition: int, committed: int, head: int | None, now: float) -> LagSeconds:
        """`figure`, with the read it asks for queued at once."""
        result = self.figure(topic, partition, committed, head, now)
        if result.read is not None:
            self._want(PartitionOffset(topic, partition, result.read))
        return result

    def want(self, reads: Sequence[PartitionOffset]) -> None:
        """Queue the reads that figures asked for, in their order: the last is the most recently wanted."""
        # Only the last `max_pending` distinct reads can stay queued: queueing just those, oldest first, ends
        # exactly where queueing all would, and a round at 1,000,000 group-partitions asks for up to a million
        # (0.5-2.7 s of the event loop one by one).
        newest: dict[PartitionOffset, None] = {}
        for read in reversed(reads):
            if read not in self._in_flight:
                newest[read] = None
                if len(newest) == self._max_pending:
                    break
        for read in reversed(newest):
            self._want(read)

    def take_reads(self, limit: int) -> list[PartitionOffset]:
        """Up to `limit` reads to make, most recently wanted first; they stay in flight until answered."""
        taken: list[PartitionOffset] = []
        while self._pending and len(taken) < limit:
            read, _ = self._pending.popitem(last=True)
            self._in_flight.add(read)
            taken.append(read)
        return taken

    def answer(self, read: PartitionOffset, answer: ExactAnswer | None) -> None:
        """The outcome of a taken read; None when it failed (it is asked for again when still needed)."""
        if read in self._in_flight:
            self._in_flight.discard(read)
            if answer is not None:
                self.cache.put(read, answer)

    def _want(self, read: PartitionOffset) -> None:
        if read in self._in_flight:
            return
        self._pending[read] = None
        self._pending.move_to_end(read)
        if len(self._pending) > self._max_pending:
            self._pending.popitem(last=False)

    def _drop_reads(self, matches: Callable[[PartitionOffset], bool]) -> None:
        for read in [r for r in self._pending if matches(r)]:
            del self._pending[read]
        self._in_flight = {r for r in self._in_flight if not matches(r)}
