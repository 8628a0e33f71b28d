"""Encode `__consumer_offsets` records, for tests only: the inverse of `exporter.core.decoder`.

Written from Kafka's JSON message definitions with `struct.pack`, independently of the decoder's schema
tables, so that a schema mistake in the decoder is not mirrored here. `encode` turns a decoded record back
into key and value bytes for round trips; the per-record functions give control over every field, tagged
fields included.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from exporter.core.model import (
    ConsumerGroupAssignment,
    ConsumerGroupMember,
    ConsumerGroupMemberLeft,
    ConsumerGroupTopics,
    GroupMetadata,
    GroupTombstone,
    Member,
    OffsetCommit,
    OffsetTombstone,
    Record,
    TopicPartitions,
)

Tags = Mapping[int, bytes]
"""Tagged fields: tag to raw payload."""


def int8(n: int) -> bytes:
    return struct.pack(">b", n)


def int16(n: int) -> bytes:
    return struct.pack(">h", n)


def int32(n: int) -> bytes:
    return struct.pack(">i", n)


def int64(n: int) -> bytes:
    return struct.pack(">q", n)


def uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def string(s: str | None, *, flexible: bool = False) -> bytes:
    """A string or None: int16 length (-1 is null) or, flexible, unsigned varint length + 1 (0 is null)."""
    if s is None:
        return uvarint(0) if flexible else int16(-1)
    raw = s.encode()
    return (uvarint(len(raw) + 1) if flexible else int16(len(raw))) + raw


def blob(b: bytes | None, *, flexible: bool = False) -> bytes:
    """Kafka `bytes`: int32 length (-1 null) or, flexible, unsigned varint length + 1 (0 null)."""
    if b is None:
        return uvarint(0) if flexible else int32(-1)
    return (uvarint(len(b) + 1) if flexible else int32(len(b))) + b


def array(items: Sequence[bytes], *, flexible: bool = False) -> bytes:
    """An array of already encoded items."""
    return (uvarint(len(items) + 1) if flexible else int32(len(items))) + b"".join(items)


def int32_array(values: Sequence[int], *, flexible: bool = False) -> bytes:
    return array([int32(v) for v in values], flexible=flexible)


def tagged_fields(tags: Tags | None = None) -> bytes:
    tags = tags or {}
    return uvarint(len(tags)) + b"".join(
        uvarint(tag) + uvarint(len(payload)) + payload for tag, payload in sorted(tags.items())
    )


def uuid_bytes(topic_id: str) -> bytes:
    """The 16 bytes of a topic id rendered as Kafka's `Uuid.toString()` (URL-safe base64, no padding)."""
    raw = base64.urlsafe_b64decode(topic_id + "==")
    assert len(raw) == 16, topic_id
    return raw


