"""Decode `__consumer_offsets` records: key and value bytes in, one `model.Record` out, never an exception.

A key starts with an int16 record type, a value with an int16 version. The schemas below transcribe Kafka
4.x's JSON message definitions (`group-coordinator/src/main/resources/common/message/`) field by field, and a
version table compiled from each picks the layout. In a flexible version, strings, bytes and arrays carry
unsigned-varint lengths and every struct ends with tagged fields; lagwatch needs no tagged field, so all are
skipped. Bytes after the last declared field are ignored, as Kafka's generated readers ignore them, and a
flexible value that ends just before its final tagged-field count is read as having none.

Offset commits, nearly every record of the topic, first try a fast path for the shapes Kafka writes (value
v1, v3, v4 with short metadata and no tagged field), which reads them with precompiled Structs; every other
shape and every fault falls through to the schema reader, so both give the same result, errors included.
`decode_batch` decodes a fetched batch in one call.

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

import base64
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from exporter.core.model import (
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

__all__ = ["decode", "decode_assignment", "decode_batch", "uuid_string"]


class _MalformedError(Exception):
    """Bytes that do not fit the schema; `decode` turns it into a `DecodeError`."""


class _Reader:
    """A cursor over one key, value or nested payload; `part` names it in error reasons."""

    __slots__ = ("buf", "part", "pos")

    def __init__(self, buf: bytes, part: str, pos: int = 0) -> None:
        self.buf = buf
        self.part = part
        self.pos = pos

    def error(self, problem: str, at: int | None = None) -> _MalformedError:
        """The fault, placed at byte `at` (by default the cursor): where the wrong or missing bytes start."""
        return _MalformedError(f"{self.part}: {problem} at byte {self.pos if at is None else at}")


_Read = Callable[[_Reader], Any]


# ------------------------------------------------------------------------------------------------------------
# Primitives. Fixed-width integers go through precompiled Structs: `unpack_from` does the bounds check.


def _fixed(layout: struct.Struct, name: str) -> _Read:
    unpack_from = layout.unpack_from
    size = layout.size

    def read(r: _Reader) -> Any:
        try:
            (value,) = unpack_from(r.buf, r.pos)
        except struct.error:
            raise r.error(f"truncated {name}") from None
        r.pos += size
        return value

    return read


_INT16_LAYOUT: Final = struct.Struct(">h")
_unpack_int16: Final = _INT16_LAYOUT.unpack_from
_int8: Final = _fixed(struct.Struct(">b"), "int8")
_int16: Final = _fixed(_INT16_LAYOUT, "int16")
_int32: Final = _fixed(struct.Struct(">i"), "int32")
_int64: Final = _fixed(struct.Struct(">q"), "int64")


def _uvarint(r: _Reader) -> int:
    buf = r.buf
    pos = r.pos
    result = 0
    for shift in range(0, 35, 7):
        if pos >= len(buf):
            raise r.error("truncated unsigned varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            r.pos = pos
            return result
    raise r.error("unsigned varint longer than 5 bytes")


def _take(r: _Reader, size: int) -> bytes:
    start = r.pos
    end = start + size
    if end > len(r.buf):
        raise r.error(f"{size}-byte field with {len(r.buf) - start} bytes left")
    r.pos = end
    return r.buf[start:end]


def _text(r: _Reader, size: int) -> str:
    return _take(r, size).decode("utf-8", "replace")


def _string(r: _Reader) -> str:
    # The hot path (three per offset commit), hence one call instead of _int16 + _text.
    buf = r.buf
    pos = r.pos
    try:
        (size,) = _unpack_int16(buf, pos)
    except struct.error:
        raise r.error("truncated string length") from None
    if size < 0:
        raise r.error("null or negative length in a non-nullable string")
    end = pos + 2 + size
    if end > len(buf):
        raise r.error(f"{size}-byte string with {len(buf) - pos - 2} bytes left", pos + 2)
    r.pos = end
    return buf[pos + 2 : end].decode("utf-8", "replace")


def _nullable_string(r: _Reader) -> str | None:
    start = r.pos
    size = _int16(r)
    if size == -1:
        return None
    if size < 0:
        raise r.error(f"negative string length {size}", start)
    return _text(r, size)


def _compact_string(r: _Reader) -> str:
    start = r.pos
    size = _uvarint(r) - 1
    if size < 0:
        raise r.error("null in a non-nullable compact string", start)
    return _text(r, size)


def _compact_nullable_string(r: _Reader) -> str | None:
    size = _uvarint(r) - 1
    return None if size < 0 else _text(r, size)


def _bytes(r: _Reader) -> bytes:
    start = r.pos
    size = _int32(r)
    if size < 0:
        raise r.error("null or negative length in non-nullable bytes", start)
    return _take(r, size)


def _compact_bytes(r: _Reader) -> bytes:
    start = r.pos
    size = _uvarint(r) - 1
    if size < 0:
        raise r.error("null in non-nullable compact bytes", start)
    return _take(r, size)


def uuid_string(raw: bytes) -> str:
    """A 16-byte Kafka Uuid as `Uuid.toString()` renders it: URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _uuid(r: _Reader) -> str:
    return uuid_string(_take(r, 16))


