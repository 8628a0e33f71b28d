"""Prometheus text exposition (format 0.0.4) of evaluated groups, topic HEAD offsets and per-cluster health.

Pure: takes plain data, returns bytes. Hand-rolled rather than built on prometheus_client's `generate_latest`,
which costs about 0.5 s per 100k samples; a scrape of 10,000 groups x 10 partitions must stay well under that.
The names, labels and cap rules are a contract documented in docs/metrics.md.

Speed notes: each family is one list comprehension of f-strings over parallel lists. Per-row tuples are
avoided on purpose: at 100k partitions they made the garbage collector walk every status object and doubled
the time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from exporter.model import GroupStatus, PartitionStatus, Status

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Granularity = Literal["partition", "group"]


@dataclass(frozen=True, slots=True)
class ClusterView:
    """Everything the renderer needs about one Kafka cluster, read from memory by the shell."""

    name: str
    """The `kafka_cluster` label."""
    groups: Sequence[GroupStatus]
    """Evaluated groups, sorted by name; NOTFOUND groups are skipped."""
    topics: Sequence[tuple[str, Sequence[int | None]]]
    """(topic, newest HEAD offset per partition, None while unknown), sorted by topic."""
    up: bool = True
    """Whether the last HEAD refresh of the cluster succeeded."""
    caught_up: bool = True
    """Whether the initial read of the committed offsets has reached the end it saw at start."""
    head_refresh_ms: int | None = None
    """Wall-clock time of the last successful HEAD refresh; None before the first one."""
    evaluation_seconds: float | None = None
    """Duration of the last evaluation round; None before the first one."""


@dataclass(frozen=True, slots=True)
class RenderOptions:
    granularity: Granularity = "partition"
    """"group" drops every series with a `partition` label."""
    burrow_compatible: bool = False
    """Also emit Burrow's `burrow_kafka_*` families, with Burrow's labels."""
    max_series: int = 1_000_000
    """Cap on the data series (everything but the health and cap gauges); see docs/metrics.md."""


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


_GROUP_STATES = ((Status.OK, "OK"), (Status.WARN, "WARN"), (Status.ERR, "ERR"))
# Indexed by Status: a tuple lookup is twice as fast as formatting the IntEnum for every sample.
_CODE = tuple(str(int(status)) for status in Status)
_MS_PER_S = 1000

# HELP texts say where a value comes from; Burrow's own texts are kept verbatim for its families.
_HELP = {
    "lagwatch_group_status": "Burrow status of the consumer group: 1 OK, 2 WARN, 3 ERR.",
    "lagwatch_group_state": "Burrow status of the consumer group as a state set: 1 for the current one.",
    "lagwatch_group_total_lag": "Sum of the known current lags of the group's partitions, in messages.",
    "lagwatch_group_max_lag": "Greatest known current lag among the group's partitions, in messages.",
    "lagwatch_group_complete_ratio": "Share of the group's partitions whose commit window is full.",
    "lagwatch_group_partitions": "Partitions of the topics the group commits to, uncommitted ones included.",
    "lagwatch_partition_status": "Burrow status of the partition: 1 OK, 2 WARN, 4 STOP, 5 STALL, 6 REWIND.",
    "lagwatch_partition_lag": "Newest HEAD offset minus newest committed offset; absent while unknown.",
    "lagwatch_partition_committed_offset": "Newest offset the group committed for the partition.",
    "lagwatch_partition_commit_timestamp_seconds": "Broker timestamp of the group-partition's newest commit.",
    "lagwatch_partition_owner_info": "Member owning the group-partition, from the group's membership.",
    "lagwatch_topic_partition_end_offset": "Newest HEAD (log end) offset of the partition, polled.",
    "burrow_kafka_consumer_status": (
        "The status of the consumer group. It is calculated from the highest status for the individual "
        "partitions. Statuses are an index list from NOTFOUND, OK, WARN, or ERR"
    ),
    "burrow_kafka_consumer_lag_total": "The sum of all partition current lag values for the group",
    "burrow_kafka_consumer_partition_lag": (
        "Number of messages the consumer group is behind by for a partition as reported by Burrow"
    ),
    "burrow_kafka_consumer_current_offset": "Latest offset that Burrow is storing for this partition",
    "burrow_kafka_topic_partition_status": (
        "The status of topic partition. It is calculated from the highest status for the individual "
        "partitions. Statuses are an index list from OK, WARN, STOP, STALL, REWIND"
    ),
    "burrow_kafka_topic_partition_offset": (
        "Latest offset the topic that Burrow is storing for this partition"
    ),
    "lagwatch_cluster_up": "1 when the last HEAD refresh of the cluster succeeded, else 0.",
    "lagwatch_offsets_caught_up": "1 once the first read of the committed offsets reached its end.",
    "lagwatch_head_refresh_timestamp_seconds": "Wall-clock time of the last successful HEAD refresh.",
    "lagwatch_evaluation_duration_seconds": "Duration of the last evaluation round.",
    "lagwatch_series_exposed": "Data series in this exposition (all but these health and cap gauges).",
    "lagwatch_series_dropped": "Data series left out of this exposition by the max_series cap.",
    "lagwatch_series_cap_exceeded": "1 when the max_series cap left series out of this exposition, else 0.",
}


def render(clusters: Sequence[ClusterView], options: RenderOptions = RenderOptions()) -> RenderResult:
    """Render every family as one contiguous block, samples in cluster, group, topic, partition order."""
    groups = _Groups()
    topics = _Topics()
    for view in clusters:
        cluster = _escape(view.name)
        for g in view.groups:
            if g.status != Status.NOTFOUND:
                groups.add(cluster, g)
        if options.granularity == "partition":
            for topic, heads in view.topics:
                topics.add(cluster, topic, heads)
    plan = _plan(groups, topics, options)
    text = _Text()
    admitted = groups.head(plan.groups)
    _group_families(text, admitted, options.burrow_compatible)
    _partition_families(text, admitted.head(plan.partition_groups), options.burrow_compatible)
    _topic_families(text, topics.head(plan.topics), options.burrow_compatible)
    series = text.samples
    _health_families(text, clusters, series, plan.dropped)
    return RenderResult(body="".join(text.parts).encode(), series=series, dropped=plan.dropped)


@dataclass(slots=True)
class _Groups:
    """Groups to render, as parallel lists of escaped open labels and statuses."""

    labels: list[str] = field(default_factory=list)
    """`{kafka_cluster="..",group=".."` (no closing brace: partition labels extend it)."""
    burrow_labels: list[str] = field(default_factory=list)
    """`{cluster="..",consumer_group=".."`."""
    statuses: list[GroupStatus] = field(default_factory=list)

    def add(self, cluster: str, status: GroupStatus) -> None:
        group = _escape(status.group)
        self.labels.append(f'{{kafka_cluster="{cluster}",group="{group}"')
        self.burrow_labels.append(f'{{cluster="{cluster}",consumer_group="{group}"')
        self.statuses.append(status)

    def head(self, count: int) -> _Groups:
        return _Groups(self.labels[:count], self.burrow_labels[:count], self.statuses[:count])


@dataclass(slots=True)
class _Topics:
    """Topics to render, as parallel lists of escaped cluster and topic names and HEAD offsets."""

    clusters: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    heads: list[Sequence[int | None]] = field(default_factory=list)

    def add(self, cluster: str, topic: str, heads: Sequence[int | None]) -> None:
        self.clusters.append(cluster)
        self.names.append(_escape(topic))
        self.heads.append(heads)

    def head(self, count: int) -> _Topics:
        return _Topics(self.clusters[:count], self.names[:count], self.heads[:count])


@dataclass(frozen=True, slots=True)
class _Plan:
    groups: int
    """Groups whose group-level series are emitted: the first ones in render order."""
    partition_groups: int
    """Of those, the groups whose partition-level series are emitted."""
    topics: int
    dropped: int


def _plan(groups: _Groups, topics: _Topics, options: RenderOptions) -> _Plan:
    """Admit units in priority order (each group's group-level series, then each group's partition series,
    then each topic's HEAD series) and stop at the first that does not fit: what survives a cap is a stable
    prefix, and never half a group."""
    burrow = options.burrow_compatible
    per_partition = options.granularity == "partition"
    # A cheap upper bound first, so the exact count is only paid for when the cap may bite.
    bound = (
        len(groups.statuses) * (10 if burrow else 8)
        + per_partition * sum(len(g.partitions) for g in groups.statuses) * (8 if burrow else 5)
        + sum(len(heads) for heads in topics.heads) * (2 if burrow else 1)
    )
    if bound <= options.max_series:
        return _Plan(len(groups.statuses), len(groups.statuses) * per_partition, len(topics.heads), 0)
    tiers = (
        [_group_series(g, burrow) for g in groups.statuses],
        [_partition_series(g, burrow) for g in groups.statuses] if per_partition else [],
        [_topic_series(heads, burrow) for heads in topics.heads],
    )
    admitted = [0, 0, 0]
    series = 0
    for tier, costs in enumerate(tiers):
        for cost in costs:
            if series + cost > options.max_series:
                return _Plan(admitted[0], admitted[1], admitted[2], sum(map(sum, tiers)) - series)
            series += cost
            admitted[tier] += 1
    return _Plan(admitted[0], admitted[1], admitted[2], 0)


# The three counters below must agree with what the family writers emit; the tests check that they do.
def _group_series(g: GroupStatus, burrow: bool) -> int:
    max_lag = g.maxlag is not None and g.maxlag.current_lag is not None
    return 7 + max_lag + (2 if burrow else 0)


def _partition_series(g: GroupStatus, burrow: bool) -> int:
    total = 0
    for p in g.partitions:
        lag = p.current_lag is not None
        end = p.end is not None
        total += 1 + lag + 2 * end + bool(p.owner or p.client_id)
        if burrow:
            full = p.complete == 1.0
            total += lag + full + (full and end)
    return total


def _topic_series(heads: Sequence[int | None], burrow: bool) -> int:
    return sum(head is not None for head in heads) * (2 if burrow else 1)


class _Text:
    """The exposition being built: family blocks in order, and the number of samples in them."""

    __slots__ = ("parts", "samples")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.samples = 0

    def family(self, name: str, samples: list[str]) -> None:
        if samples:
            self.parts.append(f"# HELP {name} {_HELP[name]}\n# TYPE {name} gauge\n")
            self.parts.extend(samples)
            self.samples += len(samples)


def _group_families(text: _Text, groups: _Groups, burrow: bool) -> None:
    rows = list(zip(groups.labels, groups.statuses, strict=True))
    text.family(
        "lagwatch_group_status", [f"lagwatch_group_status{lb}}} {_CODE[g.status]}\n" for lb, g in rows]
    )
    text.family(
        "lagwatch_group_state",
        [
            f'lagwatch_group_state{lb},status="{name}"}} {1 if g.status == state else 0}\n'
            for lb, g in rows
            for state, name in _GROUP_STATES
        ],
    )
    text.family(
        "lagwatch_group_total_lag", [f"lagwatch_group_total_lag{lb}}} {g.totallag}\n" for lb, g in rows]
    )
    text.family(
        "lagwatch_group_max_lag",
        [
            f"lagwatch_group_max_lag{lb}}} {g.maxlag.current_lag}\n"
            for lb, g in rows
            if g.maxlag is not None and g.maxlag.current_lag is not None
        ],
    )
    ratios: dict[float, str] = {}
    text.family(
        "lagwatch_group_complete_ratio",
        [f"lagwatch_group_complete_ratio{lb}}} {_ratio(ratios, g.complete)}\n" for lb, g in rows],
    )
    text.family(
        "lagwatch_group_partitions",
        [f"lagwatch_group_partitions{lb}}} {g.partition_count}\n" for lb, g in rows],
    )
    if burrow:
        brows = list(zip(groups.burrow_labels, groups.statuses, strict=True))
        text.family(
            "burrow_kafka_consumer_status",
            [f"burrow_kafka_consumer_status{lb}}} {_CODE[g.status]}\n" for lb, g in brows],
        )
        text.family(
            "burrow_kafka_consumer_lag_total",
            [f"burrow_kafka_consumer_lag_total{lb}}} {g.totallag}\n" for lb, g in brows],
        )


def _partition_families(text: _Text, groups: _Groups, burrow: bool) -> None:
    parts = [p for g in groups.statuses for p in g.partitions]
    labels = _partition_labels(groups.labels, groups.statuses)
    text.family(
        "lagwatch_partition_status",
        [f"lagwatch_partition_status{lb}}} {_CODE[p.status]}\n" for lb, p in zip(labels, parts, strict=True)],
    )
    text.family(
        "lagwatch_partition_lag",
        [
            f"lagwatch_partition_lag{lb}}} {p.current_lag}\n"
            for lb, p in zip(labels, parts, strict=True)
            if p.current_lag is not None
        ],
    )
    ends = [p.end for p in parts if p.end is not None]
    end_labels = [lb for lb, p in zip(labels, parts, strict=True) if p.end is not None]
    text.family(
        "lagwatch_partition_committed_offset",
        [
            f"lagwatch_partition_committed_offset{lb}}} {e.offset}\n"
            for lb, e in zip(end_labels, ends, strict=True)
        ],
    )
    # Three decimals of a float division: exact to the millisecond for any realistic timestamp, and much
    # cheaper than exact integer arithmetic in Python.
    text.family(
        "lagwatch_partition_commit_timestamp_seconds",
        [
            f"lagwatch_partition_commit_timestamp_seconds{lb}}} {e.timestamp_ms / _MS_PER_S:.3f}\n"
            for lb, e in zip(end_labels, ends, strict=True)
        ],
    )
    text.family(
        "lagwatch_partition_owner_info",
        [
            f'lagwatch_partition_owner_info{lb},client_host="{_escape(p.owner)}",client_id="{_escape(p.client_id)}",'
            f'member_id="{_escape(p.member_id)}"}} 1\n'
            for lb, p in zip(labels, parts, strict=True)
            if p.owner or p.client_id
        ],
    )
    if burrow:
        _burrow_partition_families(text, _partition_labels(groups.burrow_labels, groups.statuses), parts)


def _partition_labels(group_labels: list[str], statuses: list[GroupStatus]) -> list[str]:
    """Open label of every partition, built once and shared by every family."""
    return [
        f'{lb},topic="{_escape(p.topic)}",partition="{p.partition}"'
        for lb, g in zip(group_labels, statuses, strict=True)
        for p in g.partitions
    ]


def _burrow_partition_families(text: _Text, labels: list[str], parts: list[PartitionStatus]) -> None:
    text.family(
        "burrow_kafka_consumer_partition_lag",
        [
            f"burrow_kafka_consumer_partition_lag{lb}}} {p.current_lag}\n"
            for lb, p in zip(labels, parts, strict=True)
            if p.current_lag is not None
        ],
    )
    # Burrow only reports the offset and status of partitions whose window is full.
    full = [p for p in parts if p.complete == 1.0]
    full_labels = [lb for lb, p in zip(labels, parts, strict=True) if p.complete == 1.0]
    text.family(
        "burrow_kafka_consumer_current_offset",
        [
            f"burrow_kafka_consumer_current_offset{lb}}} {p.end.offset}\n"
            for lb, p in zip(full_labels, full, strict=True)
            if p.end is not None
        ],
    )
    text.family(
        "burrow_kafka_topic_partition_status",
        [
            f"burrow_kafka_topic_partition_status{lb}}} {_CODE[p.status]}\n"
            for lb, p in zip(full_labels, full, strict=True)
        ],
    )


def _topic_families(text: _Text, topics: _Topics, burrow: bool) -> None:
    rows = list(zip(topics.clusters, topics.names, topics.heads, strict=True))
    text.family(
        "lagwatch_topic_partition_end_offset",
        [
            f'lagwatch_topic_partition_end_offset{{kafka_cluster="{c}",topic="{t}",partition="{p}"}} {head}\n'
            for c, t, heads in rows
            for p, head in enumerate(heads)
            if head is not None
        ],
    )
    if burrow:
        text.family(
            "burrow_kafka_topic_partition_offset",
            [
                f'burrow_kafka_topic_partition_offset{{cluster="{c}",topic="{t}",partition="{p}"}} {head}\n'
                for c, t, heads in rows
                for p, head in enumerate(heads)
                if head is not None
            ],
        )


def _health_families(text: _Text, clusters: Sequence[ClusterView], series: int, dropped: int) -> None:
    labels = [f'{{kafka_cluster="{_escape(v.name)}"}}' for v in clusters]
    views = list(zip(labels, clusters, strict=True))
    text.family("lagwatch_cluster_up", [f"lagwatch_cluster_up{lb} {int(v.up)}\n" for lb, v in views])
    text.family(
        "lagwatch_offsets_caught_up",
        [f"lagwatch_offsets_caught_up{lb} {int(v.caught_up)}\n" for lb, v in views],
    )
    text.family(
        "lagwatch_head_refresh_timestamp_seconds",
        [
            f"lagwatch_head_refresh_timestamp_seconds{lb} {v.head_refresh_ms / _MS_PER_S:.3f}\n"
            for lb, v in views
            if v.head_refresh_ms is not None
        ],
    )
    text.family(
        "lagwatch_evaluation_duration_seconds",
        [
            f"lagwatch_evaluation_duration_seconds{lb} {_format_float(v.evaluation_seconds)}\n"
            for lb, v in views
            if v.evaluation_seconds is not None
        ],
    )
    text.family("lagwatch_series_exposed", [f"lagwatch_series_exposed {series}\n"])
    text.family("lagwatch_series_dropped", [f"lagwatch_series_dropped {dropped}\n"])
    text.family("lagwatch_series_cap_exceeded", [f"lagwatch_series_cap_exceeded {int(dropped > 0)}\n"])


def _escape(value: str) -> str:
    """Label-value escaping of the text format; the membership tests spare the usual clean names a copy."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def _ratio(cache: dict[float, str], value: float) -> str:
    # Ratios take few distinct values (k/n for small n), so formatting each once pays off at 10k groups.
    text = cache.get(value)
    if text is None:
        text = cache[value] = _format_float(value)
    return text


def _format_float(value: float) -> str:
    """A sample value as Go's client (and client_python) writes it, except that integral values below 2**53
    are written as integers (`1`, not `1.0` or Go's `1e+06`)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    text = repr(value)
    dot = text.find(".")
    # Go switches to exponent notation from 1e+06 up, Python only from 1e+16.
    if value > 0 and dot > 6:
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text
