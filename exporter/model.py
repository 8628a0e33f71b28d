"""The shared vocabulary of lagwatch: frozen value types, standard library only.

Every other module imports this one; this one imports nothing of lagwatch. Sources produce the record
types, storage keeps commits and produces snapshots, the evaluator turns snapshots into statuses, and
exposition renders statuses. See docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple


class Status(IntEnum):
    """Burrow's status codes, ordered by severity. Group statuses are NOTFOUND, OK, WARN, ERR; partition
    statuses are OK, WARN, STOP, STALL, REWIND."""

    NOTFOUND = 0
    OK = 1
    WARN = 2
    ERR = 3
    STOP = 4
    STALL = 5
    REWIND = 6


class Commit(NamedTuple):
    """One committed offset of a group-partition, as kept in its window.

    A NamedTuple rather than a frozen dataclass: snapshots build ten of these per partition on every
    evaluation, and a NamedTuple is built three times faster."""

    offset: int
    """The committed offset: the next record the group will read."""
    order: int
    """Position of the commit in `__consumer_offsets` (or the poll sequence of the admin-API source)."""
    timestamp_ms: int
    """Commit time from the broker, in milliseconds since the epoch."""
    lag: int | None
    """HEAD minus offset when the commit was stored; None when the HEAD was unknown or the commit came out of
    order."""
    observed_ms: int = 0
    """Wall-clock time lagwatch stored the commit (Burrow's `observedAt`)."""


# ----------------------------------------------------------------------------------------------------
# Records decoded from __consumer_offsets (or synthesised by the admin-API source). The storage applies them.


@dataclass(frozen=True, slots=True)
class OffsetCommit:
    """Key types 0/1 with a value: a group committed an offset for a partition."""

    group: str
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    leader_epoch: int = -1
    metadata: str = ""


@dataclass(frozen=True, slots=True)
class OffsetTombstone:
    """Key types 0/1 without a value: the committed offset was deleted or expired."""

    group: str
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class TopicPartitions:
    """Partitions of one topic, as in an assignment. `topic` is a name, or for KIP-848 records a topic id
    (UUID string) when `by_id` is true."""

    topic: str
    partitions: tuple[int, ...]
    by_id: bool = False


@dataclass(frozen=True, slots=True)
class Member:
    """A group member and what it was assigned."""

    member_id: str
    client_id: str
    client_host: str
    group_instance_id: str | None = None
    rebalance_timeout_ms: int = -1
    session_timeout_ms: int = -1
    assignment: tuple[TopicPartitions, ...] = ()


@dataclass(frozen=True, slots=True)
class GroupMetadata:
    """Key type 2 with a value: a classic group's generation and members."""

    group: str
    protocol_type: str
    generation: int
    protocol: str | None
    leader: str | None
    members: tuple[Member, ...]
    current_state_timestamp_ms: int = -1


@dataclass(frozen=True, slots=True)
class GroupTombstone:
    """Key type 2 (or 3, the KIP-848 group record) without a value: the group was deleted."""

    group: str


@dataclass(frozen=True, slots=True)
class ConsumerGroupMember:
    """KIP-848 member metadata (key type 5 with a value)."""

    group: str
    member_id: str
    client_id: str
    client_host: str
    instance_id: str | None = None
    rack_id: str | None = None


@dataclass(frozen=True, slots=True)
class ConsumerGroupMemberLeft:
    """KIP-848 member metadata tombstone (key type 5 without a value)."""

    group: str
    member_id: str


@dataclass(frozen=True, slots=True)
class ConsumerGroupAssignment:
    """KIP-848 current member assignment (key type 8): partitions by topic id. Empty on a tombstone."""

    group: str
    member_id: str
    partitions: tuple[TopicPartitions, ...]


@dataclass(frozen=True, slots=True)
class ConsumerGroupTopics:
    """KIP-848 partition metadata (key type 4): the topic id to name map the group subscribed to."""

    group: str
    topic_names: tuple[tuple[str, str], ...]
    """Pairs of (topic id, topic name)."""


@dataclass(frozen=True, slots=True)
class SkippedRecord:
    """A record of a type lagwatch does not interpret (share groups, streams groups, future types)."""

    key_type: int


@dataclass(frozen=True, slots=True)
class DecodeError:
    """A malformed record: counted and logged, never raised."""

    key_type: int | None
    reason: str


Record = (
    OffsetCommit
    | OffsetTombstone
    | GroupMetadata
    | GroupTombstone
    | ConsumerGroupMember
    | ConsumerGroupMemberLeft
    | ConsumerGroupAssignment
    | ConsumerGroupTopics
    | SkippedRecord
    | DecodeError
)


# ----------------------------------------------------------------------------------------------------
# Read side: what the storage hands to the evaluator, and what the evaluator hands to exposition.


@dataclass(frozen=True, slots=True)
class PartitionSnapshot:
    """One group-partition as stored, read at one instant."""

    topic: str
    partition: int
    window: tuple[Commit | None, ...]
    """`intervals` slots oldest first, leading Nones for unfilled slots; empty for a placeholder partition."""
    broker_offsets: tuple[int, ...]
    """The recent HEAD offsets of the partition, oldest first."""
    current_lag: int | None
    """Newest HEAD minus newest committed offset, never negative; None while the HEAD is unknown."""
    owner: str = ""
    client_id: str = ""
    member_id: str = ""


@dataclass(frozen=True, slots=True)
class GroupSnapshot:
    """A consumer group as stored, partitions sorted by topic then partition."""

    cluster: str
    group: str
    partitions: tuple[PartitionSnapshot, ...]
    last_commit_ms: int


@dataclass(frozen=True, slots=True)
class PartitionStatus:
    """The evaluator's verdict on one group-partition (Burrow's PartitionStatus)."""

    topic: str
    partition: int
    owner: str
    client_id: str
    status: Status
    start: Commit | None
    end: Commit | None
    current_lag: int | None
    complete: float
    member_id: str = ""


@dataclass(frozen=True, slots=True)
class GroupStatus:
    """The evaluator's verdict on a group (Burrow's ConsumerGroupStatus); partitions sorted by topic, then
    partition."""

    cluster: str
    group: str
    status: Status
    complete: float
    partitions: tuple[PartitionStatus, ...]
    partition_count: int
    maxlag: PartitionStatus | None
    totallag: int
