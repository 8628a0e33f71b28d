"""Prometheus text exposition (format 0.0.4) of evaluated groups, topic HEAD offsets and per-cluster health.

Pure: takes plain data, returns bytes. Hand-rolled rather than built on prometheus_client's `generate_latest`,
which costs about 0.5 s per 100k samples; a scrape of 10,000 groups x 10 partitions must stay well under that.
The families are declared in `families.py` (the contract documented in docs/metrics.md); this module gathers
their rows and applies the series cap, `writers.py` writes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from exporter.core.model import Status
from exporter.exposition.cluster_view import ClusterView
from exporter.exposition.families import DATA_UNITS, Family, GroupUnit
from exporter.exposition.rows import BrokerRows, CapRows, ClusterRows, GroupRows, PartitionRows, TopicRows
from exporter.exposition.text_format import escape
from exporter.exposition.writers import WRITERS, bound, counter, enabled, header

if TYPE_CHECKING:
    from exporter.settings import CompatibleSet as Compat
    from exporter.settings import Granularity

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

__all__ = [
    "CONTENT_TYPE",
    "RenderOptions",
    "RenderResult",
    "admit",
    "group_costs",
    "health",
    "render",
]


@dataclass(frozen=True, slots=True)
class RenderOptions:
    granularity: Granularity = "partition"
    """"group" drops every series with a `partition` label."""
    burrow_compatible: bool = False
    """Also emit Burrow's `burrow_kafka_*` families, with Burrow's labels."""
    kafka_exporter: bool = False
    """Also emit danielqsj/kafka_exporter's `kafka_consumergroup_*` and `kafka_topic_*` families, with its
    labels (and `kafka_cluster`)."""
    max_series: int = 1_000_000
    """Cap on the data series (everything but the health and cap gauges); see docs/metrics.md."""

    @property
    def compat(self) -> frozenset[Compat]:
        """The compatible sets to emit beside lagwatch's own families."""
        found: set[Compat] = set()
        if self.burrow_compatible:
            found.add("burrow")
        if self.kafka_exporter:
            found.add("kafka_exporter")
        return frozenset(found)


@dataclass(frozen=True, slots=True)
class RenderResult:
    body: bytes
    series: int
    """Data series in `body`."""
    dropped: int
    """Data series left out because of the cap."""

    @property
    def capped(self) -> bool:
        return self.dropped > 0


def render(clusters: Sequence[ClusterView], options: RenderOptions = RenderOptions()) -> RenderResult:
    """Render every family as one contiguous block, samples in cluster, group, topic, partition order."""
    compat = options.compat
    groups, topics, plan = _planned(clusters, options)
    admitted = groups.head(plan.groups)
    rows: dict[str, object] = {
        "group": admitted,
        "partition": PartitionRows.of(admitted.head(plan.partition_groups), compat),
        "topic": topics.head(plan.topics),
    }
    families = enabled(compat)
    text = _Text()
    for f in families:
        if f.unit in DATA_UNITS:
            text.family(f, WRITERS[f.name](rows[f.unit]))
    series = text.samples
    body = "".join(text.parts).encode() + health(clusters, series, plan.dropped, compat)
    return RenderResult(body=body, series=series, dropped=plan.dropped)


def health(
    clusters: Sequence[ClusterView],
    series: int,
    dropped: int,
    compat: frozenset[Compat],
    shown: Sequence[ClusterView] | None = None,
) -> bytes:
    """The health families (units `cluster`, `broker` and `cap`, never capped nor counted), which end the
    exposition after the data families: of `clusters`, whose data series the exposition shows as `shown`
    (the same clusters in the same order, as an earlier render saw them; by default `clusters` themselves),
    `series` of them, `dropped` left out by the cap."""
    rows: dict[str, object] = {
        "cluster": ClusterRows.of(clusters, shown),
        "broker": BrokerRows.of(clusters),
        "cap": CapRows([series], [dropped]),
    }
    text = _Text()
    for f in enabled(compat):
        if f.unit in rows:
            text.family(f, WRITERS[f.name](rows[f.unit]))
    return "".join(text.parts).encode()


