"""Commit windows of one group-topic: Burrow's ring placement (burrow-semantics.md 2.5) on flat arrays.

A window is `1 + 5 * intervals` integers of an `array('q')` from a base index: the count of stored commits,
then offset, order, timestamp, observed time and lag per slot, oldest first (lag -1 for None). `place` is
Burrow's findConsumerOffsetDestination + mergeFrequentCommitIntoPrevious + storeConsumerOffset on that linear
ring. A snapshot hands a window on in this layout (`model.PartitionSnapshot.commits`). Pure and synchronous.

At intervals 10 a window is 408 bytes, and a whole group-partition (its share of the group, its names and
indexes included) about 500: bench/bench_scale.py measures 1,000,000 of them.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

from exporter.core.model import COMMIT_FIELDS, PartitionSnapshot

__all__ = ["APPENDED", "BACKFILL", "DUPLICATE", "INSERTED", "NO_OWNER", "GroupTopic", "Owner", "place"]

APPENDED, INSERTED, DUPLICATE, BACKFILL = 0, 1, 2, 3
"""What `place` did: appended as the newest commit, inserted out of order, dropped as a duplicate order, or
dropped as older than every commit of a full window."""

# Slot fields of a window, relative to the slot's first index.
_ORDER, _TS, _OBSERVED, _LAG = 1, 2, 3, 4
_SLOT = COMMIT_FIELDS

Owner = tuple[str, str, str]
"""(client host, client id, member id) of the member a partition is assigned to."""
NO_OWNER: Owner = ("", "", "")


def place(
    ring: array[int],
    base: int,
    cap: int,
    min_distance: int,
    offset: int,
    order: int,
    ts: int,
    now: int,
    head: int,
) -> int:
    """Place one commit in the window at `ring[base:]` holding at most `cap` commits. `head` < 0 means the
    HEAD is unknown. Returns APPENDED, INSERTED, DUPLICATE or BACKFILL."""
    n = ring[base]
    first = base + 1
    if n == cap and ring[first + _ORDER] >= order:
        return BACKFILL
    newest = first + _SLOT * (n - 1)
    if n == 0 or ring[newest + _ORDER] < order:
        lag = -1 if head < 0 else max(head - offset, 0)
        if n and ts - ring[newest + _TS] < min_distance:
            # The slot keeps the burst's first timestamp, or a commit rate above min-distance would never
            # open a new slot.
            ring[newest] = offset
            ring[newest + _ORDER] = order
            ring[newest + _OBSERVED] = now
            ring[newest + _LAG] = lag
            return APPENDED
        if n == cap:
            ring[first:newest] = ring[first + _SLOT : newest + _SLOT]
            slot = newest
        else:
            ring[base] = n + 1
            slot = newest + _SLOT
        ring[slot] = offset
        ring[slot + _ORDER] = order
        ring[slot + _TS] = ts
        ring[slot + _OBSERVED] = now
        ring[slot + _LAG] = lag
        return APPENDED

    i = n - 1
    while i >= 0 and ring[first + _SLOT * i + _ORDER] > order:
        i -= 1
    prev = first + _SLOT * i
    end = first + _SLOT * n
    if i < 0:
        # Older than everything stored; a full ring already returned BACKFILL, so there is a free slot.
        ring[first + _SLOT : end + _SLOT] = ring[first:end]
        ring[base] = n + 1
        slot = first
    elif ring[prev + _ORDER] == order:
        return DUPLICATE
    elif ts - ring[prev + _TS] < min_distance and not (n == cap and i == 0):
        # Burrow replaces the oldest slot of a full ring outright: its predecessor in the ring is the newest
        # commit, whose order is higher, so the merge check never looks at the slot being replaced.
        ring[prev] = offset
        ring[prev + _ORDER] = order
        ring[prev + _OBSERVED] = now
        ring[prev + _LAG] = -1
        return INSERTED
    elif n == cap:
        ring[first:prev] = ring[first + _SLOT : prev + _SLOT]
        slot = prev
    else:
        ring[prev + 2 * _SLOT : end + _SLOT] = ring[prev + _SLOT : end]
        ring[base] = n + 1
        slot = prev + _SLOT
    ring[slot] = offset
    ring[slot + _ORDER] = order
    ring[slot + _TS] = ts
    ring[slot + _OBSERVED] = now
    ring[slot + _LAG] = -1
    return INSERTED


_NO_WINDOWS = array("q")
_NO_OWNERS: dict[int, Owner] = {}
"""Read, never written: the owners of a group-topic that has none."""
_EXACT = 1 << 12
"""Below this many integers a group-topic's windows are kept in an array of the exact size; beyond, growing
it by copying would cost more than the spare room."""

# A NamedTuple's own constructor is a Python-level lambda around tuple.__new__; calling tuple.__new__ directly
# halves the cost of the 100,000 snapshots an evaluation round of 100,000 partitions reads.
_new_tuple = tuple.__new__


class GroupTopic:
    """The windows and owners of one group's partitions of one topic, dense by partition id like Burrow's
    slice: a partition below `size` without a window is a placeholder.

    Columnar, so that a million group-partitions are not a million Python objects: the windows lie end to end
    in one `array('q')`, `data`, partition p's from index p * `stride`, up to the highest partition that has
    one; a placeholder below it has the count -1 and costs a window's room, one above it nothing (consumers
    commit the partitions of a topic they read, so the room is rarely wasted). The storage's commit path reads
    `data` directly: it runs once per replayed record."""

    __slots__ = ("_owners", "data", "size", "stride")

    def __init__(self, stride: int) -> None:
        # Shared until the first window replaces it: `open` and `forget` never change a short array in place.
        self.data = _NO_WINDOWS
        self.size = 0
        self.stride = stride
        """Integers per window."""
        # None until a partition gets an owner: an empty dict per group-topic costs 6 bytes per
        # group-partition.
        self._owners: dict[int, Owner] | None = None

    def pad(self, count: int) -> int:
        """Placeholders up to `count` partitions; returns how many were added."""
        missing = count - self.size
        if missing <= 0:
            return 0
        self.size = count
        return missing

    def open(self, partition: int, empty: array[int]) -> int:
        """The index in `data` of the window of a partition below `size`; a placeholder gets an empty one
        (`empty`: a window without commits, `stride` integers)."""
        data = self.data
        base = partition * self.stride
        if base < len(data):
            if data[base] < 0:
                data[base] = 0
            return base
        if base > len(data):
            # Placeholders below the new window.
            hole = empty[:]
            hole[0] = -1
            data = self.data = data + hole * ((base - len(data)) // self.stride)
        if base < _EXACT:
            # An exact fit: the over-allocation of `extend` would add tens of bytes to each group-partition.
            self.data = data + empty
        else:
            data.extend(empty)
        return base

    def own(self, partition: int, owner: Owner) -> bool:
        """Set the partition's owner; returns whether it changed."""
        owners = self._owners
        if owners is None:
            owners = self._owners = {}
        elif owners.get(partition) == owner:
            return False
        owners[partition] = owner
        return True

    def disown(self, partition: int) -> bool:
        """Forget the partition's owner; returns whether it had one."""
        return self._owners is not None and self._owners.pop(partition, None) is not None

    def disown_all(self) -> bool:
        """Forget every owner; returns whether there was one."""
        had = bool(self._owners)
        self._owners = None
        return had

    def has(self, partition: int) -> bool:
        """Whether the partition has a window (possibly without commits)."""
        base = partition * self.stride
        return 0 <= partition < self.size and base < len(self.data) and self.data[base] >= 0

    def forget(self, partition: int) -> bool:
        """Make the partition a placeholder again and drop its owner; returns whether it had a window."""
        if not self.has(partition):
            return False
        data, stride = self.data, self.stride
        data[partition * stride] = -1
        end = len(data)
        while end and data[end - stride] < 0:
            end -= stride
        if end < len(data):
            # Placeholders above the highest window take no room.
            self.data = data[:end]
        self.disown(partition)
        return True

    def windowless(self) -> bool:
        """No partition has a window."""
        # `forget` trims the placeholders above the highest window and `open` never leaves any.
        return not self.data

    def snapshot(
        self,
        topic: str,
        heads: list[array[int] | None],
        intervals: int,
        out: list[PartitionSnapshot],
    ) -> None:
        """Append the partitions, in order, to `out`. `heads` holds the topic's HEAD histories by partition
        (`[n, offset, observed_ms, ...]`); `intervals` is the size of a window."""
        owners = self._owners or _NO_OWNERS
        data, stride, size = self.data, self.stride, self.size
        # One count per window, then -1 for the placeholders above the highest; the topic's HEAD histories
        # cut or padded to as many partitions: one walk over both without index arithmetic.
        counts = data[::stride].tolist()
        counts += [-1] * (size - len(counts))
        histories = heads[:size] if len(heads) >= size else [*heads, *[None] * (size - len(heads))]
        base = -stride
        for partition, (n, history) in enumerate(zip(counts, histories, strict=True)):
            base += stride
            brokers = () if history is None else tuple(history[1 : 2 * history[0] + 1 : 2])
            host, client, member = owners.get(partition, NO_OWNER)
            lag: int | None = None
            commits: Sequence[int]
            if n < 0:
                slots, commits = 0, array("q")
            else:
                # The window's own layout, one slice of the array: the rules read its columns, no Commit is
                # built here, and no integer object either until a rule reads one (a caught-up partition's
                # rules read none: 50 integers a partition that `tolist` made and freed cost a sixth of a
                # round).
                slots, commits = intervals, data[base + 1 : base + 1 + _SLOT * n]
                if n and brokers:
                    lag = max(brokers[-1] - commits[-_SLOT], 0)
            out.append(
                _new_tuple(
                    PartitionSnapshot, (topic, partition, slots, commits, brokers, lag, host, client, member)
                )
            )