def _skip_tagged_fields(r: _Reader) -> None:
    for _ in range(_uvarint(r)):
        _uvarint(r)
        _take(r, _uvarint(r))


def _skip_final_tagged_fields(r: _Reader) -> None:
    # A value that ends where its own tagged fields would start has none. Kafka always writes the count, but
    # Burrow's v4 fixtures omit it, and nothing is lost by accepting them.
    if r.pos < len(r.buf):
        _skip_tagged_fields(r)


def _array_length(r: _Reader) -> int:
    return int(_int32(r))


def _compact_array_length(r: _Reader) -> int:
    return _uvarint(r) - 1


# ------------------------------------------------------------------------------------------------------------
# Schema vocabulary, after Kafka's JSON message definitions. A type compiles to a reader for one version.

_ANY_VERSION: Final = range(0x8000)


def _since(version: int) -> range:
    return range(version, 0x8000)


@dataclass(frozen=True, slots=True)
class _Scalar:
    """A type whose encoding depends only on whether the version is flexible."""

    classic: _Read
    flexible: _Read

    def reader(self, version: int, flexible: bool) -> _Read:
        return self.flexible if flexible else self.classic


_INT8: Final = _Scalar(_int8, _int8)
_INT32: Final = _Scalar(_int32, _int32)
_INT64: Final = _Scalar(_int64, _int64)
_UUID: Final = _Scalar(_uuid, _uuid)
_STRING: Final = _Scalar(_string, _compact_string)
_NULLABLE_STRING: Final = _Scalar(_nullable_string, _compact_nullable_string)
_BYTES: Final = _Scalar(_bytes, _compact_bytes)


@dataclass(frozen=True, slots=True)
class _Array:
    """A non-nullable array: int32 count in classic versions, unsigned varint count + 1 in flexible ones."""

    item: _Type

    def reader(self, version: int, flexible: bool) -> _Read:
        length = _compact_array_length if flexible else _array_length
        if self.item is _INT32:
            return _int32_array(length)
        item = self.item.reader(version, flexible)

        def read(r: _Reader) -> list[Any]:
            start = r.pos
            count = length(r)
            _check_count(r, start, count, 1)
            return [item(r) for _ in range(count)]

        return read


def _check_count(r: _Reader, start: int, count: int, item_size: int) -> None:
    # Every item takes at least `item_size` bytes, so garbage counts fail here instead of looping.
    if count < 0:
        raise r.error("null or negative count in a non-nullable array", start)
    if count * item_size > len(r.buf) - r.pos:
        raise r.error(f"array of {count} items in {len(r.buf) - r.pos} bytes", start)