def uuid_string(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# ------------------------------------------------------------------------------------------------------------
# Keys: int16 record type, then the key fields (never flexible).


def offset_commit_key(group: str, topic: str, partition: int, key_type: int = 1) -> bytes:
    return int16(key_type) + string(group) + string(topic) + int32(partition)


def group_key(group: str, key_type: int = 2) -> bytes:
    return int16(key_type) + string(group)


def member_key(group: str, member_id: str, key_type: int) -> bytes:
    return int16(key_type) + string(group) + string(member_id)


# ------------------------------------------------------------------------------------------------------------
# Values: int16 version, then the fields; flexible versions end every struct with tagged fields.


def offset_commit_value(
    version: int,
    offset: int,
    metadata: str,
    commit_timestamp: int,
    leader_epoch: int = -1,
    expire_timestamp: int = -1,
    tags: Tags | None = None,
) -> bytes:
    flexible = version >= 4
    out = int16(version) + int64(offset)
    if version >= 3:
        out += int32(leader_epoch)
    out += string(metadata, flexible=flexible) + int64(commit_timestamp)
    if version == 1:
        out += int64(expire_timestamp)
    return out + (tagged_fields(tags) if flexible else b"")


def consumer_protocol_assignment(
    topics: Sequence[TopicPartitions], version: int = 0, user_data: bytes | None = None
) -> bytes:
    """ConsumerProtocolAssignment: int16 version, [topic [partition]], nullable user data (never flexible)."""
    body = array([string(t.topic) + int32_array(t.partitions) for t in topics])
    return int16(version) + body + blob(user_data)


@dataclass(frozen=True)
class MemberMetadata:
    """One member of a classic GroupMetadataValue, with its raw subscription and assignment bytes."""

    member_id: str
    client_id: str
    client_host: str
    session_timeout: int
    group_instance_id: str | None = None
    rebalance_timeout: int = -1
    subscription: bytes = b""
    assignment: bytes = b""
    tags: Tags = field(default_factory=dict)


def group_metadata_value(
    version: int,
    protocol_type: str,
    generation: int,
    protocol: str | None,
    leader: str | None,
    members: Sequence[MemberMetadata],
    current_state_timestamp: int = -1,
    tags: Tags | None = None,
) -> bytes:
    flexible = version >= 4
    out = int16(version) + string(protocol_type, flexible=flexible) + int32(generation)
    out += string(protocol, flexible=flexible) + string(leader, flexible=flexible)
    if version >= 2:
        out += int64(current_state_timestamp)
    encoded = []
    for m in members:
        item = string(m.member_id, flexible=flexible)
        if version >= 3:
            item += string(m.group_instance_id, flexible=flexible)
        item += string(m.client_id, flexible=flexible) + string(m.client_host, flexible=flexible)
        if version >= 1:
            item += int32(m.rebalance_timeout)
        item += int32(m.session_timeout)
        item += blob(m.subscription, flexible=flexible) + blob(m.assignment, flexible=flexible)
        encoded.append(item + (tagged_fields(m.tags) if flexible else b""))
    out += array(encoded, flexible=flexible)
    return out + (tagged_fields(tags) if flexible else b"")


# KIP-848 values (types 3 to 8): version 0, flexible.


def consumer_group_metadata_value(epoch: int, tags: Tags | None = None) -> bytes:
    """Type 3, ConsumerGroupMetadataValue (Kafka 4.1+ adds tagged MetadataHash, tag 0)."""
    return int16(0) + int32(epoch) + tagged_fields(tags)


@dataclass(frozen=True)
class TopicMetadata:
    """One topic of a ConsumerGroupPartitionMetadataValue."""

    topic_id: str
    topic_name: str
    num_partitions: int
    partition_racks: Sequence[tuple[int, Sequence[str]]] = ()


def partition_metadata_value(topics: Sequence[TopicMetadata]) -> bytes:
    """Type 4, ConsumerGroupPartitionMetadataValue."""
    items = []
    for t in topics:
        racks = [
            int32(p) + array([string(r, flexible=True) for r in rs], flexible=True) + tagged_fields()
            for p, rs in t.partition_racks
        ]
        items.append(
            uuid_bytes(t.topic_id)
            + string(t.topic_name, flexible=True)
            + int32(t.num_partitions)
            + array(racks, flexible=True)
            + tagged_fields()
        )
    return int16(0) + array(items, flexible=True) + tagged_fields()


def member_metadata_value(
    client_id: str,
    client_host: str,
    instance_id: str | None = None,
    rack_id: str | None = None,
    subscribed_topic_names: Sequence[str] = (),
    subscribed_topic_regex: str | None = None,
    rebalance_timeout_ms: int = -1,
    server_assignor: str | None = None,
    tags: Tags | None = None,
) -> bytes:
    """Type 5, ConsumerGroupMemberMetadataValue."""
    return (
        int16(0)
        + string(instance_id, flexible=True)
        + string(rack_id, flexible=True)
        + string(client_id, flexible=True)
        + string(client_host, flexible=True)
        + array([string(t, flexible=True) for t in subscribed_topic_names], flexible=True)
        + string(subscribed_topic_regex, flexible=True)
        + int32(rebalance_timeout_ms)
        + string(server_assignor, flexible=True)
        + tagged_fields(tags)
    )


def target_assignment_metadata_value(assignment_epoch: int) -> bytes:
    """Type 6, ConsumerGroupTargetAssignmentMetadataValue."""
    return int16(0) + int32(assignment_epoch) + tagged_fields()


def topic_partitions(topics: Sequence[TopicPartitions], tags: Tags | None = None) -> bytes:
    """A flexible []TopicPartitions{TopicId uuid, Partitions []int32}, the same tags on every item."""
    return array(
        [
            uuid_bytes(t.topic) + int32_array(t.partitions, flexible=True) + tagged_fields(tags)
            for t in topics
        ],
        flexible=True,
    )


def target_assignment_member_value(topics: Sequence[TopicPartitions]) -> bytes:
    """Type 7, ConsumerGroupTargetAssignmentMemberValue."""
    return int16(0) + topic_partitions(topics) + tagged_fields()


def current_assignment_value(
    member_epoch: int,
    previous_member_epoch: int,
    state: int,
    assigned: Sequence[TopicPartitions],
    pending_revocation: Sequence[TopicPartitions] = (),
    topic_tags: Tags | None = None,
) -> bytes:
    """Type 8, ConsumerGroupCurrentMemberAssignmentValue (KIP-1251 tags AssignmentEpochs on each topic)."""
    return (
        int16(0)
        + int32(member_epoch)
        + int32(previous_member_epoch)
        + int8(state)
        + topic_partitions(assigned, topic_tags)
        + topic_partitions(pending_revocation, topic_tags)
        + tagged_fields()
    )


# ------------------------------------------------------------------------------------------------------------
# Decoded records back to bytes.


def _member(m: Member, consumer: bool) -> MemberMetadata:
    return MemberMetadata(
        member_id=m.member_id,
        client_id=m.client_id,
        client_host=m.client_host,
        session_timeout=m.session_timeout_ms,
        group_instance_id=m.group_instance_id,
        rebalance_timeout=m.rebalance_timeout_ms,
        subscription=b"\x00\x01subscription",
        assignment=consumer_protocol_assignment(m.assignment) if consumer else b"opaque",
    )


def encode(record: Record, version: int = 0) -> tuple[bytes, bytes | None]:
    """Key and value bytes that decode to `record`; `version` is the value version where there is a choice."""
    match record:
        case OffsetCommit():
            key = offset_commit_key(record.group, record.topic, record.partition)
            value = offset_commit_value(
                version, record.offset, record.metadata, record.timestamp_ms, record.leader_epoch
            )
            return key, value
        case OffsetTombstone():
            return offset_commit_key(record.group, record.topic, record.partition), None
        case GroupMetadata():
            consumer = record.protocol_type == "consumer"
            value = group_metadata_value(
                version,
                record.protocol_type,
                record.generation,
                record.protocol,
                record.leader,
                [_member(m, consumer) for m in record.members],
                record.current_state_timestamp_ms,
            )
            return group_key(record.group), value
        case GroupTombstone():
            return group_key(record.group), None
        case ConsumerGroupTopics():
            topics = [TopicMetadata(topic_id, name, 1) for topic_id, name in record.topic_names]
            return group_key(record.group, 4), partition_metadata_value(topics)
        case ConsumerGroupMember():
            value = member_metadata_value(
                record.client_id, record.client_host, record.instance_id, record.rack_id
            )
            return member_key(record.group, record.member_id, 5), value
        case ConsumerGroupMemberLeft():
            return member_key(record.group, record.member_id, 5), None
        case ConsumerGroupAssignment():
            value = current_assignment_value(1, 0, 0, record.partitions)
            return member_key(record.group, record.member_id, 8), value
    raise ValueError(f"{type(record).__name__} has no bytes")
