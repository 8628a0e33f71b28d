"""One evaluation round of one cluster, as one frozen result.

A round re-evaluates the groups whose inputs changed (`evaluator.EvaluationCache`), then gives every
partition of every group its lag in seconds and its retention headroom: a lagging partition's figure moves
with the clock, so all groups are visited, not only the re-evaluated ones. It is a generator that yields
between batches of groups, so the shell can let its event loop serve in between, and returns one `Round`:
the statuses, the figures computed from exactly those statuses, the exact reads they asked for and the time
the round took. The shell publishes it with one assignment; everything the exposition reads comes from the
published round, so statuses and figures can never come from different rounds.

Pure: `now` and `clock` are arguments and the timer is injected; nothing here writes to the storage or to
the lag-in-seconds state (the reads wanted are handed back, not queued).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import NamedTuple, Protocol

from exporter.core.evaluator import EvaluationCache, GroupSource
from exporter.core.exact_answers import PartitionOffset
from exporter.core.figures import GroupHeadroom, GroupLagSeconds
from exporter.core.model import GroupStatus, not_found
from exporter.core.retention import TopicRetention, headroom
from exporter.core.timelag import LagSeconds, Source

__all__ = [
    "GroupFigures",
    "GroupHeadroom",
    "GroupLagSeconds",
    "LagView",
    "Round",
    "RoundSource",
    "evaluation_round",
    "group_figures",
]


class RoundSource(GroupSource, Protocol):
    """What a round reads of the storage: the groups' windows, and the topics' log starts and retention."""

    def start_offsets(self, topic: str) -> tuple[int | None, ...] | None: ...

    def topic_retention(self, topic: str) -> TopicRetention | None: ...


class LagView(Protocol):
    """What a round reads of lag in seconds (`timelag.TimeLag` provides it)."""

    def figure(self, topic: str, partition: int, committed: int, head: int | None, now: float) -> LagSeconds:
        """The partition's lag in seconds at `now`; `read` names the exact read it wants, if any."""
        ...


class GroupFigures(NamedTuple):
    """A group's figures, computed from one status of it."""

    lag_seconds: GroupLagSeconds | None
    """None when lag in seconds is off."""
    headroom: GroupHeadroom
    reads: tuple[PartitionOffset, ...]
    """The exact reads the lag figures asked for."""


@dataclass(frozen=True, slots=True)
class Round:
    """What one evaluation round of a cluster found; published whole, never changed afterwards."""

    cluster: str
    statuses: Mapping[str, GroupStatus] = field(default_factory=lambda: MappingProxyType({}))
    """Every group's status, by name (read-only)."""
    lag_seconds: Mapping[str, GroupLagSeconds] = field(default_factory=lambda: MappingProxyType({}))
    """Lag in seconds by group, of exactly these statuses; empty when it is off."""
    headroom: Mapping[str, GroupHeadroom] = field(default_factory=lambda: MappingProxyType({}))
    """Retention headroom by group, of exactly these statuses."""
    reads: tuple[PartitionOffset, ...] = ()
    """Exact reads the lag figures asked for, least recently wanted first."""
    as_of: float | None = None
    """The instant evaluated at (the clock, or earlier while the committed offsets were behind); None for the
    empty result before the first round."""
    clock: float | None = None
    """The clock when the round ran: the instant of the lag figures."""
    evaluated: int = 0
    """Groups re-evaluated (the others kept their cached status)."""
    seconds: float | None = None
    """How long the round took, batches and the pauses between them included."""

    def status(self, group: str) -> GroupStatus:
        """The group's status, or Burrow's NOTFOUND answer for a group the round did not have."""
        found = self.statuses.get(group)
        return found if found is not None else not_found(self.cluster, group)

    def with_group(self, group: str, status: GroupStatus | None, figures: GroupFigures | None) -> Round:
        """This round with one group replaced (re-evaluated at once after an admin deletion) or removed
        (None); everything else unchanged."""
        statuses, lags, rooms = dict(self.statuses), dict(self.lag_seconds), dict(self.headroom)
        for mapping in (statuses, lags, rooms):
            mapping.pop(group, None)
        if status is not None and figures is not None:
            statuses[group] = status
            if figures.lag_seconds is not None:
                lags[group] = figures.lag_seconds
            rooms[group] = figures.headroom
        return replace(
            self,
            statuses=MappingProxyType(statuses),
            lag_seconds=MappingProxyType(lags),
            headroom=MappingProxyType(rooms),
        )