def _int32_array(length: _Read) -> _Read:
    def read(r: _Reader) -> tuple[int, ...]:
        start = r.pos
        count = length(r)
        _check_count(r, start, count, 4)
        values: tuple[int, ...] = struct.unpack_from(f">{count}i", r.buf, r.pos)
        r.pos += 4 * count
        return values

    return read


@dataclass(frozen=True, slots=True)
class _Field:
    """One field: its name, its type and the versions that have it (Kafka's "versions")."""

    name: str
    type: _Type
    versions: range = _ANY_VERSION
    default: Any = None
    """The value of the field in versions that do not have it."""


@dataclass(frozen=True, slots=True)
class _Struct:
    """Fields in order, then (in flexible versions) tagged fields. Reads a dict of field name to value."""

    fields: tuple[_Field, ...]

    def reader(self, version: int, flexible: bool, trailer: _Read = _skip_tagged_fields) -> _Read:
        present = tuple(
            (f.name, f.type.reader(version, flexible)) for f in self.fields if version in f.versions
        )
        absent = {f.name: f.default for f in self.fields if version not in f.versions}

        def read(r: _Reader) -> dict[str, Any]:
            out = dict(absent)
            for name, read_field in present:
                out[name] = read_field(r)
            if flexible:
                trailer(r)
            return out

        return read


_Type = _Scalar | _Array | _Struct


@dataclass(frozen=True, slots=True)
class _Message:
    """A record value schema: `validVersions` and `flexibleVersions` as in Kafka's JSON, and the body."""

    valid: range
    flexible: range
    body: _Struct
    table: dict[int, tuple[str, _Read]] = field(init=False, repr=False)
    """Version to (the part name for error reasons, the reader)."""

    def __post_init__(self) -> None:
        table = {
            v: (f"value v{v}", self.body.reader(v, v in self.flexible, _skip_final_tagged_fields))
            for v in self.valid
        }
        object.__setattr__(self, "table", table)


def _schema(*fields: _Field) -> _Struct:
    return _Struct(fields)


def _key(*fields: _Field) -> _Read:
    """Keys are version 0 and never flexible: the record type is followed directly by the fields."""
    return _schema(*fields).reader(0, flexible=False)


# ------------------------------------------------------------------------------------------------------------
# The schemas (Kafka 4.x). Field names are snake_case versions of Kafka's.

_GROUP_KEY: Final = _key(_Field("group", _STRING))
_MEMBER_KEY: Final = _key(_Field("group", _STRING), _Field("member_id", _STRING))
_OFFSET_COMMIT_KEY: Final = _key(
    _Field("group", _STRING), _Field("topic", _STRING), _Field("partition", _INT32)
)

_OFFSET_COMMIT_VALUE: Final = _Message(
    valid=range(5),
    flexible=_since(4),
    body=_schema(
        _Field("offset", _INT64),
        _Field("leader_epoch", _INT32, _since(3), default=-1),
        _Field("metadata", _STRING),
        _Field("commit_timestamp", _INT64),
        _Field("expire_timestamp", _INT64, range(1, 2), default=-1),
    ),
)

_GROUP_METADATA_VALUE: Final = _Message(
    valid=range(5),
    flexible=_since(4),
    body=_schema(
        _Field("protocol_type", _STRING),
        _Field("generation", _INT32),
        _Field("protocol", _NULLABLE_STRING),
        _Field("leader", _NULLABLE_STRING),
        _Field("current_state_timestamp", _INT64, _since(2), default=-1),
        _Field(
            "members",
            _Array(
                _schema(
                    _Field("member_id", _STRING),
                    _Field("group_instance_id", _NULLABLE_STRING, _since(3), default=None),
                    _Field("client_id", _STRING),
                    _Field("client_host", _STRING),
                    _Field("rebalance_timeout", _INT32, _since(1), default=-1),
                    _Field("session_timeout", _INT32),
                    _Field("subscription", _BYTES),
                    _Field("assignment", _BYTES),
                )
            ),
        ),
    ),
)

