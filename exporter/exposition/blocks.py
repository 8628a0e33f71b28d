"""The exposition rendered again only where it changed: the same text as `metrics.render`, kept as blocks.

Groups are cut into buckets of about 25, in render order; a bucket's samples of one family are one
block, and the exposition is, family by family, the family's header and its blocks in bucket order, so every
family stays one contiguous block. Between two renders a bucket whose groups kept their status objects (the
evaluator replaces a status only when its inputs changed), lag in seconds and retention headroom keeps its
blocks. Otherwise, while its groups and their partitions are the same (so are the label sets), each family is
compared on what it reads of the bucket's rows and the rows kept from the last render (`writers.DIFFERS`,
derived from the family's expressions), and only the families whose samples may differ are written again: in
the steady state of a busy cluster every group is re-evaluated at every HEAD round, but only its lag-type
figures move, and comparing costs a fraction of writing (status, owner, lag-seconds source, lost messages...
are kept). Bucket edges are chosen by the group names (a hash), so a new or deleted group moves the edges of
its own bucket only. Topic families are written every time: they are small and change every HEAD round. The
health families are not part of it: `metrics_endpoint` writes them at each scrape (`metrics.health`).

Each block is kept deflated only (`gzip_parts`): the kept blocks are the one rendered copy, in its
compressed form; a scrape without gzip inflates them as it streams.

The series cap is applied to the blocks in `metrics.render`'s admission order, from the samples each block
counted when it was written: whole buckets while their group-level (then partition-level) series fit; only the
bucket that straddles the cap is looked into group by group, and its admitted groups written as blocks of
their own, kept while that bucket and the room left for it stay the same. The buckets after it keep their
blocks, for when the exposition fits again, and are left out. So a capped render costs what an uncapped one
does, where a full pass over every group at each render (counting, then `metrics.render`) cost about 1.2 s of
CPU at 100,000 group-partitions.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from exporter.core.model import GroupStatus, Status
from exporter.core.retention import Headroom
from exporter.core.timelag import LagSeconds
from exporter.exposition import gzip_parts
from exporter.exposition.cluster_view import ClusterView
from exporter.exposition.families import Family, GroupUnit
from exporter.exposition.gzip_parts import Part
from exporter.exposition.metrics import RenderOptions, admit, group_costs
from exporter.exposition.rows import GroupRows, PartitionRows, TopicRows
from exporter.exposition.text_format import escape
from exporter.exposition.writers import DIFFERS, WRITERS, counter, enabled, header
from exporter.gc_pause import untrack

__all__ = ["BlockRenderer", "Exposition"]

_BUCKET = 25
"""Groups per bucket on average: a bucket ends after a group whose name hashes to 0 modulo this. Smaller
buckets write less again when few groups change, and cost more parts (each deflated and CRC-combined) and
more calls when many do: at 10,000 groups x 10 partitions, 10, 25 and 100 took 720, 450 and 490 ms of CPU for
a first render, 40, 21 and 12 ms with no group re-evaluated, 120, 220 and 390 ms with 1% re-evaluated."""
_BUCKET_MAX = 4 * _BUCKET
_NUMBERS = attrgetter("partitions.numbers")
_TOPICS = attrgetter("partitions.topics")
_NONE = (gzip_parts.EMPTY, 0)


@dataclass(frozen=True, slots=True)
class Exposition:
    """The data families of the text exposition as parts: their data concatenated are the body, their
    deflated data the body of one gzip stream (`gzip_parts.HEADER` first, `gzip_parts.finish` last). The
    health families (`metrics.health`) follow them, written at each scrape: they are of the scrape's instant,
    these of the render's."""

    parts: list[Part]
    series: int
    """Data series in the exposition."""
    dropped: int
    """Data series left out because of the cap."""
    crc: int
    """CRC-32 of the body."""
    size: int
    """Bytes in the body."""
    deflated: int
    """Bytes of the parts' deflated data: a gzip scrape's length less `gzip_parts.HEADER` and the end, counted
    once here (in the render's worker thread) rather than part by part at every scrape on the event loop."""

    @property
    def capped(self) -> bool:
        return self.dropped > 0

    @property
    def body(self) -> bytes:
        return b"".join(gzip_parts.inflated(self.parts))


