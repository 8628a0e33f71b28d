"""The rows of each unit of metric families: one list per row variable, named as `families.py` names them.

Parallel lists rather than a tuple per row: at 100k partitions tuples made the garbage collector walk every
status object and doubled the render time.
"""

from __future__ import annotations

from array import array
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from itertools import chain
from typing import TYPE_CHECKING, cast

from exporter.core.figures import NO_SECONDS, GroupHeadroom, GroupLagSeconds
from exporter.core.model import GroupStatus, Partitions, same_objects
from exporter.core.retention import Headroom, TopicRetention
from exporter.core.timelag import SOURCE_CODES, LagSeconds, Source
from exporter.exposition.text_format import escape
from exporter.exposition.writers import topic_sums

if TYPE_CHECKING:
    from exporter.exposition.cluster_view import BrokerView, ClusterView
    from exporter.settings import CompatibleSet as Compat


@cache
def _no_lags(count: int) -> GroupLagSeconds:
    """No lag in seconds for `count` partitions, one for every group of that many partitions: the block
    renderer keeps the rows of every group (2.4 MB of these at 10,000 groups without lag in seconds, were
    each its own)."""
    return GroupLagSeconds.of((None,) * count)


@cache
def _no_headroom(count: int) -> GroupHeadroom:
    """No retention headroom for `count` partitions, shared like `_no_lags`."""
    return GroupHeadroom.of((None,) * count)


@dataclass(slots=True)
class GroupRows:
    """Groups to render."""

    kafka: bool
    """Whether kafka_exporter's per-topic sums are wanted."""
    lb: list[str] = field(default_factory=list)
    """`{kafka_cluster="..",group=".."` (no closing brace: partition labels extend it)."""
    blb: list[str] = field(default_factory=list)
    """`{cluster="..",consumer_group=".."`."""
    klb: list[str] = field(default_factory=list)
    """`{consumergroup="..",kafka_cluster=".."`: kafka_exporter's label, then lagwatch's, in Go's sorted
    order."""
    g: list[GroupStatus] = field(default_factory=list)
    lags: list[GroupLagSeconds] = field(default_factory=list)
    """Per group, one entry per partition (all None when the view has no lag in seconds for the group)."""
    mx: list[float | None] = field(default_factory=list)
    src: list[Sequence[tuple[str, int]]] = field(default_factory=list)
    """Per group, (source, committed partitions) for each source with partitions, in code order."""
    headroom: list[GroupHeadroom] = field(default_factory=list)
    """Per group, one entry per partition (all None when the view has no retention headroom for the group)."""
    lost: list[int | None] = field(default_factory=list)
    """Per group, the sum of its partitions' lost messages; None when no partition has a headroom."""
    mh: list[float | None] = field(default_factory=list)
    sums: list[list[tuple[str, int, int | None]]] = field(default_factory=list)

    def add(
        self,
        cluster: str,
        status: GroupStatus,
        lags: Sequence[LagSeconds | None] | None,
        headroom: Sequence[Headroom | None] | None,
    ) -> None:
        group = escape(status.group)
        self.lb.append(f'{{kafka_cluster="{cluster}",group="{group}"')
        self.blb.append(f'{{cluster="{cluster}",consumer_group="{group}"')
        self.klb.append(f'{{consumergroup="{group}",kafka_cluster="{cluster}"')
        self.g.append(status)
        if self.kafka:
            self.sums.append(topic_sums(status))
        self._add_headroom(GroupHeadroom.of(headroom) if headroom else _no_headroom(len(status.partitions)))
        if lags is None:
            self.lags.append(_no_lags(len(status.partitions)))
            self.mx.append(None)
            self.src.append(())
            return
        columns = GroupLagSeconds.of(lags)
        self.lags.append(columns)
        self.mx.append(_top(columns.seconds))
        self.src.append(_source_counts(columns.sources))

    def _add_headroom(self, headroom: GroupHeadroom) -> None:
        self.headroom.append(headroom)
        self.lost.append(_total(headroom.lost))
        self.mh.append(_low(headroom.seconds))

    def without_labels(self) -> GroupRows:
        """The rows without their label sets (a third of their memory), which the groups' names give."""
        return GroupRows(
            self.kafka,
            [],
            [],
            [],
            self.g,
            self.lags,
            self.mx,
            self.src,
            self.headroom,
            self.lost,
            self.mh,
            self.sums,
        )

    def head(self, count: int) -> GroupRows:
        return GroupRows(
            self.kafka,
            self.lb[:count],
            self.blb[:count],
            self.klb[:count],
            self.g[:count],
            self.lags[:count],
            self.mx[:count],
            self.src[:count],
            self.headroom[:count],
            self.lost[:count],
            self.mh[:count],
            self.sums[:count],
        )


