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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from exporter.core.model import GroupStatus, PartitionStatus, Status
from exporter.core.retention import Headroom, TopicRetention
from exporter.core.timelag import SOURCE_CODES, LagSeconds

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Granularity = Literal["partition", "group"]


@dataclass(frozen=True, slots=True)
class BrokerView:
    """One leader broker as the HEAD poller last saw it."""

    node: int
    stale_partitions: int
    """Partitions it leads whose HEAD the last round did not refresh (they keep their previous one)."""
    head_age_seconds: float | None
    """Seconds since it last answered ListOffsets; None before its first answer."""
    answers: int
    answer_seconds: float
    """Sum of the latencies of its `answers`."""
    errors: Mapping[str, int]
    """Rounds it did not answer, by reason: deadline, error."""


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
    since_ms: int | None = None
    """Wall-clock time `up` last changed; None before the first HEAD round ended (for the status page)."""
    last_error: str = ""
    """Why the cluster is unreachable, while it is."""
    evaluation_seconds: float | None = None
    """Duration of the last evaluation round; None before the first one."""
    lag_seconds: Mapping[str, Sequence[LagSeconds | None]] = field(default_factory=dict)
    """Lag in seconds by group: one entry per partition of the group's status, in the same order, None where
    the group never committed. A group missing here (lag in seconds disabled) has no lag-seconds series."""
    headroom: Mapping[str, Sequence[Headroom | None]] = field(default_factory=dict)
    """Retention headroom by group: one entry per partition of the group's status, in the same order, None
    where there is none. A group missing here has no retention series."""
    topic_starts: Mapping[str, Sequence[int | None]] = field(default_factory=dict)
    """Log-start offset per partition by topic, None while unknown."""
    topic_retention: Mapping[str, TopicRetention] = field(default_factory=dict)
    """Retention settings of the topics whose settings are known."""
    brokers: Sequence[BrokerView] = ()
    """The brokers that lead a polled partition, by node id."""


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
_SOURCE_TEXT = {source: str(code) for source, code in SOURCE_CODES.items()}

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
    "lagwatch_group_max_lag_seconds": "Greatest lag in seconds among the group's partitions that have one.",
    "lagwatch_group_lag_seconds_partitions": (
        "Committed partitions of the group by how their lag in seconds was obtained, or why it is absent."
    ),
    "lagwatch_partition_lag_seconds": (
        "Age of the oldest record the group has not read (0 when caught up), computed after each HEAD "
        "refresh; absent when unknown."
    ),
    "lagwatch_partition_lag_seconds_source": (
        "How lagwatch_partition_lag_seconds was obtained: 1 caught up, 2 interpolated, 3 exact read; or why "
        "it is absent: 10 HEAD unknown, 11 no history, 12 exact read pending, 13 below log start, "
        "14 no timestamp."
    ),
    "lagwatch_topic_partition_end_offset": "Newest HEAD (log end) offset of the partition, polled.",
    "lagwatch_topic_partition_start_offset": (
        "Log-start offset of the partition (the oldest offset retention kept), polled with the HEAD."
    ),
    "lagwatch_topic_retention_seconds": (
        "retention.ms of the topic in seconds; absent when infinite or compact-only."
    ),
    "lagwatch_topic_retention_bytes": "retention.bytes of the topic (per partition); absent when infinite.",
    "lagwatch_group_lost_messages": (
        "Messages deleted by retention before the group read them, summed over its partitions."
    ),
    "lagwatch_group_min_retention_headroom_seconds": (
        "Smallest retention headroom in seconds among the group's partitions that have one."
    ),
    "lagwatch_partition_lost_messages": (
        "Log-start offset minus committed offset when positive: messages deleted before the group read them."
    ),
    "lagwatch_partition_retention_margin": (
        "Committed offset minus log-start offset when positive: messages left before retention reaches the "
        "group."
    ),
    "lagwatch_partition_retention_headroom_seconds": (
        "retention.ms minus the age of the oldest message the group has not read, never negative; absent "
        "without time-based retention or lag in seconds."
    ),
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
    # danielqsj/kafka_exporter's texts, verbatim.
    "kafka_consumergroup_members": "Amount of members in a consumer group",
    "kafka_consumergroup_current_offset_sum": "Current Offset of a ConsumerGroup at Topic for all partitions",
    "kafka_consumergroup_lag_sum": "Current Approximate Lag of a ConsumerGroup at Topic for all partitions",
    "kafka_consumergroup_current_offset": "Current Offset of a ConsumerGroup at Topic/Partition",
    "kafka_consumergroup_lag": "Current Approximate Lag of a ConsumerGroup at Topic/Partition",
    "kafka_topic_partitions": "Number of partitions for this Topic",
    "kafka_topic_partition_current_offset": "Current Offset of a Broker at Topic/Partition",
    "kafka_topic_partition_oldest_offset": "Oldest Offset of a Broker at Topic/Partition",
    "lagwatch_cluster_up": "1 when the last HEAD refresh of the cluster succeeded, else 0.",
    "lagwatch_offsets_caught_up": "1 once the first read of the committed offsets reached its end.",
    "lagwatch_head_refresh_timestamp_seconds": "Wall-clock time of the last successful HEAD refresh.",
    "lagwatch_evaluation_duration_seconds": "Duration of the last evaluation round.",
    "lagwatch_broker_stale_partitions": (
        "Partitions the broker leads whose HEAD the last refresh did not get (no answer within the broker "
        "deadline, or an error); they keep their previous HEAD."
    ),
    "lagwatch_broker_head_age_seconds": "Seconds since the broker last answered ListOffsets (HEAD offsets).",
    "lagwatch_broker_request_errors_total": (
        "HEAD refreshes the broker did not answer, by reason: deadline (no answer in time), error."
    ),
    "lagwatch_broker_request_duration_seconds": "Latency of the broker's answered ListOffsets requests.",
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
                groups.add(cluster, g, view.lag_seconds.get(g.group), view.headroom.get(g.group))
        if options.granularity == "partition":
            for topic, heads in view.topics:
                topics.add(
                    cluster, topic, heads, view.topic_starts.get(topic, ()), view.topic_retention.get(topic)
                )
    plan = _plan(groups, topics, options)
    text = _Text()
    admitted = groups.head(plan.groups)
    partition_groups = admitted.head(plan.partition_groups)
    admitted_topics = topics.head(plan.topics)
    _group_families(text, admitted, options.burrow_compatible)
    _partition_families(text, partition_groups, options.burrow_compatible)
    _topic_families(text, admitted_topics, options.burrow_compatible)
    if options.kafka_exporter:
        _kafka_exporter_families(text, admitted, partition_groups, admitted_topics)
    series = text.samples
    _health_families(text, clusters, series, plan.dropped)
    return RenderResult(body="".join(text.parts).encode(), series=series, dropped=plan.dropped)


