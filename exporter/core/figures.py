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
from typing import Any, Generic, Self, TypeVar, overload

from exporter.core.retention import Headroom
from exporter.core.timelag import LagSeconds, Source

__all__ = ["GroupHeadroom", "GroupLagSeconds"]

_V = TypeVar("_V", LagSeconds, Headroom)
_A = TypeVar("_A")
_B = TypeVar("_B")
_C = TypeVar("_C")


class _Columns(Sequence[_V | None], Generic[_V, _A, _B, _C]):
    """Three columns, one per field of the NamedTuple `_V`, in its field order; a partition without a value
    is None in every column (its second field, a source or a margin, is never None otherwise)."""

    __slots__ = ()

    def __init__(self, a: tuple[_A | None, ...], b: tuple[_B | None, ...], c: tuple[_C | None, ...]) -> None:
        raise NotImplementedError

    def _parts(self) -> tuple[tuple[_A | None, ...], tuple[_B | None, ...], tuple[_C | None, ...]]:
        raise NotImplementedError

    @staticmethod
    def _value(a: _A | None, b: _B, c: _C | None) -> _V:
        raise NotImplementedError

    @classmethod
    def of(cls, figures: Iterable[_V | None]) -> Self:
        """The columns of per-partition values (themselves when they are columns)."""
        if isinstance(figures, cls):
            return figures
        # A value is its fields in column order (a NamedTuple); `_V` and the columns' types are tied only by
        # the subclasses' declarations, which the type checker cannot follow here.
        rows: list[tuple[Any, Any, Any]] = [(None, None, None) if f is None else f for f in figures]
        return cls(*_transposed(rows))

    @classmethod
    def shared(
        cls,
        rows: list[tuple[_A | None, _B | None, _C | None]],
        before: Self | None,
    ) -> Self:
        """The columns of `rows` (one per partition, in field order), each the column of `before` where equal,
        and `before` itself when all are: two rounds alive at once share what did not change."""
        a, b, c = _transposed(rows)
        if before is None:
            return cls(a, b, c)
        # `model.kept` inline: three calls a group cost more than the comparisons.
        was_a, was_b, was_c = before._parts()
        a = was_a if a == was_a else a
        b = was_b if b == was_b else b
        c = was_c if c == was_c else c
        if a is was_a and b is was_b and c is was_c:
            return before
        return cls(a, b, c)

    def __len__(self) -> int:
        return len(self._parts()[1])

    @overload
    def __getitem__(self, index: int) -> _V | None: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[_V | None]: ...

    def __getitem__(self, index: int | slice) -> Sequence[_V | None] | _V | None:
        if isinstance(index, slice):
            return tuple(self)[index]
        a, b, c = self._parts()
        second = b[index]
        return None if second is None else self._value(a[index], second, c[index])

    def __iter__(self) -> Iterator[_V | None]:
        value = self._value
        for a, b, c in zip(*self._parts(), strict=True):
            yield None if b is None else value(a, b, c)

    def __eq__(self, other: object) -> bool:
        """Equal to columns of the same values, and to any sequence of the same per-partition values."""
        if type(other) is type(self):
            assert isinstance(other, _Columns)
            return self._parts() == other._parts()
        return isinstance(other, Sequence) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self)!r})"


class GroupLagSeconds(_Columns[LagSeconds, float, Source, int]):
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

    def _parts(self) -> tuple[tuple[float | None, ...], tuple[Source | None, ...], tuple[int | None, ...]]:
        return self.seconds, self.sources, self.reads

    @staticmethod
    def _value(a: float | None, b: Source, c: int | None) -> LagSeconds:
        return LagSeconds(a, b, c)


class GroupHeadroom(_Columns[Headroom, int, int, float]):
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

    def _parts(self) -> tuple[tuple[int | None, ...], tuple[int | None, ...], tuple[float | None, ...]]:
        return self.lost, self.margin, self.seconds

    @staticmethod
    def _value(a: int | None, b: int, c: float | None) -> Headroom:
        # Present partitions have every field but seconds; the columns say None only for an absent one.
        assert a is not None
        return Headroom(a, b, c)


def _transposed(
    rows: Sequence[tuple[_A | None, _B | None, _C | None]],
) -> tuple[tuple[_A | None, ...], tuple[_B | None, ...], tuple[_C | None, ...]]:
    """Rows of three fields as three columns (one transposition in C)."""
    if not rows:
        return (), (), ()
    first, second, third = zip(*rows, strict=True)
    return first, second, third