# A group's figures are most often all known: those go to max, min and sum whole, in C. A seconds column
# says "no figure" with a negative value (`figures.NO_SECONDS`), below every figure.


def _top(seconds: array[float]) -> float | None:
    """The greatest known figure, None when none is known."""
    top = max(seconds, default=NO_SECONDS)
    return None if top < 0 else top


def _low(seconds: array[float]) -> float | None:
    """The smallest known figure, None when none is known."""
    low = min(seconds, default=NO_SECONDS)
    if low >= 0:
        return low
    return min((s for s in seconds if s >= 0), default=None)


def _total(figures: tuple[int | None, ...]) -> int | None:
    """The sum of the known figures, None when none is known."""
    if figures and None not in figures:
        return sum(cast("tuple[int, ...]", figures))
    known = [n for n in figures if n is not None]
    return sum(known) if known else None


@lru_cache(maxsize=4096)
def _source_counts(sources: tuple[Source | None, ...]) -> tuple[tuple[Source, int], ...]:
    """(source, committed partitions) for each source with partitions, in code order: one tuple for every
    group with the same sources (a few combinations: most partitions are caught up or interpolated), shared
    by the rows of every render."""
    counts: dict[Source, int] = {}
    for source in sources:
        if source is not None:
            counts[source] = counts.get(source, 0) + 1
    return tuple((source, counts[source]) for source in SOURCE_CODES if source in counts)


@dataclass(slots=True)
class PartitionRows:
    """The partitions of groups, flattened; the open label sets only where a family of `compat` uses them."""

    st: list[int]
    lag: list[int | None]
    off: list[int | None]
    cts: list[int | None]
    own: list[str]
    cid: list[str]
    mid: list[str]
    cmp: list[float]
    ls: list[float | None]
    lsrc: list[Source | None]
    hl: list[int | None]
    hm: list[int | None]
    hs: list[float | None]
    lb: list[str]
    blb: list[str]
    klb: list[str]

    @classmethod
    def of(
        cls,
        groups: GroupRows,
        compat: Collection[Compat] | None,
        kept: tuple[GroupRows, PartitionRows] | None = None,
    ) -> PartitionRows:
        """Labels are built once and shared by every family; None for `compat` builds none (for counting, or
        for comparing: `label` adds them). `kept`, rows of the same partitions and theirs: their seconds
        where the groups' figures are the very same, rather than made again of the arrays (a float per
        partition, compared as such) when only statuses were replaced."""
        columns = [g.partitions for g in groups.g]
        if kept is not None and same_objects(kept[0].lags, groups.lags):
            lag_seconds = kept[1].ls
        else:
            lag_seconds = [None if s < 0 else s for lags in groups.lags for s in lags.seconds]
        if kept is not None and same_objects(kept[0].headroom, groups.headroom):
            headroom_seconds = kept[1].hs
        else:
            headroom_seconds = [None if s < 0 else s for rooms in groups.headroom for s in rooms.seconds]
        rows = cls(
            [status for c in columns for status in c.statuses],
            list(chain.from_iterable(map(Partitions.current_lags, columns))),
            list(chain.from_iterable(map(Partitions.committed, columns))),
            list(chain.from_iterable(map(Partitions.commit_times_ms, columns))),
            [owner for c in columns for owner in c.owners],
            [client for c in columns for client in c.client_ids],
            [member for c in columns for member in c.member_ids],
            [complete for c in columns for complete in c.completes],
            lag_seconds,
            [s for lags in groups.lags for s in lags.sources],
            [n for rooms in groups.headroom for n in rooms.lost],
            [n for rooms in groups.headroom for n in rooms.margin],
            headroom_seconds,
            [],
            [],
            [],
        )
        if compat is not None:
            rows.label(groups, compat)
        return rows

    def label(self, groups: GroupRows, compat: Collection[Compat]) -> None:
        """Builds the open label sets of the partitions, those of `groups`, these rows' groups."""
        self.lb = _partition_labels(groups.lb, groups.g, "topic", "partition")
        if "burrow" in compat:
            self.blb = _partition_labels(groups.blb, groups.g, "topic", "partition")
        if "kafka_exporter" in compat:
            self.klb = _partition_labels(groups.klb, groups.g, "partition", "topic")


