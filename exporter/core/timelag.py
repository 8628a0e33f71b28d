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
  `ExactCache`. It answers where interpolation cannot, and confirms a lag on a log that stopped growing
  (`Policy.verify_after_s`), where a committed offset resting on a transaction marker or aborted records would
  otherwise show a lag that grows forever (Burrow #570, klag-exporter #104).

Flat runs of the HEAD are kept as two points, the first and the last time the offset was seen: the first is
when the log reached the offset (the upper bound of the record before it), the last is the lower bound of the
next record. Keeping only the first would stretch the bracket after every idle period over the whole period.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

__all__ = [
    "METHODS",
    "REASONS",
    "SOURCE_CODES",
    "Appended",
    "BelowLogStart",
    "ExactAnswer",
    "ExactCache",
    "HeadHistory",
    "LagSeconds",
    "Method",
    "NothingBefore",
    "PartitionOffset",
    "Policy",
    "Reason",
    "Source",
    "TimeLag",
    "Untimed",
    "interpolate",
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

_CLOCK_JITTER_S = 1.0
"""A HEAD observation at most this much older than the newest one is taken as simultaneous with it; a bigger
backward step of the wall clock restarts the history, whose times are from the old clock."""


class LagSeconds(NamedTuple):
    """Lag in seconds of one group-partition, or why there is none. A NamedTuple: one is built per
    group-partition per evaluation, three times faster than a frozen dataclass."""

    seconds: float | None
    """Finite and >= 0 when `source` is a Method; None when it is a Reason."""
    source: Source
    read: int | None = None
    """Offset whose exact read would answer (source "pending_exact_read") or confirm the figure."""


@dataclass(frozen=True, slots=True)
class Policy:
    """Bounds of the HEAD history and trust in it. The defaults are `for_refresh(10.0)`."""

    span_s: float = 3600.0
    """Age of the oldest observation kept: lags up to this are answered by interpolation."""
    max_points: int = 363
    """Hard bound on the points per partition (16 bytes each); the oldest go first."""
    max_bracket_s: float = 30.0
    """Widest bracket interpolated; a wider one (lagwatch was down, the cluster unreachable) is left to an
    exact read, since the error of an interpolation can reach its bracket's width."""
    verify_after_s: float = 60.0
    """An interpolated lag on a log whose HEAD has not moved for this long is confirmed by an exact read."""

    def __post_init__(self) -> None:
        if not (self.span_s > 0 and self.max_bracket_s > 0 and self.verify_after_s >= 0):
            raise ValueError("span_s and max_bracket_s must be > 0, verify_after_s >= 0")
        if self.max_points < 2:
            raise ValueError("max_points must be at least 2")

    @classmethod
    def for_refresh(cls, offset_refresh_s: float, span_s: float = 3600.0) -> Policy:
        """The policy for HEAD observations every `offset_refresh_s`: room for `span_s` of them plus the
        oldest bracketing point and slack, brackets up to three refreshes, confirmation after two flat
        refreshes but not before a minute."""
        return cls(
            span_s=span_s,
            max_points=math.ceil(span_s / offset_refresh_s) + 3,
            max_bracket_s=3 * offset_refresh_s,
            verify_after_s=max(60.0, 2 * offset_refresh_s),
        )


class HeadHistory:
    """HEAD observations (offset, time in seconds) of one partition, oldest first, offsets and times both
    non-decreasing. Two arrays rather than objects: 16 bytes per point."""

    __slots__ = ("_offsets", "_times", "policy")

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._offsets = array("q")
        self._times = array("d")

    def __len__(self) -> int:
        return len(self._offsets)

    @classmethod
    def from_arrays(cls, policy: Policy, offsets: array[int], times: array[float]) -> HeadHistory:
        """A history of these observations (as `arrays` gave them), the newest `policy.max_points` kept. The
        caller vouches that both are non-decreasing and of equal length."""
        history = cls(policy)
        history._offsets = offsets[-policy.max_points :]
        history._times = times[-policy.max_points :]
        return history

    def arrays(self) -> tuple[array[int], array[float]]:
        """The offsets and the times, oldest first: the history's own arrays (for serialising), not copies."""
        return self._offsets, self._times

    def copy(self) -> HeadHistory:
        """An independent copy (two array copies), for serialising away from the owner's thread."""
        twin = HeadHistory(self.policy)
        twin._offsets = array("q", self._offsets)
        twin._times = array("d", self._times)
        return twin

    @property
    def head(self) -> int | None:
        """The newest HEAD offset observed."""
        return self._offsets[-1] if self._offsets else None

    @property
    def reached_head_at(self) -> float | None:
        """When the log was first seen at its newest offset."""
        offsets, times = self._offsets, self._times
        if not offsets:
            return None
        return times[-2] if len(offsets) >= 2 and offsets[-2] == offsets[-1] else times[-1]

    def points(self) -> tuple[tuple[int, float], ...]:
        """The observations kept, oldest first."""
        return tuple(zip(self._offsets, self._times, strict=True))

    def head_at(self, time_s: float) -> int | None:
        """The HEAD as lagwatch saw it at `time_s`: the newest observation at or before it. None when there is
        none, or when the HEAD may have moved unseen since: the next observation is more than `max_bracket_s`
        later and shows another offset (lagwatch was down, the cluster unreachable), or there is no next one
        and the newest is more than `max_bracket_s` older."""
        times = self._times
        at = bisect_right(times, time_s) - 1
        if at < 0:
            return None
        offset = self._offsets[at]
        if at + 1 < len(times):
            # A flat run is kept as its first and last sighting: the offset held all along between them.
            if times[at + 1] - times[at] > self.policy.max_bracket_s and self._offsets[at + 1] != offset:
                return None
        elif time_s - times[at] > self.policy.max_bracket_s:
            return None
        return offset

    def append(self, offset: int, time_s: float) -> bool:
        """Add an observation. Returns True when the offset went back (topic re-created or truncated): the
        history then restarts from this observation, and exact answers for the partition are void. A clock
        that stepped back by more than a second also restarts it, but returns False: answers stay valid."""
        if not math.isfinite(time_s):
            raise ValueError(f"observation time must be finite, not {time_s}")
        offsets, times = self._offsets, self._times
        if offsets:
            if offset < offsets[-1]:
                self._restart(offset, time_s)
                return True
            if time_s < times[-1]:
                if times[-1] - time_s > _CLOCK_JITTER_S:
                    self._restart(offset, time_s)
                    return False
                time_s = times[-1]
            if offset == offsets[-1] and len(offsets) >= 2 and offsets[-2] == offset:
                times[-1] = time_s
                self._trim(time_s)
                return False
        offsets.append(offset)
        times.append(time_s)
        self._trim(time_s)
        return False

    def _restart(self, offset: int, time_s: float) -> None:
        del self._offsets[:], self._times[:]
        self._offsets.append(offset)
        self._times.append(time_s)

    def _trim(self, now: float) -> None:
        # The newest point at or before the cutoff stays: it brackets records appended just after it.
        stale = bisect_right(self._times, now - self.policy.span_s) - 1
        drop = max(stale, len(self._times) - self.policy.max_points)
        if drop > 0:
            del self._offsets[:drop], self._times[:drop]


def interpolate(history: HeadHistory, offset: int) -> float | None:
    """Estimated append time of the record at `offset`, or None when no two observations no more than
    `max_bracket_s` apart bracket it. See the module docstring for the estimate and its bounds."""
    offsets, times = history._offsets, history._times
    after = bisect_right(offsets, offset)
    if after == 0 or after == len(offsets):
        return None
    low, high = times[after - 1], times[after]
    width = high - low
    if width > history.policy.max_bracket_s:
        return None
    first = offsets[after - 1]
    count = offsets[after] - first
    rate = count / width if width > 0 else math.inf
    before, following = _rate(offsets, times, after - 1), _rate(offsets, times, after + 1)
    # A rate between the neighbours' means the traffic started or stopped inside the bracket: its records
    # came at the busier neighbour's rate, next to it. The window stays strictly inside the bracket.
    if following is not None and following > rate and (before is None or before < rate):
        width = count / following
        low = high - width
    elif before is not None and before > rate and (following is None or following < rate):
        width = count / before
    return low + (offset - first + 1) / (count + 1) * width


def _rate(offsets: array[int], times: array[float], end: int) -> float | None:
    """Records per second between observations `end - 1` and `end`; None where that is no bracket."""
    if end < 1 or end >= len(offsets) or times[end] <= times[end - 1]:
        return None
    return (offsets[end] - offsets[end - 1]) / (times[end] - times[end - 1])


# ----------------------------------------------------------------------------------------------------
# Exact reads: what the shell found at an offset, and the cache of those answers.


@dataclass(frozen=True, slots=True)
class Appended:
    """The first data record at or after the offset (the next existing one when the offset was compacted
    away, past transaction markers and aborted records) carries this timestamp: the broker's append time
    on a LogAppendTime topic, the producer's create time otherwise."""

    timestamp_s: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.timestamp_s):
            raise ValueError(f"record timestamp must be finite, not {self.timestamp_s}")


@dataclass(frozen=True, slots=True)
class NothingBefore:
    """No data record in [offset, end): only transaction markers, aborted or compacted-away records, or an
    empty partition. `end` is where the read stopped (the last stable offset or the log end)."""

    end: int


@dataclass(frozen=True, slots=True)
class BelowLogStart:
    """The offset is below the log start offset: retention deleted the record."""

    log_start: int


@dataclass(frozen=True, slots=True)
class Untimed:
    """The record carries no timestamp (timestamp -1, message format v0)."""


ExactAnswer = Appended | NothingBefore | BelowLogStart | Untimed


class PartitionOffset(NamedTuple):
    """An offset of a partition: the key of exact reads and their answers."""

    topic: str
    partition: int
    offset: int


class ExactCache:
    """Answers of exact reads by (topic, partition, offset), the least recently used dropped beyond
    `max_size`. A stopped or stalled consumer keeps hitting its entry, so it costs one read."""

    __slots__ = ("_answers", "max_size")

    def __init__(self, max_size: int = 50_000) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self.max_size = max_size
        self._answers: OrderedDict[tuple[str, int, int], ExactAnswer] = OrderedDict()

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, key: tuple[str, int, int]) -> ExactAnswer | None:
        answer = self._answers.get(key)
        if answer is not None:
            self._answers.move_to_end(key)
        return answer

    def put(self, key: tuple[str, int, int], answer: ExactAnswer) -> None:
        self._answers[key] = answer
        self._answers.move_to_end(key)
        if len(self._answers) > self.max_size:
            self._answers.popitem(last=False)

    def discard(self, topic: str, partition: int | None = None) -> None:
        """Forget the answers of a partition, or of every partition of the topic when `partition` is None."""
        for key in [k for k in self._answers if k[0] == topic and partition in (None, k[1])]:
            del self._answers[key]


