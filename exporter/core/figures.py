"""A group's lag in seconds and retention headroom as columns, in the order of the group's
`GroupStatus.partitions`, rather than a `LagSeconds` and a `Headroom` per partition: the seconds as one array
of doubles (`NO_SECONDS` where a partition has no figure), every other field as one tuple of plain values.

Why columns: a lagging partition's figures move with the clock, so every HEAD round makes them anew, and a
round's small objects, alive while the round before still is, left pymalloc's arenas part-used by the
survivors, growing the steady-state RSS (bench/memory_breakdown.py). An object per partition and round
(`LagSeconds` 72 bytes, `Headroom` 72, the tuples of them, a float of seconds 24) becomes a few columns per
group, each shared with the round before when equal (a column of caught-up partitions, the sources, the lost
messages). The seconds are doubles in an array, not floats in a tuple: they move for every lagging partition,
so a tuple of them was a float object per partition and round.

Each is also a read-only sequence of the per-partition values, built on demand: the Burrow API, the status
page and tests read a partition's `LagSeconds` or `Headroom` as before; the renderer reads the columns.
Never changed once built.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cache
from typing import Any, ClassVar, Generic, Self, TypeVar, overload

from exporter.core.retention import Headroom
from exporter.core.timelag import LagSeconds, Source

__all__ = ["NO_SECONDS", "GroupHeadroom", "GroupLagSeconds"]

NO_SECONDS = -1.0
"""A seconds column's value for a partition without a figure. Lag and headroom seconds are never negative
(`timelag._age` and `retention.headroom` floor them at 0.0), so any negative value is this one. Not NaN: a
column equal to the round before's is shared, and an array holding NaN never equals itself."""

_V = TypeVar("_V", LagSeconds, Headroom)


class _Columns(Sequence[_V | None], Generic[_V]):
    """Three columns, one per field of the NamedTuple `_V`, in its field order, the field `_SECONDS_AT` a
    seconds column; a partition without a value is None in the others (its second field, a source or a
    margin, is never None otherwise)."""

    __slots__ = ()

    _SECONDS_AT: ClassVar[int]
    """Where the seconds column is: 0 or 2."""

    def __init__(self, a: Sequence[Any], b: Sequence[Any], c: Sequence[Any]) -> None:
        raise NotImplementedError

    def _parts(self) -> tuple[Sequence[Any], Sequence[Any], Sequence[Any]]:
        raise NotImplementedError

    @staticmethod
    def _value(a: Any, b: Any, c: Any) -> _V:
        raise NotImplementedError

    @classmethod
    def of(cls, figures: Iterable[_V | None]) -> Self:
        """The columns of per-partition values (themselves when they are columns)."""
        if isinstance(figures, cls):
            return figures
        return cls.shared([(None, None, None) if f is None else f for f in figures], None)

    @classmethod
    def shared(cls, rows: list[tuple[Any, Any, Any]], before: Self | None) -> Self:
        """The columns of `rows` (one per partition, in field order, None for a value without a figure), each
        the column of `before` where equal, and `before` itself when all are: two rounds alive at once share
        what did not change."""
        a, b, c = _transposed(rows)
        was_a, was_b, was_c = (None, None, None) if before is None else before._parts()
        # `model.kept` inline: three calls a group cost more than the comparisons.
        if cls._SECONDS_AT == 0:
            a = _seconds(a, was_a)
            c = was_c if c == was_c else c
        else:
            a = was_a if a == was_a else a
            c = _seconds(c, was_c)
        b = was_b if b == was_b else b
        if before is not None and a is was_a and b is was_b and c is was_c:
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
            # The seconds by their bytes: comparing arrays makes a float per element (the renderer compares
            # every group's figures with those it last wrote).
            mine, theirs, at = self._parts(), other._parts(), self._SECONDS_AT
            return (
                mine[1] == theirs[1]
                and mine[2 - at] == theirs[2 - at]
                and mine[at].tobytes() == theirs[at].tobytes()  # type: ignore[attr-defined]
            )
        return isinstance(other, Sequence) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self)!r})"