def _partition_labels(group_labels: list[str], statuses: list[GroupStatus], *order: str) -> list[str]:
    """Open label set of every partition: the group's, then topic and partition in the given order."""
    names = [
        (lb, g.partitions.topics, g.partitions.numbers) for lb, g in zip(group_labels, statuses, strict=True)
    ]
    if order == ("topic", "partition"):
        return [
            f'{lb},topic="{escape(topic)}",partition="{partition}"'
            for lb, topics, numbers in names
            for topic, partition in zip(topics, numbers, strict=True)
        ]
    return [
        f'{lb},partition="{partition}",topic="{escape(topic)}"'
        for lb, topics, numbers in names
        for topic, partition in zip(topics, numbers, strict=True)
    ]


@dataclass(slots=True)
class TopicRows:
    """Topics to render, with escaped cluster and topic names."""

    c: list[str] = field(default_factory=list)
    t: list[str] = field(default_factory=list)
    heads: list[Sequence[int | None]] = field(default_factory=list)
    starts: list[Sequence[int | None]] = field(default_factory=list)
    r: list[TopicRetention | None] = field(default_factory=list)

    def add(
        self,
        cluster: str,
        topic: str,
        heads: Sequence[int | None],
        starts: Sequence[int | None],
        retention: TopicRetention | None,
    ) -> None:
        self.c.append(cluster)
        self.t.append(escape(topic))
        self.heads.append(heads)
        self.starts.append(starts)
        self.r.append(retention)

    @classmethod
    def of(cls, clusters: Sequence[ClusterView]) -> TopicRows:
        rows = cls()
        for view in clusters:
            cluster = escape(view.name)
            for topic, heads in view.topics:
                starts = view.topic_starts.get(topic, ())
                rows.add(cluster, topic, heads, starts, view.topic_retention.get(topic))
        return rows

    def head(self, count: int) -> TopicRows:
        return TopicRows(
            self.c[:count], self.t[:count], self.heads[:count], self.starts[:count], self.r[:count]
        )


@dataclass(slots=True)
class ClusterRows:
    lb: list[str]
    v: Sequence[ClusterView]
    """The clusters as they are now."""
    s: Sequence[ClusterView]
    """The same clusters as the exposition's data series show them: `v`, or the views of an earlier render."""

    @classmethod
    def of(cls, clusters: Sequence[ClusterView], shown: Sequence[ClusterView] | None = None) -> ClusterRows:
        """The rows of `clusters`, whose data series show `shown` (the same clusters, in the same order)."""
        return cls([f'{{kafka_cluster="{escape(v.name)}"' for v in clusters], clusters, shown or clusters)


@dataclass(slots=True)
class BrokerRows:
    lb: list[str]
    b: list[BrokerView]

    @classmethod
    def of(cls, clusters: Sequence[ClusterView]) -> BrokerRows:
        rows = [
            (f'{{kafka_cluster="{escape(v.name)}",broker="{b.node}"', b) for v in clusters for b in v.brokers
        ]
        return cls([lb for lb, _ in rows], [b for _, b in rows])


@dataclass(slots=True)
class CapRows:
    series: list[int]
    dropped: list[int]