@dataclass(slots=True)
class _Groups:
    """Groups to render, as parallel lists of escaped open labels, statuses and lag in seconds."""

    labels: list[str] = field(default_factory=list)
    """`{kafka_cluster="..",group=".."` (no closing brace: partition labels extend it)."""
    burrow_labels: list[str] = field(default_factory=list)
    """`{cluster="..",consumer_group=".."`."""
    kafka_labels: list[str] = field(default_factory=list)
    """`{consumergroup="..",kafka_cluster=".."`: kafka_exporter's label, then lagwatch's, in Go's sorted
    order."""
    statuses: list[GroupStatus] = field(default_factory=list)
    lags: list[Sequence[LagSeconds | None]] = field(default_factory=list)
    """Per group, one entry per partition (all None when the view has no lag in seconds for the group)."""
    max_seconds: list[float | None] = field(default_factory=list)
    sources: list[list[tuple[str, int]]] = field(default_factory=list)
    """Per group, (source, committed partitions) for each source with partitions, in code order."""
    headroom: list[Sequence[Headroom | None]] = field(default_factory=list)
    """Per group, one entry per partition (all None when the view has no retention headroom for the group)."""
    lost: list[int | None] = field(default_factory=list)
    """Per group, the sum of its partitions' lost messages; None when no partition has a headroom."""
    min_headroom: list[float | None] = field(default_factory=list)

    def add(
        self,
        cluster: str,
        status: GroupStatus,
        lags: Sequence[LagSeconds | None] | None,
        headroom: Sequence[Headroom | None] | None,
    ) -> None:
        group = _escape(status.group)
        self.labels.append(f'{{kafka_cluster="{cluster}",group="{group}"')
        self.burrow_labels.append(f'{{cluster="{cluster}",consumer_group="{group}"')
        self.kafka_labels.append(f'{{consumergroup="{group}",kafka_cluster="{cluster}"')
        self.statuses.append(status)
        self._add_headroom(headroom or (None,) * len(status.partitions))
        if lags is None:
            self.lags.append((None,) * len(status.partitions))
            self.max_seconds.append(None)
            self.sources.append([])
            return
        self.lags.append(lags)
        # One pass with a plain dict: a Counter and a max() per group cost a third of this family's time.
        counts: dict[str, int] = {}
        top: float | None = None
        for lag in lags:
            if lag is not None:
                counts[lag.source] = counts.get(lag.source, 0) + 1
                if lag.seconds is not None and (top is None or lag.seconds > top):
                    top = lag.seconds
        self.max_seconds.append(top)
        self.sources.append([(source, counts[source]) for source in SOURCE_CODES if source in counts])

    def _add_headroom(self, headroom: Sequence[Headroom | None]) -> None:
        self.headroom.append(headroom)
        lost: int | None = None
        low: float | None = None
        for h in headroom:
            if h is not None:
                lost = h.lost if lost is None else lost + h.lost
                if h.seconds is not None and (low is None or h.seconds < low):
                    low = h.seconds
        self.lost.append(lost)
        self.min_headroom.append(low)

    def head(self, count: int) -> _Groups:
        return _Groups(
            self.labels[:count],
            self.burrow_labels[:count],
            self.kafka_labels[:count],
            self.statuses[:count],
            self.lags[:count],
            self.max_seconds[:count],
            self.sources[:count],
            self.headroom[:count],
            self.lost[:count],
            self.min_headroom[:count],
        )