class GroupLagSeconds(_Columns[LagSeconds]):
    """Lag in seconds of a group's partitions; a partition without a figure (it never committed) is None in
    the sources and reads, `NO_SECONDS` in the seconds, and None as a `LagSeconds`."""

    __slots__ = ("reads", "seconds", "sources")

    _SECONDS_AT = 0

    def __init__(self, seconds: Sequence[Any], sources: Sequence[Any], reads: Sequence[Any]) -> None:
        self.seconds: array[float] = seconds  # type: ignore[assignment]
        """`LagSeconds.seconds` of each partition, `NO_SECONDS` where None."""
        self.sources: tuple[Source | None, ...] = sources  # type: ignore[assignment]
        """`LagSeconds.source` of each partition; None where the partition has no figure."""
        self.reads: tuple[int | None, ...] = reads  # type: ignore[assignment]
        """`LagSeconds.read` of each partition."""

    def _parts(self) -> tuple[Sequence[Any], Sequence[Any], Sequence[Any]]:
        return self.seconds, self.sources, self.reads

    @staticmethod
    def _value(a: float, b: Any, c: int | None) -> LagSeconds:
        return LagSeconds(None if a < 0 else a, b, c)


class GroupHeadroom(_Columns[Headroom]):
    """Retention headroom of a group's partitions; a partition without one (no commit, log start unknown,
    compact-only topic) is None in the lost messages and margins, `NO_SECONDS` in the seconds, and None as a
    `Headroom`."""

    __slots__ = ("lost", "margin", "seconds")

    _SECONDS_AT = 2

    def __init__(self, lost: Sequence[Any], margin: Sequence[Any], seconds: Sequence[Any]) -> None:
        self.lost: tuple[int | None, ...] = lost  # type: ignore[assignment]
        """`Headroom.lost` of each partition; None where the partition has no headroom."""
        self.margin: tuple[int | None, ...] = margin  # type: ignore[assignment]
        """`Headroom.margin` of each partition; None where the partition has no headroom."""
        self.seconds: array[float] = seconds  # type: ignore[assignment]
        """`Headroom.seconds` of each partition, `NO_SECONDS` where None."""

    def _parts(self) -> tuple[Sequence[Any], Sequence[Any], Sequence[Any]]:
        return self.lost, self.margin, self.seconds

    @staticmethod
    def _value(a: int | None, b: int, c: float) -> Headroom:
        # Present partitions have every field but seconds; the columns say None only for an absent one.
        assert a is not None
        return Headroom(a, b, None if c < 0 else c)


def _transposed(
    rows: Sequence[tuple[Any, Any, Any]],
) -> tuple[Sequence[Any], Sequence[Any], Sequence[Any]]:
    """Rows of three fields as three columns (one transposition in C)."""
    if not rows:
        return (), (), ()
    first, second, third = zip(*rows, strict=True)
    return first, second, third


def _seconds(values: Sequence[float | None], before: Sequence[Any] | None) -> array[float]:
    """The seconds column of `values`, `before` when it holds the same doubles. Packed in one C call and
    copied into the array whole: `array('d', values)` converts each element through a Python-level argument
    parser (10 times the cost), and array comparison builds a float per element, bytes comparison none."""
    count = len(values)
    if count and values[0] is None and values.count(None) == count:
        # No figure at all (lag in seconds off, no time-based retention): one column for every such group.
        return _unknown(count)
    pack = _packer(count)
    try:
        packed = pack(*values)
    except struct.error:
        # Some partitions without a figure (None).
        packed = pack(*[NO_SECONDS if s is None else s for s in values])
    if isinstance(before, array) and packed == before.tobytes():
        return before
    return array("d", packed)


@cache
def _packer(count: int) -> Callable[..., bytes]:
    """`Struct.pack` of `count` doubles (a group's partitions are a few counts)."""
    return struct.Struct(f"={count}d").pack


@cache
def _unknown(count: int) -> array[float]:
    """A column of `NO_SECONDS`, shared by every group of `count` partitions without a figure (never changed,
    as no column is)."""
    return array("d", [NO_SECONDS]) * count
