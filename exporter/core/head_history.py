"""The HEAD history of one partition: when the log reached which offset, as lagwatch observed it, and the
interpolation of a record's append time on it (docs/lag-seconds.md, section 1). Pure and synchronous.

An observation (o, t) says that at time t the log held offsets below o, so the record at c was appended in
the bracket (t_i, t_i+1] where o_i <= c < o_i+1. Its k = o_i+1 - o_i records are taken to have arrived
uniformly over a window of the bracket, and c, the j-th of them (j = c - o_i + 1), at the window's start plus
j / (k + 1) of its width: the expected time of the j-th of k uniform arrivals. The window is the whole
bracket, unless the bracket's rate lies between its neighbours' rates: then the traffic started (or stopped)
inside it, and its records came at the busier neighbour's rate, next to that neighbour (a burst that began
mid-interval ends at the bracket's end). The estimate is always inside the bracket, so its error is below the
bracket's width: one `offset_refresh` in steady state. Nothing is extrapolated: an offset outside the
history, or inside a bracket wider than `Policy.max_bracket_s` (a restart, an outage), is not answered by
interpolation.

Flat runs of the HEAD are kept as two points, the first and the last time the offset was seen: the first is
when the log reached the offset (the upper bound of the record before it), the last is the lower bound of the
next record. Keeping only the first would stretch the bracket after every idle period over the whole period.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right
from dataclasses import dataclass

__all__ = ["HeadHistory", "Policy", "interpolate"]

_CLOCK_JITTER_S = 1.0
"""A HEAD observation at most this much older than the newest one is taken as simultaneous with it; a bigger
backward step of the wall clock restarts the history, whose times are from the old clock."""


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
    non-decreasing. Two arrays rather than objects: 16 bytes per point.

    The arrays are buffers: the first `len(self)` items are the points, the rest is room. A history of up to
    `_SMALL` points grows item by item (an idle partition is a flat run of two points and stays that small);
    one that outgrows that reserves, once, room for what it will hold over the span (`_capacity`): the whole
    `max_points` for a partition whose HEAD moves at every observation. From then on points are written in
    place and the trim shifts them down, so the buffers are never reallocated while the rate holds: a fresh
    process reaches its steady footprint minutes after start instead of growing into it over the span, and
    leaves no trail of freed smaller buffers behind. A history trimmed back to `_RELEASE` points (idle for a
    span, restarted) gives its room back."""

    __slots__ = ("_offsets", "_size", "_times", "policy")

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._offsets = array("q")
        self._times = array("d")
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @classmethod
    def from_arrays(cls, policy: Policy, offsets: array[int], times: array[float]) -> HeadHistory:
        """A history of these observations (as `arrays` gave them), the newest `policy.max_points` kept. The
        caller vouches that both are non-decreasing and of equal length."""
        history = cls(policy)
        history._offsets = offsets[-policy.max_points :]
        history._times = times[-policy.max_points :]
        history._size = size = len(history._offsets)
        if size > _SMALL:
            history._reserve(history._capacity(size))
        return history

    def arrays(self) -> tuple[array[int], array[float]]:
        """The offsets and the times, oldest first, for serialising: the history's own arrays when they hold
        nothing else, copies of the points otherwise."""
        size = self._size
        if len(self._offsets) == size:
            return self._offsets, self._times
        return self._offsets[:size], self._times[:size]

    @property
    def head(self) -> int | None:
        """The newest HEAD offset observed."""
        return self._offsets[self._size - 1] if self._size else None

    @property
    def reached_head_at(self) -> float | None:
        """When the log was first seen at its newest offset."""
        offsets, times, last = self._offsets, self._times, self._size - 1
        if last < 0:
            return None
        return times[last - 1] if last >= 1 and offsets[last - 1] == offsets[last] else times[last]

    def points(self) -> tuple[tuple[int, float], ...]:
        """The observations kept, oldest first."""
        return tuple(zip(self._offsets[: self._size], self._times[: self._size], strict=True))

    def bounds(self, offset: int) -> tuple[float, float]:
        """The interval the observations prove the record at `offset` was appended in: from the newest
        observation at or below it to the next (-inf and inf where there is none)."""
        times, size = self._times, self._size
        after = bisect_right(self._offsets, offset, 0, size)
        return (
            times[after - 1] if after > 0 else -math.inf,
            times[after] if after < size else math.inf,
        )

    def head_at(self, time_s: float) -> int | None:
        """The HEAD as lagwatch saw it at `time_s`: the newest observation at or before it. None when there is
        none, or when the HEAD may have moved unseen since: the next observation is more than `max_bracket_s`
        later and shows another offset (lagwatch was down, the cluster unreachable), or there is no next one
        and the newest is more than `max_bracket_s` older."""
        times = self._times
        at = bisect_right(times, time_s, 0, self._size) - 1
        if at < 0:
            return None
        offset = self._offsets[at]
        if at + 1 < self._size:
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
        offsets, times, last = self._offsets, self._times, self._size - 1
        if last >= 0:
            if offset < offsets[last]:
                self._restart(offset, time_s)
                return True
            if time_s < times[last]:
                if times[last] - time_s > _CLOCK_JITTER_S:
                    self._restart(offset, time_s)
                    return False
                time_s = times[last]
            if offset == offsets[last] and last >= 1 and offsets[last - 1] == offset:
                times[last] = time_s
                self._trim(time_s, 0)
                return False
        # Trimmed first, so that a full history makes room in place for the new point.
        self._trim(time_s, 1)
        self._put(offset, time_s)
        return False

    def _restart(self, offset: int, time_s: float) -> None:
        self._size = 0
        self._trim(time_s, 1)
        self._put(offset, time_s)

    def _put(self, offset: int, time_s: float) -> None:
        size = self._size
        if size == len(self._offsets):
            if size < _SMALL:
                self._offsets.append(offset)
                self._times.append(time_s)
                self._size = size + 1
                return
            self._reserve(self._capacity(size + 1))
        self._offsets[size] = offset
        self._times[size] = time_s
        self._size = size + 1

    def _trim(self, now: float, adding: int) -> None:
        """Drops the points that fall out of the span at `now` and those beyond `max_points` once `adding`
        more are written, shifting the rest down in place."""
        # The newest point at or before the cutoff stays: it brackets records appended just after it.
        size = self._size
        stale = bisect_right(self._times, now - self.policy.span_s, 0, size) - 1
        drop = max(stale, size + adding - self.policy.max_points)
        if drop > 0:
            kept = size - drop
            self._offsets[:kept] = self._offsets[drop:size]
            self._times[:kept] = self._times[drop:size]
            self._size = size = kept
        if size <= _RELEASE and len(self._offsets) > _SMALL:
            self._offsets = self._offsets[:size]
            self._times = self._times[:size]

    def _capacity(self, size: int) -> int:
        """Room for a history about to hold `size` points (more than `_SMALL`): what its points' rate so far
        fills over the span, with a quarter to spare, and at least twice `size` so that a rate that rises
        reallocates a few times, not at every point; never more than `max_points`."""
        policy, times = self.policy, self._times
        covered = times[self._size - 1] - times[0]
        wanted = policy.max_points if covered <= 0 else math.ceil(1.25 * size * policy.span_s / covered)
        return min(policy.max_points, max(wanted, 2 * size))

    def _reserve(self, capacity: int) -> None:
        size = self._size
        offsets, times = array("q", _ZERO) * capacity, array("d", _ZERO_TIME) * capacity
        offsets[:size] = self._offsets[:size]
        times[:size] = self._times[:size]
        self._offsets, self._times = offsets, times


