"""Decode `__consumer_offsets` records: key and value bytes in, one `model.Record` out, never an exception.

A key starts with an int16 record type, a value with an int16 version. The schemas (`offset_schemas`,
`group_schemas`) transcribe Kafka 4.x's JSON message definitions
(`group-coordinator/src/main/resources/common/message/`) field by field, and `wire` compiles a version table
from each that picks the layout. This module picks the handler by record type and turns what the schema read
into model records.

Offset commits, nearly every record of the topic, first try a fast path (`fast_commits`) for the shapes Kafka
writes (value v1, v3, v4 with short metadata and no tagged field), which reads them with precompiled Structs;
every other shape and every fault falls through to the schema reader, so both give the same result, errors
included. `decode_batch` decodes a fetched batch in one call, and gives the fast path's commits as
`CommitFields` tuples rather than `OffsetCommit`s: building the frozen dataclass cost as much as reading the
record, and `Storage.apply_batch` takes the tuples as they are.

| type | key                         | with a value                | tombstone (value None)          |
|------|-----------------------------|-----------------------------|---------------------------------|
| 0, 1 | group, topic, partition     | OffsetCommit (value v0-v4)  | OffsetTombstone                 |
| 2    | group                       | GroupMetadata (value v0-v4) | GroupTombstone                  |
| 3    | group                       | SkippedRecord (group epoch) | GroupTombstone (group deleted)  |
| 4    | group                       | ConsumerGroupTopics         | SkippedRecord                   |
| 5    | group, member id            | ConsumerGroupMember         | ConsumerGroupMemberLeft         |
| 6, 7 | (target assignment)         | SkippedRecord               | SkippedRecord                   |
| 8    | group, member id            | ConsumerGroupAssignment     | ConsumerGroupAssignment, empty  |
| else | (share, streams, future...) | SkippedRecord               | SkippedRecord                   |

Bytes that do not fit the schema give a `DecodeError` naming the part, the problem and the byte position.

Decisions, each pinned by a test:
- Offset-commit value v2 (offset, metadata, commit timestamp) is decoded. Burrow rejects it; Kafka defines it.
- The v4 metadata length is a real unsigned varint (Burrow reads one byte: 127+ bytes of metadata misparse).
- Only a `None` value is a tombstone. An empty value is malformed: taking it for a deletion would drop state.
- Strings are decoded as UTF-8 with replacement characters, as Kafka's Java reader does, so one odd byte in a
  group name does not drop the group's commits.
- KIP-848 topic ids are rendered as Kafka's `Uuid.toString()` renders them (URL-safe base64, no padding): the
  form Kafka's tools print, and the form `ConsumerGroupTopics` pairs with names.
- `ConsumerGroupAssignment` carries the member's assigned partitions, not those pending revocation, as
  Kafka's ConsumerGroupDescribe reports them.
- A classic member's assignment is decoded only when the protocol type is "consumer" (members of other
  protocol types keep empty assignments), by `decode_assignment`, which the admin-API source shares. It reads
  ConsumerProtocolAssignment, any version >= 0 with the v0-v2 layout as Kafka's client does, and not the
  trailing user data, so a client that omits it still gets its partitions. An assignment that cannot be
  decoded is empty and the record stands: the assignment is an opaque client payload inside a sound record,
  and rejecting the record would also lose the generation and every other member.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Final

from exporter.core.fast_commits import fast_commit_fields
from exporter.core.group_schemas import (
    CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT_VALUE,
    CONSUMER_GROUP_MEMBER_METADATA_VALUE,
    CONSUMER_GROUP_PARTITION_METADATA_VALUE,
    CONSUMER_PROTOCOL_ASSIGNMENT,
    GROUP_KEY,
    GROUP_METADATA_VALUE,
    MEMBER_KEY,
)
from exporter.core.model import (
    CommitFields,
    ConsumerGroupAssignment,
    ConsumerGroupMember,
    ConsumerGroupMemberLeft,
    ConsumerGroupTopics,
    DecodeError,
    GroupMetadata,
    GroupTombstone,
    Member,
    OffsetCommit,
    OffsetTombstone,
    Record,
    SkippedRecord,
    TopicPartitions,
)
from exporter.core.offset_schemas import OFFSET_COMMIT_KEY, OFFSET_COMMIT_VALUE
from exporter.core.wire import MalformedError, Reader, int16, read_value, unpack_int16, uuid_string

__all__ = ["decode", "decode_assignment", "decode_batch", "uuid_string"]


# ------------------------------------------------------------------------------------------------------------
# One handler per record type: the key reader is positioned after the type.


def _offset_commit(key: Reader, value: bytes | None) -> Record:
    k = OFFSET_COMMIT_KEY(key)
    if value is None:
        return OffsetTombstone(k["group"], k["topic"], k["partition"])
    v = read_value(OFFSET_COMMIT_VALUE, value)
    return OffsetCommit(
        group=k["group"],
        topic=k["topic"],
        partition=k["partition"],
        offset=v["offset"],
        timestamp_ms=v["commit_timestamp"],
        leader_epoch=v["leader_epoch"],
        metadata=v["metadata"],
    )


def _group_metadata(key: Reader, value: bytes | None) -> Record:
    group = GROUP_KEY(key)["group"]
    if value is None:
        return GroupTombstone(group)
    v = read_value(GROUP_METADATA_VALUE, value)
    consumer = v["protocol_type"] == "consumer"
    members = tuple(
        Member(
            member_id=m["member_id"],
            client_id=m["client_id"],
            client_host=m["client_host"],
            group_instance_id=m["group_instance_id"],
            rebalance_timeout_ms=m["rebalance_timeout"],
            session_timeout_ms=m["session_timeout"],
            assignment=decode_assignment(m["assignment"]) if consumer else (),
        )
        for m in v["members"]
    )
    return GroupMetadata(
        group=group,
        protocol_type=v["protocol_type"],
        generation=v["generation"],
        protocol=v["protocol"],
        leader=v["leader"],
        members=members,
        current_state_timestamp_ms=v["current_state_timestamp"],
    )


def decode_assignment(payload: bytes) -> tuple[TopicPartitions, ...]:
    """A classic consumer's assignment (ConsumerProtocolAssignment bytes, as in group metadata and in
    DescribeGroups), by topic name; empty when there is none or it cannot be decoded. Never raises."""
    if not payload:
        return ()
    r = Reader(payload, "member assignment")
    try:
        if int16(r) < 0:
            return ()
        topics = CONSUMER_PROTOCOL_ASSIGNMENT(r)["assigned_partitions"]
    except MalformedError:
        return ()
    return tuple(TopicPartitions(t["topic"], t["partitions"]) for t in topics)


def _consumer_group(key: Reader, value: bytes | None) -> Record:
    group = GROUP_KEY(key)["group"]
    return GroupTombstone(group) if value is None else SkippedRecord(3)


def _consumer_group_topics(key: Reader, value: bytes | None) -> Record:
    group = GROUP_KEY(key)["group"]
    if value is None:
        return SkippedRecord(4)
    topics = read_value(CONSUMER_GROUP_PARTITION_METADATA_VALUE, value)["topics"]
    return ConsumerGroupTopics(group, tuple((t["topic_id"], t["topic_name"]) for t in topics))


def _consumer_group_member(key: Reader, value: bytes | None) -> Record:
    k = MEMBER_KEY(key)
    if value is None:
        return ConsumerGroupMemberLeft(k["group"], k["member_id"])
    v = read_value(CONSUMER_GROUP_MEMBER_METADATA_VALUE, value)
    return ConsumerGroupMember(
        group=k["group"],
        member_id=k["member_id"],
        client_id=v["client_id"],
        client_host=v["client_host"],
        instance_id=v["instance_id"],
        rack_id=v["rack_id"],
    )


def _consumer_group_assignment(key: Reader, value: bytes | None) -> Record:
    k = MEMBER_KEY(key)
    if value is None:
        return ConsumerGroupAssignment(k["group"], k["member_id"], ())
    assigned = read_value(CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT_VALUE, value)["assigned_partitions"]
    partitions = tuple(TopicPartitions(t["topic_id"], t["partitions"], by_id=True) for t in assigned)
    return ConsumerGroupAssignment(k["group"], k["member_id"], partitions)


_HANDLERS: Final[dict[int, Callable[[Reader, bytes | None], Record]]] = {
    0: _offset_commit,
    1: _offset_commit,
    2: _group_metadata,
    3: _consumer_group,
    4: _consumer_group_topics,
    5: _consumer_group_member,
    8: _consumer_group_assignment,
}


def decode_batch(keys: Sequence[bytes | None], values: Sequence[bytes | None]) -> list[CommitFields | Record]:
    """Decode a fetched batch of `__consumer_offsets` records, `keys[i]` with `values[i]`, in one call: what
    `decode` gives for each, in order, except that an offset commit may come as its `CommitFields` (as it does
    in the shapes Kafka writes). Never raises."""
    out: list[CommitFields | Record] = []
    append = out.append
    for key, value in zip(keys, values, strict=True):
        fields = None if key is None or value is None else fast_commit_fields(key, value)
        append(_decode(key, value) if fields is None else fields)
    return out


def decode(key: bytes | None, value: bytes | None) -> Record:
    """Decode one `__consumer_offsets` record; a `None` value is a tombstone. Never raises."""
    if key is not None and value is not None:
        fields = fast_commit_fields(key, value)
        if fields is not None:
            return OffsetCommit(*fields)
    return _decode(key, value)


def _decode(key: bytes | None, value: bytes | None) -> Record:
    """The generic reader: every record type, version and fault."""
    if key is None:
        return DecodeError(None, "key: missing")
    try:
        (key_type,) = unpack_int16(key, 0)
    except struct.error:
        return DecodeError(None, f"key: {len(key)} bytes, shorter than the int16 record type")
    handler = _HANDLERS.get(key_type)
    if handler is None:
        return SkippedRecord(key_type)
    try:
        return handler(Reader(key, "key", 2), value)
    except MalformedError as exc:
        return DecodeError(key_type, str(exc))
