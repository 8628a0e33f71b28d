"""Commit windows of one group-topic: Burrow's ring placement (burrow-semantics.md 2.5) on flat arrays.

A window is `1 + 5 * intervals` integers of an `array('q')` from a base index: the count of stored commits,
then offset, order, timestamp, observed time and lag per slot, oldest first (lag -1 for None). `place` is
Burrow's findConsumerOffsetDestination + mergeFrequentCommitIntoPrevious + storeConsumerOffset on that linear
ring. `model.Commit` objects are materialised only when a snapshot is read. Pure and synchronous.
"""

from __future__ import annotations

from array import array

from exporter.core.model import Commit, PartitionSnapshot

__all__ = ["APPENDED", "BACKFILL", "DUPLICATE", "INSERTED", "NO_OWNER", "GroupTopic", "Owner", "place"]

APPENDED, INSERTED, DUPLICATE, BACKFILL = 0, 1, 2, 3
"""What `place` did: appended as the newest commit, inserted out of order, dropped as a duplicate order, or
dropped as older than every commit of a full window."""

# Slot fields of a window, relative to the slot's first index.
_ORDER, _TS, _OBSERVED, _LAG = 1, 2, 3, 4
_SLOT = 5

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


# A NamedTuple's own constructor is a Python-level lambda around tuple.__new__; calling tuple.__new__ directly
# halves the cost of the million Commits an evaluation round of 100,000 partitions materialises.
_new_tuple = tuple.__new__


class GroupTopic:
    """The windows and owners of one group's partitions of one topic, dense by partition id like Burrow's
    slice: a partition below `size` without a window is a placeholder."""

    __slots__ = ("_parts", "owners", "size")

    def __init__(self) -> None:
        self._parts: list[array[int] | None] = []
        self.size = 0
        self.owners: dict[int, Owner] = {}

    def pad(self, count: int) -> int:
        """Placeholders up to `count` partitions; returns how many were added."""
        missing = count - self.size
        if missing <= 0:
            return 0
        self._parts.extend([None] * missing)
        self.size = count
        return missing

    def open(self, partition: int, empty: array[int]) -> tuple[array[int], int]:
        """The (array, base index) of the partition's window, below `size`; a placeholder gets a copy of
        `empty` (a window without commits)."""
        ring = self._parts[partition]
        if ring is None:
            ring = self._parts[partition] = empty[:]
        return ring, 0

    def has(self, partition: int) -> bool:
        """Whether the partition has a window (possibly without commits)."""
        return 0 <= partition < self.size and self._parts[partition] is not None

    def forget(self, partition: int) -> bool:
        """Make the partition a placeholder again and drop its owner; returns whether it had a window."""
        if not self.has(partition):
            return False
        self._parts[partition] = None
        self.owners.pop(partition, None)
        return True

    def windowless(self) -> bool:
        """No partition has a window."""
        return all(ring is None for ring in self._parts)

    def snapshot(
        self,
        topic: str,
        heads: list[array[int] | None],
        unfilled: tuple[None, ...],
        out: list[PartitionSnapshot],
    ) -> None:
        """Append the partitions, in order, to `out`. `heads` holds the topic's HEAD histories by partition
        (`[n, offset, observed_ms, ...]`); `unfilled` is one None per slot of a window."""
        owners = self.owners
        for partition, ring in enumerate(self._parts):
            history = heads[partition] if partition < len(heads) else None
            brokers = () if history is None else tuple(history[1 : 2 * history[0] + 1 : 2])
            host, client, member = owners.get(partition, NO_OWNER)
            lag: int | None = None
            if ring is None:
                window: tuple[Commit | None, ...] = ()
            else:
                n = ring[0]
                fields = iter(ring[1 : _SLOT * n + 1].tolist())
                # zip of one iterator five times walks the flat slots five fields at a time.
                window = (
                    *unfilled[n:],
                    *[
                        _new_tuple(Commit, (offset, order, ts, held if held >= 0 else None, observed))
                        for offset, order, ts, observed, held in zip(
                            fields, fields, fields, fields, fields, strict=True
                        )
                    ],
                )
                if n and brokers:
                    lag = max(brokers[-1] - ring[1 + _SLOT * (n - 1)], 0)
            out.append(PartitionSnapshot(topic, partition, window, brokers, lag, host, client, member))
