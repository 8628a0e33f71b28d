"""The schemas of offset commits (record types 0 and 1), after Kafka 4.x's `OffsetCommitKey.json` and
`OffsetCommitValue.json`. Field names are snake_case versions of Kafka's."""

from __future__ import annotations

from typing import Final

from exporter.core.wire import INT32, INT64, STRING, Field, Message, key_reader, schema, since

__all__ = ["OFFSET_COMMIT_KEY", "OFFSET_COMMIT_VALUE"]

OFFSET_COMMIT_KEY: Final = key_reader(
    Field("group", STRING), Field("topic", STRING), Field("partition", INT32)
)

OFFSET_COMMIT_VALUE: Final = Message(
    valid=range(5),
    flexible=since(4),
    body=schema(
        Field("offset", INT64),
        Field("leader_epoch", INT32, since(3), default=-1),
        Field("metadata", STRING),
        Field("commit_timestamp", INT64),
        Field("expire_timestamp", INT64, range(1, 2), default=-1),
    ),
)
