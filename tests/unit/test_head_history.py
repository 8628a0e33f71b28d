"""The HEAD history's buffers: the same answers as a plain history of lists over any observations, room
reserved once for a partition whose HEAD moves, none for an idle one.

The reference model is the history as it was before its arrays became buffers (lagwatch up to a124607),
with lists: every point appended, the trim deleting the oldest.
"""

from __future__ import annotations

import math
import sys
from array import array
from bisect import bisect_right

from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.core.head_history import HeadHistory, Policy, interpolate

T = 1_700_000_000.0
BUSY = Policy.for_refresh(10.0)


class _Reference:
    """Today's observable behaviour of `HeadHistory`, on two lists."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.offsets: list[int] = []
        self.times: list[float] = []

    def points(self) -> tuple[tuple[int, float], ...]:
        return tuple(zip(self.offsets, self.times, strict=True))

    def reached_head_at(self) -> float | None:
        if not self.offsets:
            return None
        flat = len(self.offsets) >= 2 and self.offsets[-2] == self.offsets[-1]
        return self.times[-2] if flat else self.times[-1]

    def append(self, offset: int, time_s: float) -> bool:
        if self.offsets and offset < self.offsets[-1]:
            self.offsets, self.times = [offset], [time_s]
            return True
        if self.times and time_s < self.times[-1]:
            if self.times[-1] - time_s > 1.0:
                self.offsets, self.times = [offset], [time_s]
                return False
            time_s = self.times[-1]
        if self.offsets[-2:] == [offset, offset]:
            self.times[-1] = time_s
        else:
            self.offsets.append(offset)
            self.times.append(time_s)
        stale = bisect_right(self.times, time_s - self.policy.span_s) - 1
        drop = max(stale, len(self.times) - self.policy.max_points)
        if drop > 0:
            del self.offsets[:drop], self.times[:drop]
        return False

    def head_at(self, time_s: float) -> int | None:
        at = bisect_right(self.times, time_s) - 1
        if at < 0:
            return None
        if at + 1 < len(self.times):
            gap = self.times[at + 1] - self.times[at]
            moved = self.offsets[at + 1] != self.offsets[at]
            return None if gap > self.policy.max_bracket_s and moved else self.offsets[at]
        return None if time_s - self.times[at] > self.policy.max_bracket_s else self.offsets[at]

    def interpolate(self, offset: int) -> float | None:
        after = bisect_right(self.offsets, offset)
        if after in (0, len(self.offsets)):
            return None
        low, high = self.times[after - 1], self.times[after]
        width = high - low
        if width > self.policy.max_bracket_s:
            return None
        count = self.offsets[after] - self.offsets[after - 1]
        own = count / width if width > 0 else math.inf

        def busier(other: float | None, one: float | None) -> float | None:
            # `one` when the bracket's rate lies strictly between the neighbours': traffic started or
            # stopped inside it, and came at `one`'s rate.
            return one if one is not None and one > own and (other is None or other < own) else None

        window = width
        if (rate := busier(self.rate(after - 1), self.rate(after + 1))) is not None:
            window = count / rate
            low = high - window
        elif (rate := busier(self.rate(after + 1), self.rate(after - 1))) is not None:
            window = count / rate
        share = (offset - self.offsets[after - 1] + 1) / (count + 1)
        return low + share * window

    def rate(self, end: int) -> float | None:
        if not 1 <= end < len(self.offsets) or self.times[end] <= self.times[end - 1]:
            return None
        return (self.offsets[end] - self.offsets[end - 1]) / (self.times[end] - self.times[end - 1])


POLICIES = st.sampled_from(
    [
        Policy(span_s=60.0, max_points=12, max_bracket_s=15.0, verify_after_s=5.0),
        Policy(span_s=1e6, max_points=20, max_bracket_s=25.0),
        Policy.for_refresh(10.0, span_s=200.0),
        Policy(span_s=300.0, max_points=400, max_bracket_s=30.0),
    ]
)
MOVES = st.integers(0, 99).flatmap(
    # The HEAD: mostly further or unchanged; now and then back (a re-created topic).
    lambda k: st.integers(-30, -1) if k == 0 else st.just(0) if k < 40 else st.integers(1, 50)
)
ELAPSED = st.integers(0, 99).flatmap(
    # The next observation: a refresh later mostly; a jitter back, a clock step back, an outage.
    lambda k: (
        st.just(-30.0)
        if k == 0
        else st.floats(20.0, 500.0)
        if k < 3
        else st.floats(-1.0, 0.0)
        if k < 8
        else st.floats(0.0, 12.0)
    )
)
STEPS = st.lists(st.tuples(MOVES, ELAPSED), min_size=20, max_size=300)


@settings(max_examples=150, deadline=None)
@given(POLICIES, STEPS, st.data())
def test_the_buffers_answer_as_the_plain_history_does(
    policy: Policy, steps: list[tuple[int, float]], data: st.DataObject
) -> None:
    history, reference = HeadHistory(policy), _Reference(policy)
    offset, now = 1_000, T
    for move, elapsed in steps:
        offset, now = max(0, offset + move), now + elapsed
        assert history.append(offset, now) is reference.append(offset, now)
        assert history.points() == reference.points()
        assert len(history) == len(reference.offsets)
        assert history.head == (reference.offsets[-1] if reference.offsets else None)
        assert history.reached_head_at == reference.reached_head_at()
    near = st.one_of(st.integers(offset - 400, offset + 5), st.integers(offset - 60, offset + 2))
    offsets = data.draw(st.lists(near, max_size=40))
    times = data.draw(st.lists(st.floats(now - 600, now + 40), max_size=40))
    assert [interpolate(history, o) for o in offsets] == [reference.interpolate(o) for o in offsets]
    assert [history.head_at(t) for t in times] == [reference.head_at(t) for t in times]
    for o in offsets:
        after = bisect_right(reference.offsets, o)
        low = reference.times[after - 1] if after else -math.inf
        high = reference.times[after] if after < len(reference.times) else math.inf
        assert history.bounds(o) == (low, high)
    # The state file's way out and back in: exactly the points, however much room the buffers hold.
    saved = history.arrays()
    assert (saved[0].tolist(), saved[1].tolist()) == (reference.offsets, reference.times)
    assert [a.tolist() for a in history.arrays()] == [reference.offsets, reference.times]
    restored = HeadHistory.from_arrays(policy, *saved)
    assert restored.points() == reference.points()
    # A restored history goes on as the one it was saved from.
    for move, elapsed in steps[:30]:
        offset, now = max(0, offset + move), now + elapsed
        assert restored.append(offset, now) is reference.append(offset, now)
        assert restored.points() == reference.points()


def _buffers(history: HeadHistory) -> tuple[int, int]:
    return history._offsets.buffer_info()[0], history._times.buffer_info()[0]


def _footprint(history: HeadHistory) -> int:
    return sys.getsizeof(history._offsets) + sys.getsizeof(history._times)


def test_a_moving_partition_reserves_its_room_once_and_never_moves_its_buffers() -> None:
    history = HeadHistory(BUSY)
    for i in range(9):
        history.append(100 * i, T + 10 * i)
    reserved = _buffers(history)
    footprint = _footprint(history)
    # Two hours of a HEAD that moves at every observation: twice the span, past `max_points`.
    for i in range(9, 9 + 720):
        history.append(100 * i, T + 10 * i)
        assert _buffers(history) == reserved
    # The span's 360 observations and the newest before it.
    assert len(history) == 361
    assert _footprint(history) == footprint
    assert len(history._offsets) == len(history._times) == BUSY.max_points


def test_a_restored_history_holds_its_room_at_once() -> None:
    offsets = array("q", range(0, 36_100, 100))
    times = array("d", (T + 10 * i for i in range(361)))
    history = HeadHistory.from_arrays(BUSY, offsets, times)
    reserved = _buffers(history)
    for i in range(361, 361 + 400):
        history.append(100 * i, T + 10 * i)
    assert _buffers(history) == reserved
    assert len(history._offsets) == BUSY.max_points


def test_an_idle_partition_stays_small() -> None:
    history = HeadHistory(BUSY)
    for i in range(720):
        history.append(5_000, T + 10 * i)
    assert history.points() == ((5_000, T), (5_000, T + 7190))
    assert len(history._offsets) <= 8
    assert _footprint(history) <= 2 * sys.getsizeof(array("q", range(8)))


def test_a_partition_that_moves_now_and_then_reserves_what_it_fills() -> None:
    history = HeadHistory(BUSY)
    rooms = set()
    # A move every two minutes: two points each (the new offset and the end of its flat run).
    for i in range(720 * 2):
        history.append(100 * (i // 12), T + 10 * i)
        if len(history) > 8:
            rooms.add((len(history._offsets), _buffers(history)))
    assert 60 <= len(history) <= 62
    # One reservation, about a quarter of a busy partition's, held through four spans.
    assert len(rooms) == 1
    ((room, _),) = rooms
    assert len(history) < room < BUSY.max_points // 3


def test_a_partition_idle_for_a_span_gives_its_room_back() -> None:
    history = HeadHistory(BUSY)
    for i in range(60):
        history.append(100 * i, T + 10 * i)
    assert len(history._offsets) == BUSY.max_points
    for i in range(60, 60 + 361):
        history.append(5_900, T + 10 * i)
    assert len(history) == 2
    assert len(history._offsets) == len(history._times) == 2