@dataclass(slots=True)
class _Bucket:
    cluster: str
    """Escaped cluster name."""
    statuses: list[GroupStatus] = field(default_factory=list)
    lags: list[Sequence[LagSeconds | None] | None] = field(default_factory=list)
    headroom: list[Sequence[Headroom | None] | None] = field(default_factory=list)
    blocks: dict[str, tuple[Part, int]] = field(default_factory=dict)
    """(block, samples) by family name."""
    series: dict[GroupUnit, int] = field(default_factory=dict)
    """Samples of its blocks by unit ("group", "partition"): its costs under the cap."""
    rows: GroupRows | None = None
    """Its rows without their label sets, once its blocks are written: what the next render compares with."""

    @property
    def key(self) -> tuple[str, str]:
        return self.cluster, self.statuses[0].group

    def same(self, kept: _Bucket) -> bool:
        """Whether nothing changed since `kept`, the bucket of the same first group at the last render: the
        same status objects (the evaluator replaces a status only when its inputs changed), equal lag in
        seconds and headroom."""
        return (
            len(kept.statuses) == len(self.statuses)
            and all(a is b for a, b in zip(self.statuses, kept.statuses, strict=True))
            and self.lags == kept.lags
            and self.headroom == kept.headroom
        )


@dataclass(frozen=True, slots=True)
class _Cut:
    """Where the cap cuts a unit's series: inside `bucket`, whose first groups fit in `room`."""

    unit: GroupUnit
    bucket: _Bucket
    room: int
    blocks: dict[str, tuple[Part, int]]
    """(block, samples) by family name, of the unit's families for the groups admitted."""


