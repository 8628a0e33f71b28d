"""What the renderer reads of one Kafka cluster: plain data the shell gathers from memory once per render
(the published round, HEAD offsets, health), so that rendering never reaches into the runtime."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from exporter.core.model import GroupStatus
from exporter.core.retention import Headroom, TopicRetention
from exporter.core.timelag import LagSeconds


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
    """Evaluated groups, sorted by name; NOTFOUND groups are skipped. A tuple, `lag_seconds` and `headroom`
    handed to the renderer again as the same objects say that none of the three changed (a published round's
    are never changed): it then keeps every bucket of its last render without comparing them."""
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
    evaluated_ms: int | None = None
    """Wall-clock time the published round ran at: the instant its statuses, lags and figures are of; None
    before the first round."""
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