@dataclass(slots=True)
class _Topics:
    """Topics to render, as parallel lists of escaped cluster and topic names and HEAD offsets."""

    clusters: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    heads: list[Sequence[int | None]] = field(default_factory=list)
    starts: list[Sequence[int | None]] = field(default_factory=list)
    retention: list[TopicRetention | None] = field(default_factory=list)

    def add(
        self,
        cluster: str,
        topic: str,
        heads: Sequence[int | None],
        starts: Sequence[int | None],
        retention: TopicRetention | None,
    ) -> None:
        self.clusters.append(cluster)
        self.names.append(_escape(topic))
        self.heads.append(heads)
        self.starts.append(starts)
        self.retention.append(retention)

    def head(self, count: int) -> _Topics:
        return _Topics(
            self.clusters[:count],
            self.names[:count],
            self.heads[:count],
            self.starts[:count],
            self.retention[:count],
        )


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
    kafka = options.kafka_exporter
    per_partition = options.granularity == "partition"
    # A cheap upper bound first, so the exact count is only paid for when the cap may bite.
    # Lag in seconds adds at most one series per committed partition at group level (its source) plus the
    # group's max, and two per partition at partition level; retention headroom two per group and three per
    # partition, and a topic's start offsets and two retention settings.
    # kafka_exporter's names add a group's members, two sums per topic (at most two per partition), two
    # series per partition, and a topic's partition count and two offsets per partition.
    bound = (
        len(groups.statuses) * (13 if burrow else 11) * (1 + kafka)
        + sum(len(g.partitions) for g in groups.statuses)
        * (1 + 2 * kafka + per_partition * ((13 if burrow else 10) + 2 * kafka))
        + sum(len(heads) for heads in topics.heads) * ((3 if burrow else 2) + 2 * kafka)
        + len(topics.heads) * (2 + kafka)
    )
    if bound <= options.max_series:
        return _Plan(len(groups.statuses), len(groups.statuses) * per_partition, len(topics.heads), 0)
    rows = range(len(groups.statuses))
    tiers = (
        [_group_series(groups, i, burrow) + kafka * _kafka_group_series(groups.statuses[i]) for i in rows],
        [
            _partition_series(groups.statuses[i], groups.lags[i], groups.headroom[i], burrow)
            + kafka * _kafka_partition_series(groups.statuses[i])
            for i in rows
        ]
        if per_partition
        else [],
        [
            _topic_series(topics, i, burrow) + kafka * _kafka_topic_series(topics, i)
            for i in range(len(topics.heads))
        ],
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
def _group_series(groups: _Groups, index: int, burrow: bool) -> int:
    g = groups.statuses[index]
    max_lag = g.maxlag is not None and g.maxlag.current_lag is not None
    lag_seconds = (groups.max_seconds[index] is not None) + len(groups.sources[index])
    retention = (groups.lost[index] is not None) + (groups.min_headroom[index] is not None)
    return 7 + max_lag + (2 if burrow else 0) + lag_seconds + retention


def _partition_series(
    g: GroupStatus, lags: Sequence[LagSeconds | None], headroom: Sequence[Headroom | None], burrow: bool
) -> int:
    total = 0
    for p, lag_seconds, h in zip(g.partitions, lags, headroom, strict=True):
        lag = p.current_lag is not None
        end = p.end is not None
        total += 1 + lag + 2 * end + bool(p.owner or p.client_id)
        if lag_seconds is not None:
            total += 1 + (lag_seconds.seconds is not None)
        if h is not None:
            total += 2 + (h.seconds is not None)
        if burrow:
            full = p.complete == 1.0
            total += lag + full + (full and end)
    return total


def _topic_series(topics: _Topics, index: int, burrow: bool) -> int:
    heads = sum(head is not None for head in topics.heads[index]) * (2 if burrow else 1)
    starts = sum(start is not None for start in topics.starts[index])
    retention = topics.retention[index]
    settings = 0 if retention is None else _retention_settings(retention)
    return heads + starts + settings


def _kafka_group_series(g: GroupStatus) -> int:
    return 1 + sum(1 + (lag is not None) for _, _, lag in _topic_sums(g))


def _kafka_partition_series(g: GroupStatus) -> int:
    return sum((p.end is not None) + (p.current_lag is not None) for p in g.partitions)


def _kafka_topic_series(topics: _Topics, index: int) -> int:
    known = sum(head is not None for head in topics.heads[index])
    return 1 + known + sum(start is not None for start in topics.starts[index])


def _retention_settings(retention: TopicRetention) -> int:
    return (retention.retention_ms is not None) + (retention.retention_bytes is not None)


class _Text:
    """The exposition being built: family blocks in order, and the number of samples in them."""

    __slots__ = ("parts", "samples")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.samples = 0

    def family(self, name: str, samples: list[str], kind: str = "gauge") -> None:
        if samples:
            self.parts.append(f"# HELP {name} {_HELP[name]}\n# TYPE {name} {kind}\n")
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
    text.family(
        "lagwatch_group_max_lag_seconds",
        [
            f"lagwatch_group_max_lag_seconds{lb}}} {_seconds(seconds)}\n"
            for lb, seconds in zip(groups.labels, groups.max_seconds, strict=True)
            if seconds is not None
        ],
    )
    text.family(
        "lagwatch_group_lag_seconds_partitions",
        [
            f'lagwatch_group_lag_seconds_partitions{lb},source="{source}"}} {count}\n'
            for lb, sources in zip(groups.labels, groups.sources, strict=True)
            for source, count in sources
        ],
    )
    text.family(
        "lagwatch_group_lost_messages",
        [
            f"lagwatch_group_lost_messages{lb}}} {lost}\n"
            for lb, lost in zip(groups.labels, groups.lost, strict=True)
            if lost is not None
        ],
    )
    text.family(
        "lagwatch_group_min_retention_headroom_seconds",
        [
            f"lagwatch_group_min_retention_headroom_seconds{lb}}} {_seconds(seconds)}\n"
            for lb, seconds in zip(groups.labels, groups.min_headroom, strict=True)
            if seconds is not None
        ],
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
    lags = [lag for group_lags in groups.lags for lag in group_lags]
    text.family(
        "lagwatch_partition_lag_seconds",
        [
            f"lagwatch_partition_lag_seconds{lb}}} {_seconds(lag.seconds)}\n"
            for lb, lag in zip(labels, lags, strict=True)
            if lag is not None and lag.seconds is not None
        ],
    )
    text.family(
        "lagwatch_partition_lag_seconds_source",
        [
            f"lagwatch_partition_lag_seconds_source{lb}}} {_SOURCE_TEXT[lag.source]}\n"
            for lb, lag in zip(labels, lags, strict=True)
            if lag is not None
        ],
    )
    _headroom_families(text, labels, [h for group in groups.headroom for h in group])
    if burrow:
        _burrow_partition_families(text, _partition_labels(groups.burrow_labels, groups.statuses), parts)


def _headroom_families(text: _Text, labels: list[str], headroom: list[Headroom | None]) -> None:
    known = [(lb, h) for lb, h in zip(labels, headroom, strict=True) if h is not None]
    text.family(
        "lagwatch_partition_lost_messages",
        [f"lagwatch_partition_lost_messages{lb}}} {h.lost}\n" for lb, h in known],
    )
    text.family(
        "lagwatch_partition_retention_margin",
        [f"lagwatch_partition_retention_margin{lb}}} {h.margin}\n" for lb, h in known],
    )
    text.family(
        "lagwatch_partition_retention_headroom_seconds",
        [
            f"lagwatch_partition_retention_headroom_seconds{lb}}} {_seconds(h.seconds)}\n"
            for lb, h in known
            if h.seconds is not None
        ],
    )


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
    text.family(
        "lagwatch_topic_partition_start_offset",
        [
            f'lagwatch_topic_partition_start_offset{{kafka_cluster="{c}",topic="{t}",partition="{p}"}} '
            f"{start}\n"
            for c, t, starts in zip(topics.clusters, topics.names, topics.starts, strict=True)
            for p, start in enumerate(starts)
            if start is not None
        ],
    )
    settings = [
        (f'{{kafka_cluster="{c}",topic="{t}"}}', r)
        for c, t, r in zip(topics.clusters, topics.names, topics.retention, strict=True)
        if r is not None
    ]
    text.family(
        "lagwatch_topic_retention_seconds",
        [
            f"lagwatch_topic_retention_seconds{lb} {_format_float(r.retention_ms / _MS_PER_S)}\n"
            for lb, r in settings
            if r.retention_ms is not None
        ],
    )
    text.family(
        "lagwatch_topic_retention_bytes",
        [
            f"lagwatch_topic_retention_bytes{lb} {r.retention_bytes}\n"
            for lb, r in settings
            if r.retention_bytes is not None
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


def _kafka_exporter_families(
    text: _Text, groups: _Groups, partition_groups: _Groups, topics: _Topics
) -> None:
    """danielqsj/kafka_exporter's lag families (docs/metrics.md lists the deliberate differences)."""
    rows = list(zip(groups.kafka_labels, groups.statuses, strict=True))
    text.family(
        "kafka_consumergroup_members",
        [f"kafka_consumergroup_members{lb}}} {_members(g)}\n" for lb, g in rows],
    )
    sums = [(lb, _topic_sums(g)) for lb, g in rows]
    text.family(
        "kafka_consumergroup_current_offset_sum",
        [
            f'kafka_consumergroup_current_offset_sum{lb},topic="{_escape(t)}"}} {offsets}\n'
            for lb, topic_sums in sums
            for t, offsets, _ in topic_sums
        ],
    )
    text.family(
        "kafka_consumergroup_lag_sum",
        [
            f'kafka_consumergroup_lag_sum{lb},topic="{_escape(t)}"}} {lag}\n'
            for lb, topic_sums in sums
            for t, _, lag in topic_sums
            if lag is not None
        ],
    )
    parts = [
        (lb, p)
        for lb, g in zip(partition_groups.kafka_labels, partition_groups.statuses, strict=True)
        for p in g.partitions
    ]
    labels = [f'{lb},partition="{p.partition}",topic="{_escape(p.topic)}"}}' for lb, p in parts]
    text.family(
        "kafka_consumergroup_current_offset",
        [
            f"kafka_consumergroup_current_offset{lb} {p.end.offset}\n"
            for lb, (_, p) in zip(labels, parts, strict=True)
            if p.end is not None
        ],
    )
    text.family(
        "kafka_consumergroup_lag",
        [
            f"kafka_consumergroup_lag{lb} {p.current_lag}\n"
            for lb, (_, p) in zip(labels, parts, strict=True)
            if p.current_lag is not None
        ],
    )
    rows_t = list(zip(topics.clusters, topics.names, topics.heads, topics.starts, strict=True))
    text.family(
        "kafka_topic_partitions",
        [
            f'kafka_topic_partitions{{kafka_cluster="{c}",topic="{t}"}} {len(heads)}\n'
            for c, t, heads, _ in rows_t
        ],
    )
    text.family(
        "kafka_topic_partition_current_offset",
        [
            f'kafka_topic_partition_current_offset{{kafka_cluster="{c}",partition="{p}",topic="{t}"}} '
            f"{head}\n"
            for c, t, heads, _ in rows_t
            for p, head in enumerate(heads)
            if head is not None
        ],
    )
    text.family(
        "kafka_topic_partition_oldest_offset",
        [
            f'kafka_topic_partition_oldest_offset{{kafka_cluster="{c}",partition="{p}",topic="{t}"}} '
            f"{start}\n"
            for c, t, _, starts in rows_t
            for p, start in enumerate(starts)
            if start is not None
        ],
    )


def _members(g: GroupStatus) -> int:
    """Members owning at least one of the group's partitions: by member id, and by host and client id where
    the member id is not known (and the pair belongs to no member with an id)."""
    identified = {(p.owner, p.client_id) for p in g.partitions if p.member_id}
    members: set[object] = {p.member_id for p in g.partitions if p.member_id}
    members.update(
        (p.owner, p.client_id)
        for p in g.partitions
        if not p.member_id and (p.owner or p.client_id) and (p.owner, p.client_id) not in identified
    )
    return len(members)


def _topic_sums(g: GroupStatus) -> list[tuple[str, int, int | None]]:
    """Per topic with a committed partition, in partition order: the sum of the committed offsets and the sum
    of the known lags (None when no lag of the topic is known)."""
    sums: dict[str, tuple[int, int | None]] = {}
    for p in g.partitions:
        if p.end is not None:
            offsets, lag = sums.get(p.topic, (0, None))
            if p.current_lag is not None:
                lag = p.current_lag if lag is None else lag + p.current_lag
            sums[p.topic] = (offsets + p.end.offset, lag)
    return [(topic, offsets, lag) for topic, (offsets, lag) in sums.items()]


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
    _broker_families(text, clusters)
    text.family("lagwatch_series_exposed", [f"lagwatch_series_exposed {series}\n"])
    text.family("lagwatch_series_dropped", [f"lagwatch_series_dropped {dropped}\n"])
    text.family("lagwatch_series_cap_exceeded", [f"lagwatch_series_cap_exceeded {int(dropped > 0)}\n"])


def _broker_families(text: _Text, clusters: Sequence[ClusterView]) -> None:
    rows = [(f'kafka_cluster="{_escape(v.name)}",broker="{b.node}"', b) for v in clusters for b in v.brokers]
    text.family(
        "lagwatch_broker_stale_partitions",
        [f"lagwatch_broker_stale_partitions{{{lb}}} {b.stale_partitions}\n" for lb, b in rows],
    )
    text.family(
        "lagwatch_broker_head_age_seconds",
        [
            f"lagwatch_broker_head_age_seconds{{{lb}}} {b.head_age_seconds:.3f}\n"
            for lb, b in rows
            if b.head_age_seconds is not None
        ],
    )
    text.family(
        "lagwatch_broker_request_errors_total",
        [
            f'lagwatch_broker_request_errors_total{{{lb},reason="{reason}"}} {b.errors.get(reason, 0)}\n'
            for lb, b in rows
            for reason in _BROKER_ERRORS
        ],
        "counter",
    )
    name = "lagwatch_broker_request_duration_seconds"
    text.family(
        name,
        [
            sample
            for lb, b in rows
            for sample in (
                f"{name}_sum{{{lb}}} {_format_float(b.answer_seconds)}\n",
                f"{name}_count{{{lb}}} {b.answers}\n",
            )
        ],
        "summary",
    )


_BROKER_ERRORS = ("deadline", "error")


def _escape(value: str) -> str:
    """Label-value escaping of the text format; the membership tests spare the usual clean names a copy."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def _seconds(value: float) -> str:
    # Lag in seconds is a duration, written like the others, to the millisecond its inputs support. Most
    # partitions are caught up: 0 skips the formatting.
    return "0" if value == 0 else _format_float(round(value, 3))


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