# ----------------------------------------------------------------------------------------------------
# The decision: which method answers, and which read is needed.

_HEAD_UNKNOWN = LagSeconds(None, "head_unknown")
_NO_HISTORY = LagSeconds(None, "no_history")
_CAUGHT_UP = LagSeconds(0.0, "caught_up")
_NOTHING_LEFT = LagSeconds(0.0, "exact")
_BELOW_LOG_START = LagSeconds(None, "below_log_start")
_NO_TIMESTAMP = LagSeconds(None, "no_timestamp")


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
                low, high = _bounds(history, committed)
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
    reached = history.reached_head_at
    confirm = exact_reads and reached is not None and now - reached >= history.policy.verify_after_s
    return LagSeconds(_age(now, appended), "interpolated", committed if confirm else None)


def _age(now: float, then: float) -> float:
    # max() also turns a clock that stepped back below an observation into 0, never a negative lag.
    return max(0.0, now - then)


def _bounds(history: HeadHistory | None, offset: int) -> tuple[float, float]:
    """The interval the HEAD history proves the record at `offset` was appended in. A create time outside it
    (a producer's clock, replayed data) is clamped into it."""
    if history is None:
        return -math.inf, math.inf
    offsets, times = history._offsets, history._times
    after = bisect_right(offsets, offset)
    return (
        times[after - 1] if after > 0 else -math.inf,
        times[after] if after < len(times) else math.inf,
    )


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
        self._max_pending = max_pending
        self._pending: OrderedDict[PartitionOffset, None] = OrderedDict()
        self._in_flight: set[PartitionOffset] = set()

    @property
    def histories(self) -> Mapping[tuple[str, int], HeadHistory]:
        return self._histories

    @property
    def pending_reads(self) -> int:
        return len(self._pending)

    def observe(self, topic: str, partition: int, offset: int, now: float) -> None:
        """A HEAD offset polled at `now` (seconds since the epoch)."""
        history = self._histories.get((topic, partition))
        if history is None:
            history = self._histories[(topic, partition)] = HeadHistory(self.policy)
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

    def want(self, reads: Iterable[PartitionOffset]) -> None:
        """Queue the reads that figures asked for, in their order: the last is the most recently wanted."""
        for read in reads:
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