# ConsumerProtocolAssignment (clients/.../ConsumerProtocolAssignment.json), after its own int16 version. Its
# last field, the nullable UserData, is left out on purpose: lagwatch has no use for it (module docstring).
_CONSUMER_PROTOCOL_ASSIGNMENT: Final = _schema(
    _Field(
        "assigned_partitions",
        _Array(_schema(_Field("topic", _STRING), _Field("partitions", _Array(_INT32)))),
    ),
).reader(0, flexible=False)

_CONSUMER_GROUP_PARTITION_METADATA_VALUE: Final = _Message(
    valid=range(1),
    flexible=_since(0),
    body=_schema(
        _Field(
            "topics",
            _Array(
                _schema(
                    _Field("topic_id", _UUID),
                    _Field("topic_name", _STRING),
                    _Field("num_partitions", _INT32),
                    _Field(
                        "partition_metadata",
                        _Array(_schema(_Field("partition", _INT32), _Field("racks", _Array(_STRING)))),
                    ),
                )
            ),
        ),
    ),
)

_CONSUMER_GROUP_MEMBER_METADATA_VALUE: Final = _Message(
    valid=range(1),
    flexible=_since(0),
    body=_schema(
        _Field("instance_id", _NULLABLE_STRING),
        _Field("rack_id", _NULLABLE_STRING),
        _Field("client_id", _STRING),
        _Field("client_host", _STRING),
        _Field("subscribed_topic_names", _Array(_STRING)),
        _Field("subscribed_topic_regex", _NULLABLE_STRING),
        _Field("rebalance_timeout_ms", _INT32),
        _Field("server_assignor", _NULLABLE_STRING),
    ),
)

_TOPIC_PARTITIONS: Final = _schema(_Field("topic_id", _UUID), _Field("partitions", _Array(_INT32)))

_CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT_VALUE: Final = _Message(
    valid=range(1),
    flexible=_since(0),
    body=_schema(
        _Field("member_epoch", _INT32),
        _Field("previous_member_epoch", _INT32),
        _Field("state", _INT8),
        _Field("assigned_partitions", _Array(_TOPIC_PARTITIONS)),
        _Field("partitions_pending_revocation", _Array(_TOPIC_PARTITIONS)),
    ),
)


def _value(message: _Message, value: bytes) -> dict[str, Any]:
    r = _Reader(value, "value")
    version = _int16(r)
    entry = message.table.get(version)
    if entry is None:
        raise r.error(f"unsupported version {version}", 0)
    r.part, read = entry
    result: dict[str, Any] = read(r)
    return result


# ------------------------------------------------------------------------------------------------------------
# One handler per record type: the key reader is positioned after the type.


def _offset_commit(key: _Reader, value: bytes | None) -> Record:
    k = _OFFSET_COMMIT_KEY(key)
    if value is None:
        return OffsetTombstone(k["group"], k["topic"], k["partition"])
    v = _value(_OFFSET_COMMIT_VALUE, value)
    return OffsetCommit(
        group=k["group"],
        topic=k["topic"],
        partition=k["partition"],
        offset=v["offset"],
        timestamp_ms=v["commit_timestamp"],
        leader_epoch=v["leader_epoch"],
        metadata=v["metadata"],
    )


def _group_metadata(key: _Reader, value: bytes | None) -> Record:
    group = _GROUP_KEY(key)["group"]
    if value is None:
        return GroupTombstone(group)
    v = _value(_GROUP_METADATA_VALUE, value)
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
    r = _Reader(payload, "member assignment")
    try:
        if _int16(r) < 0:
            return ()
        topics = _CONSUMER_PROTOCOL_ASSIGNMENT(r)["assigned_partitions"]
    except _MalformedError:
        return ()
    return tuple(TopicPartitions(t["topic"], t["partitions"]) for t in topics)


def _consumer_group(key: _Reader, value: bytes | None) -> Record:
    group = _GROUP_KEY(key)["group"]
    return GroupTombstone(group) if value is None else SkippedRecord(3)