def evaluation_round(
    cache: EvaluationCache,
    storage: RoundSource,
    timelag: LagView | None,
    now: float,
    clock: float,
    *,
    timer: Callable[[], float],
    batch: int = 500,
    previous: Round | None = None,
) -> Generator[int, None, Round]:
    """One round: statuses at `now` (re-evaluating what changed in `cache`), then lag in seconds at `clock`
    and retention headroom for every partition of every group. Yields after every `batch` groups (how many
    the current pass has done); returns the round, which took `timer()` units from its first step to its
    last. A figure equal to its figure in `previous` (the round this one replaces) is that object, so that
    the two rounds alive at once share it."""
    started = timer()
    evaluated = yield from cache.refresh_in_steps(storage, now, batch)
    statuses = cache.statuses()
    figures = _Figures(storage, timelag, clock)
    lags: dict[str, GroupLagSeconds] = {}
    rooms: dict[str, GroupHeadroom] = {}
    reads: list[PartitionOffset] = []
    lags_before = _NONE if previous is None else previous.lag_seconds
    rooms_before = _NONE if previous is None else previous.headroom
    for count, (group, status) in enumerate(statuses.items(), 1):
        group_lags, rooms[group], group_reads = figures.of(
            status, lags_before.get(group), rooms_before.get(group)
        )
        if group_lags is not None:
            lags[group] = group_lags
        if group_reads:
            reads += group_reads
        if count % batch == 0:
            yield count
    return Round(
        cache.cluster,
        statuses,
        MappingProxyType(lags),
        MappingProxyType(rooms),
        tuple(reads),
        now,
        clock,
        evaluated,
        timer() - started,
    )


def group_figures(
    status: GroupStatus, storage: RoundSource, timelag: LagView | None, clock: float
) -> GroupFigures:
    """The figures of one group's status, as a round computes them."""
    return _Figures(storage, timelag, clock).of(status)


class _Figures:
    """Lag in seconds and retention headroom of statuses, with each topic's log starts and retention looked
    up once per round."""

    __slots__ = ("_clock", "_retention", "_starts", "_storage", "_timelag")

    def __init__(self, storage: RoundSource, timelag: LagView | None, clock: float) -> None:
        self._storage = storage
        self._timelag = timelag
        self._clock = clock
        self._starts: dict[str, tuple[int | None, ...]] = {}
        self._retention: dict[str, TopicRetention | None] = {}

    def of(
        self,
        status: GroupStatus,
        lags_before: GroupLagSeconds | None = None,
        rooms_before: GroupHeadroom | None = None,
    ) -> GroupFigures:
        """The group's figures. `lags_before` and `rooms_before` are its figures in the round before: a
        column equal to its column there is that tuple, and columns all the same as there are that object, so
        that the two rounds alive at once share what did not move (a caught-up group's lags, the sources,
        the lost messages)."""
        timelag, clock = self._timelag, self._clock
        figure = None if timelag is None else timelag.figure
        # Each partition's figures as they come (a `LagSeconds`, a `Headroom`), turned into columns once per
        # group: they live until the group's end only, so their memory is used again by the next group's.
        lags: list[tuple[float | None, Source | None, int | None]] = []
        rooms: list[tuple[int | None, int | None, float | None]] = []
        reads: list[PartitionOffset] = []
        columns = status.partitions
        for topic, partition, committed, current in zip(
            columns.topics, columns.numbers, columns.committed(), columns.lags, strict=True
        ):
            # A partition that never had a commit has neither figure.
            if committed is None:
                lags.append(_NO_LAG)
                rooms.append(_NO_ROOM)
                continue
            seconds: float | None = None
            if figure is not None:
                # The HEAD that the current lag implies (current_lag is HEAD minus committed offset,
                # floored at 0; -1 while unknown).
                lag = figure(topic, partition, committed, None if current < 0 else committed + current, clock)
                lags.append(lag)
                seconds = lag[0]
                if lag[2] is not None:
                    reads.append(PartitionOffset(topic, partition, lag[2]))
            starts = self._starts.get(topic)
            if starts is None:
                starts = self._starts[topic] = self._storage.start_offsets(topic) or ()
                self._retention[topic] = self._storage.topic_retention(topic)
            start = starts[partition] if partition < len(starts) else None
            rooms.append(headroom(committed, start, self._retention[topic], seconds) or _NO_ROOM)
        return GroupFigures(
            None if figure is None else GroupLagSeconds.shared(lags, lags_before),
            GroupHeadroom.shared(rooms, rooms_before),
            tuple(reads),
        )


_NO_LAG = (None, None, None)
"""A partition's lag in seconds where it has none."""
_NO_ROOM = (None, None, None)
"""A partition's retention headroom where it has none."""


_NONE: Mapping[str, None] = MappingProxyType({})
"""No figures before (the first round)."""