class BlockRenderer:
    """Renders clusters' views like `metrics.render` up to its health families, keeping each bucket's blocks
    between renders. Not thread-safe: one render at a time."""

    def __init__(self, options: RenderOptions) -> None:
        self._options = options
        self._families = enabled(options.compat)
        self._kafka = "kafka_exporter" in options.compat
        self._per_partition = options.granularity == "partition"
        self._group_families = [f for f in self._families if f.unit == "group"] + (
            [f for f in self._families if f.unit == "partition"] if self._per_partition else []
        )
        self._headers = {f.name: gzip_parts.part(header(f).encode()) for f in self._families}
        self._unit_families: dict[GroupUnit, list[Family]] = {
            unit: [f for f in self._group_families if f.unit == unit] for unit in ("group", "partition")
        }
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._sources: list[tuple[str, object, object, object]] = []
        """Each cluster's name, statuses, lag in seconds and headroom at the last render, by identity."""
        self._cut: _Cut | None = None
        self.rendered_buckets = 0
        """Buckets written (wholly or in part) by the last render, for benchmarks and tests."""

    def render(self, clusters: Sequence[ClusterView]) -> Exposition:
        self.rendered_buckets = 0
        sources: list[tuple[str, object, object, object]] = [
            (v.name, v.groups, v.lag_seconds, v.headroom) for v in clusters
        ]
        if _same_sources(sources, self._sources):
            # The same round of every cluster (the clock, HEAD offsets or health moved): every bucket is the
            # one kept, without cutting the groups into buckets again and comparing each.
            buckets = list(self._buckets.values())
        else:
            buckets = [self._blocks(bucket) for bucket in _buckets(clusters)]
            self._buckets = {b.key: b for b in buckets}
            untrack((self._buckets,))
        self._sources = sources
        topics = TopicRows.of(clusters) if self._per_partition else TopicRows()
        topic_costs = counter("topic", self._options.compat)(topics)
        (whole_groups, whole_partitions, admitted_topics), admitted = admit(
            ([b.series["group"] for b in buckets], [b.series["partition"] for b in buckets], topic_costs),
            self._options.max_series,
        )
        room = self._options.max_series - admitted
        whole: dict[GroupUnit, int] = {"group": whole_groups, "partition": whole_partitions}
        cut = None
        if whole_groups < len(buckets):
            cut = self._cut_in("group", buckets[whole_groups], room)
        elif whole_partitions < len(buckets):
            cut = self._cut_in("partition", buckets[whole_partitions], room)
        self._cut = cut
        if admitted_topics < len(topics.t):
            topics = topics.head(admitted_topics)
        families: list[tuple[Family, list[Part], int]] = []
        for f in self._families:
            if f.unit == "group" or f.unit == "partition":
                blocks = [b.blocks.get(f.name, _NONE) for b in buckets[: whole[f.unit]]]
                if cut is not None and cut.unit == f.unit:
                    blocks.append(cut.blocks.get(f.name, _NONE))
                families.append((f, [p for p, _ in blocks], sum(n for _, n in blocks)))
            elif f.unit == "topic":
                block, samples = _block(WRITERS[f.name](topics))
                families.append((f, [block], samples))
        series = sum(n for _, _, n in families)
        total = sum(b.series["group"] + b.series["partition"] for b in buckets) + sum(topic_costs)
        parts = [
            part
            for f, blocks, samples in families
            if samples
            for part in (self._headers[f.name], *(b for b in blocks if b.size))
        ]
        crc, size = gzip_parts.crc_of(parts)
        deflated = sum(len(p.deflated) for p in parts)
        return Exposition(parts, series, total - series, crc, size, deflated)

    def _blocks(self, bucket: _Bucket) -> _Bucket:
        """The bucket with its blocks: the kept ones where nothing their family reads changed, new ones
        elsewhere."""
        kept = self._buckets.get(bucket.key)
        if kept is not None and bucket.same(kept):
            return kept
        rows = self._rows(bucket)
        old: dict[str, object] = {}
        """The kept rows of each unit whose label sets did not change, to compare the new ones with."""
        compared: tuple[GroupRows, PartitionRows] | None = None
        if kept is not None and kept.rows is not None and _same_groups(kept.rows, rows):
            old["group"] = kept.rows
            if self._per_partition and _same_partitions(kept.rows, rows):
                compared = kept.rows, PartitionRows.of(kept.rows, None)
                old["partition"] = compared[1]
        partitions = PartitionRows.of(rows, None, compared) if self._per_partition else None
        new: dict[str, object] = {"group": rows, "partition": partitions}
        kept_blocks = kept.blocks if kept is not None else {}
        labelled = False
        for f in self._group_families:
            if f.unit in old and not DIFFERS[f.name](old[f.unit], new[f.unit]):
                bucket.blocks[f.name] = kept_blocks[f.name]
                continue
            if f.unit == "partition" and partitions is not None and not labelled:
                partitions.label(rows, self._options.compat)
                labelled = True
            bucket.blocks[f.name] = _block(WRITERS[f.name](new[f.unit]))
        if kept is None or any(bucket.blocks[f] is not block for f, block in kept_blocks.items()):
            self.rendered_buckets += 1
        for unit in ("group", "partition"):
            bucket.series[unit] = sum(bucket.blocks[f.name][1] for f in self._unit_families[unit])
        bucket.rows = rows.without_labels()
        untrack(_kept(bucket))
        return bucket

    def _cut_in(self, unit: GroupUnit, bucket: _Bucket, room: int) -> _Cut:
        """The blocks of the bucket's first groups whose series of `unit` fit in `room`: the same as at the
        last render while the bucket and the room are (the clock alone moved nothing of it)."""
        kept = self._cut
        if kept is not None and kept.bucket is bucket and kept.unit == unit and kept.room == room:
            return kept
        self.rendered_buckets += 1
        rows = self._rows(bucket)
        (count,), _ = admit((group_costs(rows, unit, self._options.compat),), room)
        admitted = rows.head(count)
        source = admitted if unit == "group" else PartitionRows.of(admitted, self._options.compat)
        blocks = {f.name: _block(WRITERS[f.name](source)) for f in self._unit_families[unit]}
        return _Cut(unit, bucket, room, blocks)

    def _rows(self, bucket: _Bucket) -> GroupRows:
        rows = GroupRows(kafka=self._kafka)
        for status, lags, headroom in zip(bucket.statuses, bucket.lags, bucket.headroom, strict=True):
            rows.add(bucket.cluster, status, lags, headroom)
        return rows