def _consumer_group_topics(key: _Reader, value: bytes | None) -> Record:
    group = _GROUP_KEY(key)["group"]
    if value is None:
        return SkippedRecord(4)
    topics = _value(_CONSUMER_GROUP_PARTITION_METADATA_VALUE, value)["topics"]
    return ConsumerGroupTopics(group, tuple((t["topic_id"], t["topic_name"]) for t in topics))


def _consumer_group_member(key: _Reader, value: bytes | None) -> Record:
    k = _MEMBER_KEY(key)
    if value is None:
        return ConsumerGroupMemberLeft(k["group"], k["member_id"])
    v = _value(_CONSUMER_GROUP_MEMBER_METADATA_VALUE, value)
    return ConsumerGroupMember(
        group=k["group"],
        member_id=k["member_id"],
        client_id=v["client_id"],
        client_host=v["client_host"],
        instance_id=v["instance_id"],
        rack_id=v["rack_id"],
    )


def _consumer_group_assignment(key: _Reader, value: bytes | None) -> Record:
    k = _MEMBER_KEY(key)
    if value is None:
        return ConsumerGroupAssignment(k["group"], k["member_id"], ())
    assigned = _value(_CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT_VALUE, value)["assigned_partitions"]
    partitions = tuple(TopicPartitions(t["topic_id"], t["partitions"], by_id=True) for t in assigned)
    return ConsumerGroupAssignment(k["group"], k["member_id"], partitions)


_HANDLERS: Final[dict[int, Callable[[_Reader, bytes | None], Record]]] = {
    0: _offset_commit,
    1: _offset_commit,
    2: _group_metadata,
    3: _consumer_group,
    4: _consumer_group_topics,
    5: _consumer_group_member,
    8: _consumer_group_assignment,
}


# ------------------------------------------------------------------------------------------------------------
# The fast path. Offset commits are nearly every record of the topic, and the generic reader above spends
# most of its time in per-field calls and dicts. Kafka writes them in a few fixed shapes (key types 0/1;
# value v1 from old brokers, v3 from 2.1-3.x, v4 from 4.x), read here with precompiled Structs in one go.
# Anything else, including every malformed record, goes to the generic reader (None), so the fast path needs
# no error handling of its own and cannot disagree with it: a property test checks both give the same result.

_KEY_HEAD: Final = struct.Struct(">hh")
"""record type, group length"""
_KEY_LENGTH: Final = struct.Struct(">h")
_KEY_PARTITION: Final = struct.Struct(">i")
_V1_HEAD: Final = struct.Struct(">hqh")
"""version, offset, metadata length; after the metadata: commit and expire timestamps."""
_V3_HEAD: Final = struct.Struct(">hqih")
"""version, offset, leader epoch, metadata length; after the metadata: commit timestamp."""
_V4_EMPTY: Final = struct.Struct(">hqiBqB")
"""version, offset, leader epoch, first byte of the metadata's unsigned-varint length + 1; for empty metadata
(that byte 1) also the commit timestamp and the tagged-field count."""
_TIMESTAMP: Final = struct.Struct(">q")
_TIMESTAMPS: Final = struct.Struct(">qq")


