"""Every metric family lagwatch exposes, declared once: name, type, help, labels, value and presence.

The renderer's writers, its series counters and cap planner (`writers.py`), the self-metrics collectors and
the test of docs/metrics.md are all derived from `FAMILIES`; nothing else names a family.

A rendered family belongs to a unit, whose rows its writer walks; `value`, `present`, `each` and the label
expressions are Python expressions over the unit's row variables (and the helpers of `writers.py`), compiled
into one list comprehension per family so that the hot loop stays a comprehension:

- `group`: one row per evaluated group. `lb`, `blb`, `klb`: its open label sets (lagwatch's, Burrow's,
  kafka_exporter's); `g`: its `GroupStatus`; `mx`: its greatest lag in seconds; `src`: (source, committed
  partitions) per lag-in-seconds source; `lost`: its lost messages; `mh`: its lowest retention headroom;
  `sums`: kafka_exporter's (topic, offsets, lag) sums.
- `partition`: one row per partition of a group, plain values from the columns of its group's status
  (`model.Partitions`) and of the round's figures (`core.figures`). `lb`, `blb`, `klb`: open label sets; `st`:
  its status code; `lag`: its current lag; `off`, `cts`: its newest committed offset and that commit's
  timestamp in milliseconds; `own`, `cid`, `mid`: its owner's host, client id and member id; `cmp`: its
  window's completeness; `ls`, `lsrc`: its lag in seconds and the figure's source (`LagSeconds.seconds` and
  `.source`), `hl`, `hm`, `hs`: its lost messages, retention margin and headroom in seconds (`Headroom`'s
  fields); each None where it has none.
- `topic`: one row per topic. `c`, `t`: escaped cluster and topic names; `heads`, `starts`: HEAD and log-start
  offset per partition (None while unknown); `r`: its `TopicRetention` or None.
- `cluster`: one row per cluster: `lb`, `v` (its `ClusterView` as of the scrape), `s` (its `ClusterView` as
  the data families show it: from the last complete render, `metrics_endpoint`). `broker`: one row per
  leader: `lb`, `b`.
- `cap`: one row: `series`, `dropped`. `cluster`, `broker` and `cap` are health, never capped nor counted.
- `registry`: written by a prometheus-client collector (self-metrics), declared here for its name, type, help
  and labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

if TYPE_CHECKING:
    # Declared once, with the settings that choose them; a type only, the renderer does not load the settings.
    from exporter.settings import CompatibleSet as Compat

Unit = Literal["group", "partition", "topic", "cluster", "broker", "cap", "registry"]
DATA_UNITS: tuple[Unit, ...] = ("group", "partition", "topic")
"""Units whose series count against the cap, in admission order."""
GroupUnit = Literal["group", "partition"]
"""The units whose series belong to a group: the group's own, and its partitions'."""


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    """The name in the exposition (with `_total` for counters)."""
    type: Literal["gauge", "counter", "summary"]
    unit: Unit
    labels: tuple[str, ...]
    """Label names in the order they are written."""
    help: str
    value: str = ""
    """Expression of the sample value (a format spec after `:` allowed)."""
    present: str = ""
    """Expression: whether the row has a sample; empty: always."""
    each: str = ""
    """A `for` clause: a row has one sample per item (extra labels and values bound by it)."""
    most: str = "1"
    """Expression: at most this many samples per row (for the cap's cheap bound); required with `each`."""
    label_values: tuple[tuple[str, str], ...] = ()
    """Expressions of the labels the unit's rows do not provide."""
    suffix: str = ""
    """Expression of a sample-name suffix (a summary's `_sum` and `_count`)."""
    compat: Compat | None = None
    """Emitted only when this compatible set is enabled."""


_GROUP = ("kafka_cluster", "group")
_PARTITION = (*_GROUP, "topic", "partition")
_BURROW_GROUP = ("cluster", "consumer_group")
_BURROW_PARTITION = (*_BURROW_GROUP, "topic", "partition")
_KAFKA_GROUP = ("consumergroup", "kafka_cluster")
_TOPIC = ("kafka_cluster", "topic")
_TOPIC_PARTITION = (*_TOPIC, "partition")
_BROKER = ("kafka_cluster", "broker")
_CLUSTER = ("kafka_cluster",)
_HEADS = "for p, head in enumerate(heads)"
_STARTS = "for p, start in enumerate(starts)"

# HELP texts say where a value comes from; Burrow's and kafka_exporter's own texts are kept verbatim for their
# families. Order is exposition order: groups, partitions, topics, kafka_exporter's, then health.
# fmt: off
FAMILIES: tuple[Family, ...] = (
    Family(
        "lagwatch_group_status", "gauge", "group", _GROUP,
        "Burrow status of the consumer group: 1 OK, 2 WARN, 3 ERR.",
        value="CODE[g.status]",
    ),
    Family(
        "lagwatch_group_state", "gauge", "group", (*_GROUP, "status"),
        "Burrow status of the consumer group as a state set: 1 for the current one.",
        each="for state, state_name in GROUP_STATES", most="len(GROUP_STATES)",
        label_values=(("status", "state_name"),), value="1 if g.status == state else 0",
    ),
    Family(
        "lagwatch_group_total_lag", "gauge", "group", _GROUP,
        "Sum of the known current lags of the group's partitions, in messages.",
        value="g.totallag",
    ),
    Family(
        "lagwatch_group_max_lag", "gauge", "group", _GROUP,
        "Greatest known current lag among the group's partitions, in messages.",
        present="g.maxlag is not None and g.maxlag.current_lag is not None", value="g.maxlag.current_lag",
    ),
    Family(
        "lagwatch_group_complete_ratio", "gauge", "group", _GROUP,
        "Share of the group's partitions whose commit window is full.",
        value="ratio(g.complete)",
    ),
    Family(
        "lagwatch_group_partitions", "gauge", "group", _GROUP,
        "Partitions of the topics the group commits to, uncommitted ones included.",
        value="g.partition_count",
    ),
    Family(
        "lagwatch_group_max_lag_seconds", "gauge", "group", _GROUP,
        "Greatest lag in seconds among the group's partitions that have one.",
        present="mx is not None", value="seconds(mx)",
    ),
    Family(
        "lagwatch_group_lag_seconds_partitions", "gauge", "group", (*_GROUP, "source"),
        "Committed partitions of the group by how their lag in seconds was obtained, or why it is absent.",
        each="for source, count in src", most="len(src)", label_values=(("source", "source"),), value="count",
    ),
    Family(
        "lagwatch_group_lost_messages", "gauge", "group", _GROUP,
        "Messages deleted by retention before the group read them, summed over its partitions.",
        present="lost is not None", value="lost",
    ),
    Family(
        "lagwatch_group_min_retention_headroom_seconds", "gauge", "group", _GROUP,
        "Smallest retention headroom in seconds among the group's partitions that have one.",
        present="mh is not None", value="seconds(mh)",
    ),
    Family(
        "burrow_kafka_consumer_status", "gauge", "group", _BURROW_GROUP,
        "The status of the consumer group. It is calculated from the highest status for the individual "
        "partitions. Statuses are an index list from NOTFOUND, OK, WARN, or ERR",
        value="CODE[g.status]", compat="burrow",
    ),
    Family(
        "burrow_kafka_consumer_lag_total", "gauge", "group", _BURROW_GROUP,
        "The sum of all partition current lag values for the group",
        value="g.totallag", compat="burrow",
    ),
    Family(
        "lagwatch_partition_status", "gauge", "partition", _PARTITION,
        "Burrow status of the partition: 1 OK, 2 WARN, 4 STOP, 5 STALL, 6 REWIND.",
        value="CODE[st]",
    ),
    Family(
        "lagwatch_partition_lag", "gauge", "partition", _PARTITION,
        "Newest HEAD offset minus newest committed offset; absent while unknown.",
        present="lag is not None", value="lag",
    ),
    Family(
        "lagwatch_partition_committed_offset", "gauge", "partition", _PARTITION,
        "Newest offset the group committed for the partition.",
        present="off is not None", value="off",
    ),
    # Three decimals of a float division: exact to the millisecond for any realistic timestamp, and much
    # cheaper than exact integer arithmetic in Python.
    Family(
        "lagwatch_partition_commit_timestamp_seconds", "gauge", "partition", _PARTITION,
        "Broker timestamp of the group-partition's newest commit.",
        present="cts is not None", value="cts / MS_PER_S:.3f",
    ),
    Family(
        "lagwatch_partition_owner_info", "gauge", "partition",
        (*_PARTITION, "client_host", "client_id", "member_id"),
        "Member owning the group-partition, from the group's membership.",
        present="own or cid", value="1",
        label_values=(
            ("client_host", "escape(own)"),
            ("client_id", "escape(cid)"),
            ("member_id", "escape(mid)"),
        ),
    ),
    Family(
        "lagwatch_partition_lag_seconds", "gauge", "partition", _PARTITION,
        "Age of the oldest record the group has not read (0 when caught up), computed after each HEAD "
        "refresh; absent when unknown.",
        present="ls is not None", value="seconds(ls)",
    ),
    Family(
        "lagwatch_partition_lag_seconds_source", "gauge", "partition", _PARTITION,
        "How lagwatch_partition_lag_seconds was obtained: 1 caught up, 2 interpolated, 3 exact read; or why "
        "it is absent: 10 HEAD unknown, 11 no history, 12 exact read pending, 13 below log start, "
        "14 no timestamp.",
        present="lsrc is not None", value="SOURCE_TEXT[lsrc]",
    ),
    Family(
        "lagwatch_partition_lost_messages", "gauge", "partition", _PARTITION,
        "Log-start offset minus committed offset when positive: messages deleted before the group read them.",
        present="hl is not None", value="hl",
    ),
    Family(
        "lagwatch_partition_retention_margin", "gauge", "partition", _PARTITION,
        "Committed offset minus log-start offset when positive: messages left before retention reaches the "
        "group.",
        present="hm is not None", value="hm",
    ),
    Family(
        "lagwatch_partition_retention_headroom_seconds", "gauge", "partition", _PARTITION,
        "retention.ms minus the age of the oldest message the group has not read, never negative; absent "
        "without time-based retention or lag in seconds.",
        present="hs is not None", value="seconds(hs)",
    ),
    Family(
        "burrow_kafka_consumer_partition_lag", "gauge", "partition", _BURROW_PARTITION,
        "Number of messages the consumer group is behind by for a partition as reported by Burrow",
        present="lag is not None", value="lag", compat="burrow",
    ),
    # Burrow only reports the offset and status of partitions whose window is full.
    Family(
        "burrow_kafka_consumer_current_offset", "gauge", "partition", _BURROW_PARTITION,
        "Latest offset that Burrow is storing for this partition",
        present="cmp == 1.0 and off is not None", value="off", compat="burrow",
    ),
    Family(
        "burrow_kafka_topic_partition_status", "gauge", "partition", _BURROW_PARTITION,
        "The status of topic partition. It is calculated from the highest status for the individual "
        "partitions. Statuses are an index list from OK, WARN, STOP, STALL, REWIND",
        present="cmp == 1.0", value="CODE[st]", compat="burrow",
    ),
    Family(
        "lagwatch_topic_partition_end_offset", "gauge", "topic", _TOPIC_PARTITION,
        "Newest HEAD (log end) offset of the partition, polled.",
        each=_HEADS, most="len(heads)", present="head is not None", value="head",
    ),
    Family(
        "lagwatch_topic_partition_start_offset", "gauge", "topic", _TOPIC_PARTITION,
        "Log-start offset of the partition (the oldest offset retention kept), polled with the HEAD.",
        each=_STARTS, most="len(starts)", present="start is not None", value="start",
    ),
    Family(
        "lagwatch_topic_retention_seconds", "gauge", "topic", _TOPIC,
        "retention.ms of the topic in seconds; absent when infinite or compact-only.",
        present="r is not None and r.retention_ms is not None",
        value="format_float(r.retention_ms / MS_PER_S)",
    ),
    Family(
        "lagwatch_topic_retention_bytes", "gauge", "topic", _TOPIC,
        "retention.bytes of the topic (per partition); absent when infinite.",
        present="r is not None and r.retention_bytes is not None", value="r.retention_bytes",
    ),
    Family(
        "burrow_kafka_topic_partition_offset", "gauge", "topic", ("cluster", "topic", "partition"),
        "Latest offset the topic that Burrow is storing for this partition",
        each=_HEADS, most="len(heads)", present="head is not None", value="head", compat="burrow",
    ),
    # danielqsj/kafka_exporter's families; docs/metrics.md lists the deliberate differences.
    Family(
        "kafka_consumergroup_members", "gauge", "group", _KAFKA_GROUP,
        "Amount of members in a consumer group",
        value="members(g)", compat="kafka_exporter",
    ),
    Family(
        "kafka_consumergroup_current_offset_sum", "gauge", "group", (*_KAFKA_GROUP, "topic"),
        "Current Offset of a ConsumerGroup at Topic for all partitions",
        each="for topic, offsets, topic_lag in sums", most="len(sums)",
        label_values=(("topic", "escape(topic)"),), value="offsets", compat="kafka_exporter",
    ),
    Family(
        "kafka_consumergroup_lag_sum", "gauge", "group", (*_KAFKA_GROUP, "topic"),
        "Current Approximate Lag of a ConsumerGroup at Topic for all partitions",
        each="for topic, offsets, topic_lag in sums", most="len(sums)", present="topic_lag is not None",
        label_values=(("topic", "escape(topic)"),), value="topic_lag", compat="kafka_exporter",
    ),
    Family(
        "kafka_consumergroup_current_offset", "gauge", "partition", (*_KAFKA_GROUP, "partition", "topic"),
        "Current Offset of a ConsumerGroup at Topic/Partition",
        present="off is not None", value="off", compat="kafka_exporter",
    ),
    Family(
        "kafka_consumergroup_lag", "gauge", "partition", (*_KAFKA_GROUP, "partition", "topic"),
        "Current Approximate Lag of a ConsumerGroup at Topic/Partition",
        present="lag is not None", value="lag", compat="kafka_exporter",
    ),
    Family(
        "kafka_topic_partitions", "gauge", "topic", _TOPIC,
        "Number of partitions for this Topic",
        value="len(heads)", compat="kafka_exporter",
    ),
    Family(
        "kafka_topic_partition_current_offset", "gauge", "topic", ("kafka_cluster", "partition", "topic"),
        "Current Offset of a Broker at Topic/Partition",
        each=_HEADS, most="len(heads)", present="head is not None", value="head", compat="kafka_exporter",
    ),
    Family(
        "kafka_topic_partition_oldest_offset", "gauge", "topic", ("kafka_cluster", "partition", "topic"),
        "Oldest Offset of a Broker at Topic/Partition",
        each=_STARTS, most="len(starts)", present="start is not None", value="start", compat="kafka_exporter",
    ),
    Family(
        "lagwatch_cluster_up", "gauge", "cluster", _CLUSTER,
        "1 when the last HEAD refresh of the cluster succeeded, else 0.",
        value="int(v.up)",
    ),
    Family(
        "lagwatch_offsets_caught_up", "gauge", "cluster", _CLUSTER,
        "1 once the first read of the committed offsets reached its end.",
        value="int(v.caught_up)",
    ),
    Family(
        "lagwatch_head_refresh_timestamp_seconds", "gauge", "cluster", _CLUSTER,
        "Wall-clock time of the last successful HEAD refresh.",
        present="v.head_refresh_ms is not None", value="v.head_refresh_ms / MS_PER_S:.3f",
    ),
    Family(
        "lagwatch_evaluation_duration_seconds", "gauge", "cluster", _CLUSTER,
        "Duration of the last evaluation round.",
        present="v.evaluation_seconds is not None", value="format_float(v.evaluation_seconds)",
    ),
    Family(
        "lagwatch_evaluation_timestamp_seconds", "gauge", "cluster", _CLUSTER,
        "Wall-clock time of the evaluation round whose statuses, lags and figures this exposition shows.",
        present="s.evaluated_ms is not None", value="s.evaluated_ms / MS_PER_S:.3f",
    ),
    Family(
        "lagwatch_broker_stale_partitions", "gauge", "broker", _BROKER,
        "Partitions the broker leads whose HEAD the last refresh did not get (no answer within the broker "
        "deadline, or an error); they keep their previous HEAD.",
        value="b.stale_partitions",
    ),
    Family(
        "lagwatch_broker_head_age_seconds", "gauge", "broker", _BROKER,
        "Seconds since the broker last answered ListOffsets (HEAD offsets).",
        present="b.head_age_seconds is not None", value="b.head_age_seconds:.3f",
    ),
    Family(
        "lagwatch_broker_request_errors_total", "counter", "broker", (*_BROKER, "reason"),
        "HEAD refreshes the broker did not answer, by reason: deadline (no answer in time), error.",
        each="for reason in BROKER_ERRORS", most="len(BROKER_ERRORS)", label_values=(("reason", "reason"),),
        value="b.errors.get(reason, 0)",
    ),
    Family(
        "lagwatch_broker_request_duration_seconds", "summary", "broker", _BROKER,
        "Latency of the broker's answered ListOffsets requests.",
        each='for suffix, figure in (("_sum", format_float(b.answer_seconds)), ("_count", b.answers))',
        most="2", suffix="suffix", value="figure",
    ),
    Family(
        "lagwatch_series_exposed", "gauge", "cap", (),
        "Data series in this exposition (all but these health and cap gauges).",
        value="series",
    ),
    Family(
        "lagwatch_series_dropped", "gauge", "cap", (),
        "Data series left out of this exposition by the max_series cap.",
        value="dropped",
    ),
    Family(
        "lagwatch_series_cap_exceeded", "gauge", "cap", (),
        "1 when the max_series cap left series out of this exposition, else 0.",
        value="int(dropped > 0)",
    ),
    # Written by prometheus-client collectors (self_metrics.py, guard.py), through `registry_family`.
    Family(
        "lagwatch_build_info", "gauge", "registry", ("version",),
        "lagwatch's version; always 1.",
    ),
    Family(
        "lagwatch_offsets_records_total", "counter", "registry", ("kafka_cluster", "kind"),
        "Records read from the committed offsets (__consumer_offsets or the admin API), by kind.",
    ),
    Family(
        "lagwatch_offsets_decode_errors_total", "counter", "registry", ("kafka_cluster", "key_type"),
        "Malformed records of __consumer_offsets, by key type; counted, logged and skipped.",
    ),
    Family(
        "lagwatch_offsets_skipped_records_total", "counter", "registry", ("kafka_cluster", "key_type"),
        "Records of __consumer_offsets key types lagwatch does not interpret, by key type.",
    ),
    Family(
        "lagwatch_exact_reads_total", "counter", "registry", ("kafka_cluster",),
        "Records read from Kafka to time a committed offset exactly (lag in seconds).",
    ),
    Family(
        "lagwatch_exact_read_failures_total", "counter", "registry", ("kafka_cluster",),
        "Exact reads that failed and will be retried.",
    ),
    Family(
        "lagwatch_exact_reads_pending", "gauge", "registry", ("kafka_cluster",),
        "Exact reads waiting for their turn under the concurrency and rate limits.",
    ),
    Family(
        "lagwatch_commits_stored_total", "counter", "registry", ("kafka_cluster",),
        "Committed offsets placed in a group-partition's window.",
    ),
    Family(
        "lagwatch_commits_dropped_total", "counter", "registry", ("kafka_cluster", "reason"),
        "Committed offsets the storage refused, by reason (expired, group_filtered, topic_filtered, "
        "unknown_partition, backfill, duplicate).",
    ),
    Family(
        "lagwatch_evaluation_failures_total", "counter", "registry", ("kafka_cluster",),
        "Evaluation rounds that raised; each is logged and retried, the last statuses stay published.",
    ),
    Family(
        "lagwatch_http_request_errors_total", "counter", "registry", ("kind",),
        "Requests the HTTP server could not serve, by kind (malformed, too_long, bad_method, "
        "tls_on_plain_port, client_disconnect, read_timeout).",
    ),
    Family(
        "lagwatch_http_connections_refused_total", "counter", "registry", ("reason",),
        "Connections closed by the server's limits, by reason (header_timeout, connection_limit).",
    ),
    Family(
        "lagwatch_http_auth_refused_total", "counter", "registry", ("reason",),
        "Requests refused by basic auth, by reason (credentials: wrong or unreadable; limited: answered "
        "429 without a check).",
    ),
    Family(
        "lagwatch_http_open_connections", "gauge", "registry", (),
        "Open HTTP connections.",
    ),
)
# fmt: on

FAMILY = {f.name: f for f in FAMILIES}


def registry_family(name: str) -> CounterMetricFamily | GaugeMetricFamily:
    """An empty prometheus-client family of a `registry` family, for a collector to fill."""
    family = FAMILY[name]
    if family.unit != "registry":
        raise ValueError(f"{name} is written by the renderer")
    kind = CounterMetricFamily if family.type == "counter" else GaugeMetricFamily
    return kind(family.name, family.help, labels=family.labels)
