"""Exact reads' answers: what the shell found at a partition's offset (`Appended`, `NothingBefore`,
`BelowLogStart`, `Untimed`), the key of a read (`PartitionOffset`) and the cache of those answers
(`ExactCache`). Pure; the reads themselves are the shell's (`exporter/sources/exact_reads.py`) and
`timelag.TimeLag` decides which are wanted."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "Appended",
    "BelowLogStart",
    "ExactAnswer",
    "ExactCache",
    "NothingBefore",
    "PartitionOffset",
    "Untimed",
]


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
