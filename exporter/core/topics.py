"""One topic as the storage knows it from metadata: partition count, recent HEAD offsets, log-start offsets,
retention settings and a version. Pure and synchronous."""

from __future__ import annotations

from array import array

from exporter.core.retention import TopicRetention

__all__ = ["Topic"]


class Topic:
    """A topic's partitions. A HEAD history is `[n, offset, observed_ms, ...]` oldest first, at most
    `intervals` pairs; None until a HEAD arrives."""

    __slots__ = ("count", "heads", "retention", "starts", "version")

    def __init__(self, count: int, version: int) -> None:
        self.count = count
        self.heads: list[array[int] | None] = [None] * count
        # Newest log-start offset per partition; None until one arrives. Not part of the version: statuses do
        # not depend on it (retention headroom is computed beside them).
        self.starts: list[int | None] = [None] * count
        self.retention: TopicRetention | None = None
        self.version = version

    def grow(self, count: int, version: int) -> None:
        """More partitions (partition counts only grow)."""
        self.heads.extend([None] * (count - self.count))
        self.starts.extend([None] * (count - self.count))
        self.count = count
        self.version = version

    def add_head(self, partition: int, offset: int, now_ms: int, empty: array[int]) -> bool:
        """Append a HEAD offset to a partition below `count`, `empty` being an empty history of the wanted
        length. Returns whether the history reads differently afterwards."""
        history = self.heads[partition]
        if history is None:
            history = self.heads[partition] = empty[:]
        n = history[0]
        cap = len(history) // 2
        # An idle partition's full history of one repeated offset reads the same after another sample: keep
        # the version, so the groups of quiet topics are not re-evaluated every round for nothing.
        unchanged = n == cap and history[1 : 2 * n : 2].count(offset) == n
        if n < cap:
            history[0] = n + 1
            base = 2 * n + 1
        else:
            base = 2 * n - 1
            history[1:base] = history[3 : base + 2]
        history[base] = offset
        history[base + 1] = now_ms
        return not unchanged

    def head_offsets(self) -> tuple[int | None, ...]:
        """Newest HEAD offset per partition, None where none arrived yet."""
        return tuple(None if h is None else h[2 * h[0] - 1] for h in self.heads)

    def head_history(self, partition: int) -> tuple[tuple[int, int], ...]:
        """(offset, observed_ms) pairs of the partition's recent HEAD offsets, oldest first."""
        history = self.heads[partition] if 0 <= partition < self.count else None
        if history is None:
            return ()
        return tuple((history[i], history[i + 1]) for i in range(1, 2 * history[0] + 1, 2))