_SMALL = 8
"""Points a history holds in arrays that grow item by item (64 bytes each); one that outgrows them reserves
its room (`HeadHistory._capacity`)."""
_RELEASE = 2
"""A history trimmed to this many points gives its room back: a flat run, idle for a whole span."""
_ZERO = (0,)
_ZERO_TIME = (0.0,)


def interpolate(history: HeadHistory, offset: int) -> float | None:
    """Estimated append time of the record at `offset`, or None when no two observations no more than
    `max_bracket_s` apart bracket it. See the module docstring for the estimate and its bounds."""
    offsets, times, size = history._offsets, history._times, history._size
    after = bisect_right(offsets, offset, 0, size)
    if after == 0 or after == size:
        return None
    low, high = times[after - 1], times[after]
    width = high - low
    if width > history.policy.max_bracket_s:
        return None
    first = offsets[after - 1]
    count = offsets[after] - first
    rate = count / width if width > 0 else math.inf
    before, following = _rate(offsets, times, after - 1, size), _rate(offsets, times, after + 1, size)
    # A rate between the neighbours' means the traffic started or stopped inside the bracket: its records
    # came at the busier neighbour's rate, next to it. The window stays strictly inside the bracket.
    if following is not None and following > rate and (before is None or before < rate):
        width = count / following
        low = high - width
    elif before is not None and before > rate and (following is None or following < rate):
        width = count / before
    return low + (offset - first + 1) / (count + 1) * width


def _rate(offsets: array[int], times: array[float], end: int, size: int) -> float | None:
    """Records per second between observations `end - 1` and `end` of the first `size`; None where that is
    no bracket."""
    if end < 1 or end >= size or times[end] <= times[end - 1]:
        return None
    return (offsets[end] - offsets[end - 1]) / (times[end] - times[end - 1])
