"""A group's lag in seconds and retention headroom as columns: one tuple of plain values per field, in the
order of the group's `GroupStatus.partitions`, rather than a `LagSeconds` and a `Headroom` per partition.

Why columns: a lagging partition's figures move with the clock, so every HEAD round makes them anew, and a
round's small objects, alive while the round before still is, left pymalloc's arenas part-used by the
survivors, growing the steady-state RSS (bench/memory_breakdown.py). An object per partition and round
(`LagSeconds` 72 bytes, `Headroom` 72, the tuples of them) becomes a few tuples per group, each shared with
the round before when equal (a column of caught-up partitions, the sources, the lost messages).

Each is also a read-only sequence of the per-partition values, built on demand: the Burrow API, the status
page and tests read a partition's `LagSeconds` or `Headroom` as before; the renderer reads the columns.
Never changed once built.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import overload

from exporter.core.retention import Headroom
from exporter.core.timelag import LagSeconds, Source

__all__ = ["GroupHeadroom", "GroupLagSeconds"]


class GroupLagSeconds(Sequence[LagSeconds | None]):
    """Lag in seconds of a group's partitions; a partition without a figure (it never committed) is None in
    every column and as a `LagSeconds`."""

    __slots__ = ("reads", "seconds", "sources")

    def __init__(
        self,
        seconds: tuple[float | None, ...],
        sources: tuple[Source | None, ...],
        reads: tuple[int | None, ...],
    ) -> None:
        self.seconds = seconds
        """`LagSeconds.seconds` of each partition."""
        self.sources = sources
        """`LagSeconds.source` of each partition; None where the partition has no figure."""
        self.reads = reads
        """`LagSeconds.read` of each partition."""

    @classmethod
    def of(cls, figures: Iterable[LagSeconds | None]) -> GroupLagSeconds:
        """The columns of per-partition figures (themselves when they are columns)."""
        if isinstance(figures, GroupLagSeconds):
            return figures
        listed = list(figures)
        return cls(
            tuple(None if f is None else f.seconds for f in listed),
            tuple(None if f is None else f.source for f in listed),
            tuple(None if f is None else f.read for f in listed),
        )

    def __len__(self) -> int:
        return len(self.sources)

    @overload
    def __getitem__(self, index: int) -> LagSeconds | None: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[LagSeconds | None]: ...

    def __getitem__(self, index: int | slice) -> Sequence[LagSeconds | None] | LagSeconds | None:
        if isinstance(index, slice):
            return tuple(self)[index]
        source = self.sources[index]
        return None if source is None else LagSeconds(self.seconds[index], source, self.reads[index])

    def __iter__(self) -> Iterator[LagSeconds | None]:
        for seconds, source, read in zip(self.seconds, self.sources, self.reads, strict=True):
            yield None if source is None else LagSeconds(seconds, source, read)

    def __eq__(self, other: object) -> bool:
        """Equal to columns of the same values, and to any sequence of the same `LagSeconds`."""
        if isinstance(other, GroupLagSeconds):
            return (
                self.seconds == other.seconds and self.sources == other.sources and self.reads == other.reads
            )
        return isinstance(other, Sequence) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"GroupLagSeconds({list(self)!r})"


class GroupHeadroom(Sequence[Headroom | None]):
    """Retention headroom of a group's partitions; a partition without one (no commit, log start unknown,
    compact-only topic) is None in every column and as a `Headroom`."""

    __slots__ = ("lost", "margin", "seconds")

    def __init__(
        self,
        lost: tuple[int | None, ...],
        margin: tuple[int | None, ...],
        seconds: tuple[float | None, ...],
    ) -> None:
        self.lost = lost
        """`Headroom.lost` of each partition; None where the partition has no headroom."""
        self.margin = margin
        """`Headroom.margin` of each partition; None where the partition has no headroom."""
        self.seconds = seconds
        """`Headroom.seconds` of each partition."""

    @classmethod
    def of(cls, figures: Iterable[Headroom | None]) -> GroupHeadroom:
        """The columns of per-partition headroom (themselves when they are columns)."""
        if isinstance(figures, GroupHeadroom):
            return figures
        listed = list(figures)
        return cls(
            tuple(None if h is None else h.lost for h in listed),
            tuple(None if h is None else h.margin for h in listed),
            tuple(None if h is None else h.seconds for h in listed),
        )

    def __len__(self) -> int:
        return len(self.lost)

    @overload
    def __getitem__(self, index: int) -> Headroom | None: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Headroom | None]: ...

    def __getitem__(self, index: int | slice) -> Sequence[Headroom | None] | Headroom | None:
        if isinstance(index, slice):
            return tuple(self)[index]
        lost, margin = self.lost[index], self.margin[index]
        return None if lost is None or margin is None else Headroom(lost, margin, self.seconds[index])

    def __iter__(self) -> Iterator[Headroom | None]:
        for lost, margin, seconds in zip(self.lost, self.margin, self.seconds, strict=True):
            yield None if lost is None or margin is None else Headroom(lost, margin, seconds)

    def __eq__(self, other: object) -> bool:
        """Equal to columns of the same values, and to any sequence of the same `Headroom`s."""
        if isinstance(other, GroupHeadroom):
            return self.lost == other.lost and self.margin == other.margin and self.seconds == other.seconds
        return isinstance(other, Sequence) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"GroupHeadroom({list(self)!r})"