def _planned(clusters: Sequence[ClusterView], options: RenderOptions) -> tuple[GroupRows, TopicRows, _Plan]:
    groups = GroupRows(kafka="kafka_exporter" in options.compat)
    for view in clusters:
        cluster = escape(view.name)
        for g in view.groups:
            if g.status != Status.NOTFOUND:
                groups.add(cluster, g, view.lag_seconds.get(g.group), view.headroom.get(g.group))
    topics = TopicRows.of(clusters) if options.granularity == "partition" else TopicRows()
    return groups, topics, _plan(groups, topics, options)


@dataclass(frozen=True, slots=True)
class _Plan:
    groups: int
    """Groups whose group-level series are emitted: the first ones in render order."""
    partition_groups: int
    """Of those, the groups whose partition-level series are emitted."""
    topics: int
    dropped: int


def _plan(groups: GroupRows, topics: TopicRows, options: RenderOptions) -> _Plan:
    """Admit units in priority order (each group's group-level series, then each group's partition series,
    then each topic's HEAD series) and stop at the first that does not fit: what survives a cap is a stable
    prefix, and never half a group."""
    compat = options.compat
    per_partition = options.granularity == "partition"
    # A cheap upper bound first, so the exact count is only paid for when the cap may bite.
    partitions = sum(len(g.partitions) for g in groups.g) if per_partition else 0
    group_most, group_rest = bound("group", compat)
    partition_most, _ = bound("partition", compat)
    topic_most, topic_rest = bound("topic", compat)
    most = (
        group_most * len(groups.g)
        + group_rest(groups)
        + partition_most * partitions
        + topic_most * len(topics.t)
        + topic_rest(topics)
    )
    if most <= options.max_series:
        return _Plan(len(groups.g), len(groups.g) * per_partition, len(topics.t), 0)
    tiers = (
        group_costs(groups, "group", compat),
        group_costs(groups, "partition", compat) if per_partition else [],
        counter("topic", compat)(topics),
    )
    (admitted_groups, partition_groups, admitted_topics), series = admit(tiers, options.max_series)
    return _Plan(admitted_groups, partition_groups, admitted_topics, sum(map(sum, tiers)) - series)


def admit(tiers: Sequence[Sequence[int]], room: int) -> tuple[list[int], int]:
    """The cap's admission: the units of each tier, tier after tier, while their series fit in `room`; the
    first that does not fit ends it, so what survives is a prefix. Returns the units admitted per tier and
    their series. A cost may stand for a run of units (a bucket of groups): costs are never negative, so the
    run fits exactly when its last unit would, and where it does not, the caller admits again inside it."""
    admitted: list[int] = []
    series = 0
    for costs in tiers:
        count = 0
        for cost in costs:
            if series + cost > room:
                return [*admitted, count, *(0 for _ in tiers[len(admitted) + 1 :])], series
            series += cost
            count += 1
        admitted.append(count)
    return admitted, series


def group_costs(groups: GroupRows, unit: GroupUnit, compat: frozenset[Compat]) -> list[int]:
    """Series of each group in the unit: its group-level series, or all its partitions' series."""
    if unit == "group":
        return counter("group", compat)(groups)
    costs = iter(counter("partition", compat)(PartitionRows.of(groups, None)))
    return [sum(next(costs) for _ in g.partitions) for g in groups.g]


class _Text:
    """The exposition being built: family blocks in order, and the number of samples in them."""

    __slots__ = ("parts", "samples")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.samples = 0

    def family(self, family: Family, samples: list[str]) -> None:
        if samples:
            self.parts.append(header(family))
            self.parts.extend(samples)
            self.samples += len(samples)