def _buckets(clusters: Sequence[ClusterView]) -> list[_Bucket]:
    """The groups to render in render order, cut into buckets at names that hash to 0 modulo `_BUCKET` (and
    every `_BUCKET_MAX` groups), and at every cluster."""
    buckets: list[_Bucket] = []
    for view in clusters:
        bucket = _Bucket(escape(view.name))
        lag_seconds, headroom = view.lag_seconds, view.headroom
        for g in view.groups:
            if g.status == Status.NOTFOUND:
                continue
            bucket.statuses.append(g)
            bucket.lags.append(lag_seconds.get(g.group))
            bucket.headroom.append(headroom.get(g.group))
            if hash(g.group) % _BUCKET == 0 or len(bucket.statuses) == _BUCKET_MAX:
                buckets.append(bucket)
                bucket = _Bucket(bucket.cluster)
        if bucket.statuses:
            buckets.append(bucket)
    return buckets


def _same_sources(
    new: list[tuple[str, object, object, object]], old: list[tuple[str, object, object, object]]
) -> bool:
    """Whether the clusters are the same, in the same order, with the same objects of statuses, lag in
    seconds and headroom: a published round's (the runtime hands a round's sorted statuses out as one tuple,
    and a round is never changed once published; a list of statuses could be, so it never counts as the
    same)."""
    return len(new) == len(old) and all(
        a[0] == b[0] and type(a[1]) is tuple and a[1] is b[1] and a[2] is b[2] and a[3] is b[3]
        for a, b in zip(new, old, strict=True)
    )


def _same_groups(old: GroupRows, new: GroupRows) -> bool:
    """Whether the rows hold the same groups in the same order: the same label sets of group families."""
    return len(old.g) == len(new.g) and all(a.group == b.group for a, b in zip(old.g, new.g, strict=True))


def _same_partitions(old: GroupRows, new: GroupRows) -> bool:
    """Whether the same groups (`old`, `new`) hold the same partitions in the same order: the same label sets
    of partition families. A group's columns of names are most often the very tuples of the status before."""
    return all(
        (a is b or a == b) and (c is d or c == d)
        for a, b, c, d in zip(
            map(_NUMBERS, old.g), map(_NUMBERS, new.g), map(_TOPICS, old.g), map(_TOPICS, new.g), strict=True
        )
    )


def _kept(bucket: _Bucket) -> Iterator[object]:
    """What a written bucket keeps until it is written again, to take out of the cycle collector's lists for
    good (`gc_pause.untrack`): the bucket, its lists and dicts, its rows and their lists, its blocks. The
    renderer's own containers, filled once and holding only statuses, figures, strings, numbers and parts,
    never anything that could refer back to them. At 1,000,000 group-partitions some 0.36 M objects, which
    the full collection every `full_collection_every` walked."""
    rows = bucket.rows
    yield bucket
    yield from (bucket.statuses, bucket.lags, bucket.headroom, bucket.blocks, bucket.series)
    for block in bucket.blocks.values():
        yield block
        yield block[0]
    if rows is not None:
        yield rows
        yield from (rows.lb, rows.blb, rows.klb, rows.g, rows.lags, rows.mx, rows.src, rows.headroom)
        yield from (rows.lost, rows.mh, rows.sums)
        yield from rows.src
        yield from rows.sums


def _block(samples: list[str]) -> tuple[Part, int]:
    """A family's samples as one deflated part, and how many they are."""
    return gzip_parts.part("".join(samples).encode()), len(samples)