def _fast_offset_commit(key: bytes, value: bytes) -> OffsetCommit | None:
    """An offset commit (key type 0 or 1) in one of the common shapes, or None for the generic reader: other
    record types and versions, a metadata length of more than one varint byte in v4, tagged fields, and every
    fault. Bytes after the last field are ignored, as the generic reader ignores them."""
    try:
        key_type, group_size = _KEY_HEAD.unpack_from(key)
        if not 0 <= key_type <= 1 or group_size < 0:
            return None
        topic_at = 4 + group_size
        (topic_size,) = _KEY_LENGTH.unpack_from(key, topic_at)
        if topic_size < 0:
            return None
        partition_at = topic_at + 2 + topic_size
        (partition,) = _KEY_PARTITION.unpack_from(key, partition_at)
        version = value[1] if value[0] == 0 else -1
        if version == 4:
            _, offset, leader_epoch, size, timestamp, tags = _V4_EMPTY.unpack_from(value)
            if size == 1 and tags == 0:
                # Empty metadata and no tagged field: what Kafka 4.x writes for nearly every commit.
                metadata = ""
            else:
                # A one-byte varint below 0x80; 0 is a null string, for the generic reader to reject.
                if not 0 < size < 0x80:
                    return None
                end = 14 + size
                (timestamp,) = _TIMESTAMP.unpack_from(value, end)
                # A flexible struct ends with its tagged-field count: none written, or zero fields.
                if end + 8 < len(value) and value[end + 8] != 0:
                    return None
                metadata = value[15:end].decode("utf-8", "replace")
        elif version == 3:
            _, offset, leader_epoch, size = _V3_HEAD.unpack_from(value)
            if size < 0:
                return None
            end = 16 + size
            (timestamp,) = _TIMESTAMP.unpack_from(value, end)
            metadata = value[16:end].decode("utf-8", "replace")
        elif version == 1:
            _, offset, size = _V1_HEAD.unpack_from(value)
            if size < 0:
                return None
            end = 12 + size
            # The expire timestamp is read only to check that it is there; lagwatch has no use for it.
            timestamp, _ = _TIMESTAMPS.unpack_from(value, end)
            leader_epoch = -1
            metadata = value[12:end].decode("utf-8", "replace")
        else:
            return None
    except (struct.error, IndexError):
        return None
    record: OffsetCommit = _new(OffsetCommit)
    _set_group(record, key[4:topic_at].decode("utf-8", "replace"))
    _set_topic(record, key[topic_at + 2 : partition_at].decode("utf-8", "replace"))
    _set_partition(record, partition)
    _set_offset(record, offset)
    _set_timestamp(record, timestamp)
    _set_leader_epoch(record, leader_epoch)
    _set_metadata(record, metadata)
    return record


# A frozen dataclass's __init__ sets each field through object.__setattr__, which took as long as decoding the
# rest of the record (1.3 us of 2.9). Its slots' own descriptors set the same fields without that detour; the
# result is the same object (the fast-path property test compares it with the generic reader's).
_new: Final = object.__new__
_FIELDS: Final = ("group", "topic", "partition", "offset", "timestamp_ms", "leader_epoch", "metadata")
(
    _set_group,
    _set_topic,
    _set_partition,
    _set_offset,
    _set_timestamp,
    _set_leader_epoch,
    _set_metadata,
) = (vars(OffsetCommit)[name].__set__ for name in _FIELDS)


def decode_batch(keys: Sequence[bytes | None], values: Sequence[bytes | None]) -> list[Record]:
    """Decode a fetched batch of `__consumer_offsets` records, `keys[i]` with `values[i]`, in one call: what
    `decode` gives for each, in order. Never raises."""
    return [decode(key, value) for key, value in zip(keys, values, strict=True)]


def decode(key: bytes | None, value: bytes | None) -> Record:
    """Decode one `__consumer_offsets` record; a `None` value is a tombstone. Never raises."""
    if key is not None and value is not None:
        record = _fast_offset_commit(key, value)
        if record is not None:
            return record
    return _decode(key, value)


def _decode(key: bytes | None, value: bytes | None) -> Record:
    """The generic reader: every record type, version and fault."""
    if key is None:
        return DecodeError(None, "key: missing")
    try:
        (key_type,) = _unpack_int16(key, 0)
    except struct.error:
        return DecodeError(None, f"key: {len(key)} bytes, shorter than the int16 record type")
    handler = _HANDLERS.get(key_type)
    if handler is None:
        return SkippedRecord(key_type)
    try:
        return handler(_Reader(key, "key", 2), value)
    except _MalformedError as exc:
        return DecodeError(key_type, str(exc))
