"""The schemas of group records (Kafka 4.x): classic group metadata (type 2), the classic consumer's
assignment inside it, and the KIP-848 consumer-group records (types 4, 5 and 8). Field names are snake_case
versions of Kafka's."""

from __future__ import annotations

from typing import Final

from exporter.core.wire import (
    BYTES,
    INT8,
    INT32,
    INT64,
    NULLABLE_STRING,
    STRING,
    UUID,
    Array,
    Field,
    Message,
    key_reader,
    schema,
    since,
)

__all__ = [
    "CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT_VALUE",
    "CONSUMER_GROUP_MEMBER_METADATA_VALUE",
    "CONSUMER_GROUP_PARTITION_METADATA_VALUE",
    "CONSUMER_PROTOCOL_ASSIGNMENT",
    "GROUP_KEY",
    "GROUP_METADATA_VALUE",
    "MEMBER_KEY",
]

GROUP_KEY: Final = key_reader(Field("group", STRING))
MEMBER_KEY: Final = key_reader(Field("group", STRING), Field("member_id", STRING))
GROUP_METADATA_VALUE: Final = Message(
    valid=range(5),
    flexible=since(4),
    body=schema(
        Field("protocol_type", STRING),
        Field("generation", INT32),
        Field("protocol", NULLABLE_STRING),
        Field("leader", NULLABLE_STRING),
        Field("current_state_timestamp", INT64, since(2), default=-1),
        Field(
            "members",
            Array(
                schema(
                    Field("member_id", STRING),
                    Field("group_instance_id", NULLABLE_STRING, since(3), default=None),
                    Field("client_id", STRING),
                    Field("client_host", STRING),
                    Field("rebalance_timeout", INT32, since(1), default=-1),
                    Field("session_timeout", INT32),
                    Field("subscription", BYTES),
                    Field("assignment", BYTES),
                )
            ),
        ),
    ),
)

# ConsumerProtocolAssignment (clients/.../ConsumerProtocolAssignment.json), after its own int16 version. Its
# last field, the nullable UserData, is left out on purpose: lagwatch has no use for it (see `decoder`).
CONSUMER_PROTOCOL_ASSIGNMENT: Final = schema(
    Field(
        "assigned_partitions",
        Array(schema(Field("topic", STRING), Field("partitions", Array(INT32)))),
    ),
).reader(0, flexible=False)

CONSUMER_GROUP_PARTITION_METADATA_VALUE: Final = Message(
    valid=range(1),
    flexible=since(0),
    body=schema(
        Field(
            "topics",
            Array(
                schema(
                    Field("topic_id", UUID),
                    Field("topic_name", STRING),
                    Field("num_partitions", INT32),
                    Field(
                        "partition_metadata",
                        Array(schema(Field("partition", INT32), Field("racks", Array(STRING)))),
                    ),
                )
            ),
        ),
    ),
)

CONSUMER_GROUP_MEMBER_METADATA_VALUE: Final = Message(
    valid=range(1),
    flexible=since(0),
    body=schema(
        Field("instance_id", NULLABLE_STRING),
        Field("rack_id", NULLABLE_STRING),
        Field("client_id", STRING),
        Field("client_host", STRING),
        Field("subscribed_topic_names", Array(STRING)),
        Field("subscribed_topic_regex", NULLABLE_STRING),
        Field("rebalance_timeout_ms", INT32),
        Field("server_assignor", NULLABLE_STRING),
    ),
)

_TOPIC_PARTITIONS: Final = schema(Field("topic_id", UUID), Field("partitions", Array(INT32)))

CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT_VALUE: Final = Message(
    valid=range(1),
    flexible=since(0),
    body=schema(
        Field("member_epoch", INT32),
        Field("previous_member_epoch", INT32),
        Field("state", INT8),
        Field("assigned_partitions", Array(_TOPIC_PARTITIONS)),
        Field("partitions_pending_revocation", Array(_TOPIC_PARTITIONS)),
    ),
)
