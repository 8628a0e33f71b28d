"""The fast path of offset commits: the common shapes read with precompiled Structs, everything else left to
the schema reader.

Offset commits are nearly every record of the topic, and the generic reader (`decoder`, on `wire`'s schemas)
spends most of its time in per-field calls and dicts. Kafka writes them in a few fixed shapes (key types 0/1;
value v1 from old brokers, v3 from 2.1-3.x, v4 from 4.x), read here in one go. Anything else, including every
malformed record, goes to the generic reader (None), so the fast path needs no error handling of its own and
cannot disagree with it: a property test checks both give the same result.
"""

from __future__ import annotations

import struct
from typing import Final

from exporter.core.model import CommitFields

__all__ = ["fast_commit_fields"]

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


def fast_commit_fields(key: bytes, value: bytes) -> CommitFields | None:
    """An offset commit's fields (key type 0 or 1) in one of the common shapes, or None for the generic
    reader: other record types and versions, a metadata length of more than one varint byte in v4, tagged
    fields, and every fault. Bytes after the last field are ignored, as the generic reader ignores them."""
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
    return (
        key[4:topic_at].decode("utf-8", "replace"),
        key[topic_at + 2 : partition_at].decode("utf-8", "replace"),
        partition,
        offset,
        timestamp,
        leader_epoch,
        metadata,
    )
