"""Tests of exporter.core.decoder: byte fixtures for every record type and value version, Burrow's fixtures,
round trips through the test encoder, and property tests that no input makes `decode` raise."""

from __future__ import annotations

import offsets_encoder as enc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.core.decoder import (
    _decode,
    decode,
    decode_assignment,
    decode_batch,
)
from exporter.core.fast_commits import fast_commit_fields
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

# ------------------------------------------------------------------------------------------------------------
# Burrow's fixtures (burrow-semantics.md §10.4 and Burrow's kafka_client_test.go), verbatim.

BURROW_OFFSET_KEY = b"\x00\x01" + b"\x00\x09testgroup\x00\x09testtopic\x00\x00\x00\x0b"
BURROW_OFFSET = b"\x00\x00\x00\x00\x00\x00\x20\xb4"  # 8372
BURROW_METADATA = b"\x00\x08testdata"
BURROW_TIMESTAMP = b"\x00\x00\x00\x00\x00\x00\x06\x65"  # 1637
BURROW_VALUE_V0 = b"\x00\x00" + BURROW_OFFSET + BURROW_METADATA + BURROW_TIMESTAMP
BURROW_VALUE_V2 = b"\x00\x02" + BURROW_OFFSET + BURROW_METADATA + BURROW_TIMESTAMP
BURROW_VALUE_V3 = b"\x00\x03" + BURROW_OFFSET + b"\x00\x00\x00\x00" + BURROW_METADATA + BURROW_TIMESTAMP
BURROW_VALUE_V4 = b"\x00\x04" + BURROW_OFFSET + b"\x00\x00\x00\x00" + b"\x09testdata" + BURROW_TIMESTAMP

BURROW_GROUP_KEY = b"\x00\x02\x00\x09testgroup"
BURROW_GROUP_VALUE = (
    b"\x00\x01\x00\x08testtype\x00\x00\x00\x01\x00\x0ctestprotocol\x00\x0atestleader\x00\x00\x00\x01"
    b"\x00\x0ctestmemberid\x00\x0ctestclientid\x00\x0etestclienthost\x00\x00\x00\x04\x00\x00\x00\x08"
    b"\x00\x00\x00\x00\x00\x00\x00\x16\x00\x00\x00\x00\x00\x01\x00\x06topic1\x00\x00\x00\x01\x00\x00\x00\x0b"
    b"\x00\x00\x00\x00"
)

BURROW_COMMIT = OffsetCommit(
    "testgroup", "testtopic", 11, offset=8372, timestamp_ms=1637, metadata="testdata"
)


def test_burrow_offset_key_and_value_v0() -> None:
    assert decode(BURROW_OFFSET_KEY, BURROW_VALUE_V0) == BURROW_COMMIT


def test_burrow_value_v3_has_a_leader_epoch() -> None:
    assert decode(BURROW_OFFSET_KEY, BURROW_VALUE_V3) == OffsetCommit(
        "testgroup", "testtopic", 11, offset=8372, timestamp_ms=1637, leader_epoch=0, metadata="testdata"
    )


def test_burrow_value_v4_without_tagged_field_count() -> None:
    expected = OffsetCommit(
        "testgroup", "testtopic", 11, offset=8372, timestamp_ms=1637, leader_epoch=0, metadata="testdata"
    )
    assert decode(BURROW_OFFSET_KEY, BURROW_VALUE_V4) == expected
    assert decode(BURROW_OFFSET_KEY, BURROW_VALUE_V4 + b"\x00") == expected


def test_value_v2_is_decoded_unlike_burrow() -> None:
    # Deliberate difference: Burrow rejects v2; Kafka defines it as offset, metadata, commit timestamp.
    assert decode(BURROW_OFFSET_KEY, BURROW_VALUE_V2) == BURROW_COMMIT


def test_burrow_offset_key_type_0_is_an_offset_commit_too() -> None:
    assert decode(b"\x00\x00" + BURROW_OFFSET_KEY[2:], BURROW_VALUE_V0) == BURROW_COMMIT


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (b"\x00\x01\x00\x09testg", BURROW_VALUE_V0, "key: 9-byte string with 5 bytes left at byte 4"),
        (
            b"\x00\x01\x00\x09testgroup\x00\x09testto",
            BURROW_VALUE_V0,
            "key: 9-byte string with 6 bytes left at byte 15",
        ),
        (
            b"\x00\x01\x00\x09testgroup\x00\x09testtopic\x00\x00",
            BURROW_VALUE_V0,
            "key: truncated int32 at byte 24",
        ),
        (BURROW_OFFSET_KEY, b"\x00", "value: truncated int16 at byte 0"),
        (BURROW_OFFSET_KEY, b"\x00\x00\x00\x00\x00", "value v0: truncated int64 at byte 2"),
        (
            BURROW_OFFSET_KEY,
            b"\x00\x00\x00\x00\x00\x00\x00\x00\x20\xb4\x00\x08tes",
            "value v0: 8-byte string with 3 bytes left at byte 12",
        ),
        (
            BURROW_OFFSET_KEY,
            b"\x00\x00\x00\x00\x00\x00\x00\x00\x20\xb4\x00\x08testdata\x00\x00\x00\x00",
            "value v0: truncated int64 at byte 20",
        ),
        (
            BURROW_OFFSET_KEY,
            b"\x00\x00\x00\x00\x00\x00\x00\x00\x20\xb4\x00\x08testd",
            "value v0: 8-byte string with 5 bytes left at byte 12",
        ),
    ],
)
def test_burrow_truncations_give_decode_errors(key: bytes, value: bytes, reason: str) -> None:
    assert decode(key, value) == DecodeError(1, reason)


def test_burrow_group_metadata_of_another_protocol_type_keeps_members_without_assignments() -> None:
    assert decode(BURROW_GROUP_KEY, BURROW_GROUP_VALUE) == GroupMetadata(
        group="testgroup",
        protocol_type="testtype",
        generation=1,
        protocol="testprotocol",
        leader="testleader",
        members=(
            Member(
                "testmemberid",
                "testclientid",
                "testclienthost",
                rebalance_timeout_ms=4,
                session_timeout_ms=8,
            ),
        ),
    )


def test_burrow_group_metadata_as_consumer_decodes_an_assignment_without_user_data() -> None:
    value = BURROW_GROUP_VALUE.replace(b"testtype", b"consumer")
    record = decode(BURROW_GROUP_KEY, value)
    assert isinstance(record, GroupMetadata)
    assert record.members[0].assignment == (TopicPartitions("topic1", (11,)),)


# ------------------------------------------------------------------------------------------------------------
# Offset commits (types 0 and 1): every value version.

OFFSET_KEY = (
    b"\x00\x01"  # type 1
    b"\x00\x06group1"
    b"\x00\x06topic1"
    b"\x00\x00\x00\x07"  # partition 7
)
OFFSET_V1 = (
    b"\x00\x01"  # version 1
    b"\x00\x00\x00\x00\x00\x00\x03\xe8"  # offset 1000
    b"\x00\x02md"  # metadata
    b"\x00\x00\x00\x00\x00\x00\x07\xd0"  # commit timestamp 2000
    b"\x00\x00\x00\x00\x00\x00\x0b\xb8"  # expire timestamp 3000 (not kept)
)
OFFSET_V3 = (
    b"\x00\x03"
    b"\x00\x00\x00\x00\x00\x00\x03\xe8"  # offset 1000
    b"\x00\x00\x00\x09"  # leader epoch 9
    b"\x00\x00"  # metadata ""
    b"\x00\x00\x00\x00\x00\x00\x07\xd0"  # commit timestamp 2000
)
OFFSET_V4 = (
    b"\x00\x04"
    b"\x00\x00\x00\x00\x00\x00\x03\xe8"  # offset 1000
    b"\x00\x00\x00\x09"  # leader epoch 9
    b"\x03md"  # compact metadata: length + 1
    b"\x00\x00\x00\x00\x00\x00\x07\xd0"  # commit timestamp 2000
    b"\x00"  # no tagged fields
)


def test_offset_value_v1_ignores_the_expire_timestamp() -> None:
    assert decode(OFFSET_KEY, OFFSET_V1) == OffsetCommit("group1", "topic1", 7, 1000, 2000, -1, "md")


def test_offset_value_v3() -> None:
    assert decode(OFFSET_KEY, OFFSET_V3) == OffsetCommit("group1", "topic1", 7, 1000, 2000, 9, "")


def test_offset_value_v4() -> None:
    assert decode(OFFSET_KEY, OFFSET_V4) == OffsetCommit("group1", "topic1", 7, 1000, 2000, 9, "md")


def test_offset_value_v4_skips_unknown_tagged_fields() -> None:
    tagged = b"\x02\x00\x01\xff\x05\x02\xab\xcd"  # two fields: tag 0 (1 byte), tag 5 (2 bytes)
    assert decode(OFFSET_KEY, OFFSET_V4[:-1] + tagged) == decode(OFFSET_KEY, OFFSET_V4)


def test_offset_value_v4_metadata_of_200_bytes_has_a_two_byte_varint_length() -> None:
    # Burrow reads one length byte (0xc9 = 201) and misparses; a real uvarint reads 0xc9 0x01 = 201.
    value = OFFSET_V4[:14] + b"\xc9\x01" + b"m" * 200 + OFFSET_V4[17:]
    assert decode(OFFSET_KEY, value) == OffsetCommit("group1", "topic1", 7, 1000, 2000, 9, "m" * 200)


def test_offset_value_v4_metadata_of_exactly_127_bytes() -> None:
    value = OFFSET_V4[:14] + b"\x80\x01" + b"x" * 127 + OFFSET_V4[17:]
    assert decode(OFFSET_KEY, value) == OffsetCommit("group1", "topic1", 7, 1000, 2000, 9, "x" * 127)


def test_offset_tombstone() -> None:
    assert decode(OFFSET_KEY, None) == OffsetTombstone("group1", "topic1", 7)


def test_an_empty_value_is_malformed_not_a_tombstone() -> None:
    assert decode(OFFSET_KEY, b"") == DecodeError(1, "value: truncated int16 at byte 0")


@pytest.mark.parametrize("version", [5, 6, -1, 32767])
def test_unknown_offset_value_versions(version: int) -> None:
    value = enc.int16(version) + OFFSET_V3[2:]
    assert decode(OFFSET_KEY, value) == DecodeError(1, f"value: unsupported version {version} at byte 0")


def test_invalid_utf8_is_replaced_as_kafka_does() -> None:
    key = b"\x00\x01\x00\x03g\xffg\x00\x01t\x00\x00\x00\x00"
    assert decode(key, OFFSET_V3) == OffsetCommit("g\ufffdg", "t", 0, 1000, 2000, 9, "")


# ------------------------------------------------------------------------------------------------------------
# Classic group metadata (type 2): every value version.

GROUP_KEY = b"\x00\x02\x00\x06group1"
ASSIGNMENT = (
    b"\x00\x00"  # consumer protocol version 0
    b"\x00\x00\x00\x01"  # one topic
    b"\x00\x06topic1"
    b"\x00\x00\x00\x02"  # two partitions
    b"\x00\x00\x00\x00\x00\x00\x00\x03"  # 0 and 3
    b"\xff\xff\xff\xff"  # null user data
)
GROUP_V0 = (
    b"\x00\x00"  # version 0
    b"\x00\x08consumer"  # protocol type
    b"\x00\x00\x00\x05"  # generation 5
    b"\x00\x05range"  # protocol
    b"\x00\x07member1"  # leader
    b"\x00\x00\x00\x01"  # one member:
    b"\x00\x07member1"  # member id
    b"\x00\x07client1"  # client id
    b"\x00\x09/10.0.0.1"  # client host
    b"\x00\x00\x75\x30"  # session timeout 30000
    b"\x00\x00\x00\x00"  # subscription, 0 bytes
    b"\x00\x00\x00\x1e" + ASSIGNMENT  # assignment, 30 bytes
)
GROUP_V1 = (
    b"\x00\x01"
    b"\x00\x08consumer\x00\x00\x00\x05\x00\x05range\x00\x07member1\x00\x00\x00\x01"
    b"\x00\x07member1\x00\x07client1\x00\x09/10.0.0.1"
    b"\x00\x00\xea\x60"  # rebalance timeout 60000
    b"\x00\x00\x75\x30\x00\x00\x00\x00\x00\x00\x00\x1e" + ASSIGNMENT
)
GROUP_V2 = (
    b"\x00\x02"
    b"\x00\x08consumer\x00\x00\x00\x05\x00\x05range\x00\x07member1"
    b"\x00\x00\x01\x8b\xcf\xe5\x68\x00"  # current state timestamp 1700000000000
    b"\x00\x00\x00\x01"
    b"\x00\x07member1\x00\x07client1\x00\x09/10.0.0.1\x00\x00\xea\x60"
    b"\x00\x00\x75\x30\x00\x00\x00\x00\x00\x00\x00\x1e" + ASSIGNMENT
)
GROUP_V3 = (
    b"\x00\x03"
    b"\x00\x08consumer\x00\x00\x00\x05\x00\x05range\x00\x07member1"
    b"\x00\x00\x01\x8b\xcf\xe5\x68\x00\x00\x00\x00\x01"
    b"\x00\x07member1"
    b"\x00\x0ainstance-1"  # group instance id
    b"\x00\x07client1\x00\x09/10.0.0.1\x00\x00\xea\x60"
    b"\x00\x00\x75\x30\x00\x00\x00\x00\x00\x00\x00\x1e" + ASSIGNMENT
)
GROUP_V4 = (
    b"\x00\x04"
    b"\x09consumer"  # compact strings: length + 1
    b"\x00\x00\x00\x05"
    b"\x06range"
    b"\x08member1"
    b"\x00\x00\x01\x8b\xcf\xe5\x68\x00"
    b"\x02"  # compact array of one member:
    b"\x08member1"
    b"\x00"  # null group instance id
    b"\x08client1"
    b"\x0a/10.0.0.1"
    b"\x00\x00\xea\x60"
    b"\x00\x00\x75\x30"
    b"\x01"  # subscription, 0 bytes
    b"\x1f" + ASSIGNMENT + b"\x00"  # assignment (30 bytes), member's tagged fields
    b"\x00"  # tagged fields
)
ASSIGNED = (TopicPartitions("topic1", (0, 3)),)


def _group(members: tuple[Member, ...], current_state_timestamp_ms: int = -1) -> GroupMetadata:
    return GroupMetadata("group1", "consumer", 5, "range", "member1", members, current_state_timestamp_ms)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (GROUP_V0, _group((Member("member1", "client1", "/10.0.0.1", None, -1, 30000, ASSIGNED),))),
        (GROUP_V1, _group((Member("member1", "client1", "/10.0.0.1", None, 60000, 30000, ASSIGNED),))),
        (
            GROUP_V2,
            _group((Member("member1", "client1", "/10.0.0.1", None, 60000, 30000, ASSIGNED),), 1700000000000),
        ),
        (
            GROUP_V3,
            _group(
                (Member("member1", "client1", "/10.0.0.1", "instance-1", 60000, 30000, ASSIGNED),),
                1700000000000,
            ),
        ),
        (
            GROUP_V4,
            _group((Member("member1", "client1", "/10.0.0.1", None, 60000, 30000, ASSIGNED),), 1700000000000),
        ),
    ],
    ids=["v0", "v1", "v2", "v3", "v4"],
)
def test_group_metadata_versions(value: bytes, expected: GroupMetadata) -> None:
    assert decode(GROUP_KEY, value) == expected


def test_group_metadata_with_null_protocol_and_leader_and_no_members() -> None:
    value = b"\x00\x03\x00\x08consumer\x00\x00\x00\x00\xff\xff\xff\xff" + b"\x00" * 8 + b"\x00\x00\x00\x00"
    assert decode(GROUP_KEY, value) == GroupMetadata("group1", "consumer", 0, None, None, (), 0)


def test_group_tombstone() -> None:
    assert decode(GROUP_KEY, None) == GroupTombstone("group1")


def test_connect_group_keeps_members_with_empty_assignments() -> None:
    record = decode(GROUP_KEY, GROUP_V1.replace(b"\x00\x08consumer", b"\x00\x07connect"))
    assert record == GroupMetadata(
        "group1",
        "connect",
        5,
        "range",
        "member1",
        (Member("member1", "client1", "/10.0.0.1", None, 60000, 30000, ()),),
    )


def _one_member_group(assignment: bytes) -> Record:
    member = enc.MemberMetadata("m", "c", "/h", 10, assignment=assignment)
    return decode(GROUP_KEY, enc.group_metadata_value(1, "consumer", 1, "range", "m", [member]))


@pytest.mark.parametrize(
    "assignment",
    [
        b"",  # members not yet synced carry empty assignments
        b"\xff\xff" + ASSIGNMENT[2:],  # negative consumer protocol version
        ASSIGNMENT[:9],  # truncated inside the topic name
        b"\x00\x00\x7f\xff\xff\xff",  # absurd topic count
    ],
    ids=["empty", "negative-version", "truncated", "absurd-count"],
)
def test_undecodable_assignment_leaves_the_member_with_none_and_the_record_stands(assignment: bytes) -> None:
    assert _one_member_group(assignment) == GroupMetadata(
        "group1", "consumer", 1, "range", "m", (Member("m", "c", "/h", None, -1, 10, ()),)
    )


def test_decode_assignment_is_the_same_policy_for_the_admin_api_source() -> None:
    assert decode_assignment(ASSIGNMENT) == ASSIGNED
    assert decode_assignment(ASSIGNMENT[:-4]) == ASSIGNED  # without user data
    assert decode_assignment(b"") == ()
    assert decode_assignment(b"\x00\x00\x00\x00\x00\x01\x00\x09top") == ()


def test_future_consumer_protocol_version_is_read_with_the_known_layout() -> None:
    record = _one_member_group(b"\x00\x07" + ASSIGNMENT[2:] + b"future fields")
    assert isinstance(record, GroupMetadata)
    assert record.members[0].assignment == ASSIGNED


# ------------------------------------------------------------------------------------------------------------
# KIP-848 consumer-group records (types 3 to 8).

TOPIC_ID_A = bytes(range(16))
TOPIC_ID_B = bytes(range(16, 32))
UUID_A = "AAECAwQFBgcICQoLDA0ODw"  # Kafka's Uuid.toString() of TOPIC_ID_A
UUID_B = "EBESExQVFhcYGRobHB0eHw"

CG_GROUP_KEY = b"\x00\x03\x00\x06group1"
CG_VALUE = b"\x00\x00\x00\x00\x00\x07\x01\x00\x08" + b"\x00" * 7 + b"\x2a"  # epoch 7, MetadataHash 42
PARTITION_METADATA_KEY = b"\x00\x04\x00\x06group1"
PARTITION_METADATA_VALUE = (
    b"\x00\x00"  # version 0 (flexible)
    b"\x03" + TOPIC_ID_A + b"\x07topic1"  # two topics:  # name
    b"\x00\x00\x00\x03"  # 3 partitions
    b"\x02"  # one partition's racks:
    b"\x00\x00\x00\x00"  # partition 0
    b"\x03\x03r1\x03r2"  # racks r1, r2
    b"\x00"  # tagged fields (partition)
    b"\x00"  # tagged fields (topic)
     + TOPIC_ID_B + b"\x07topic2\x00\x00\x00\x01\x01\x00"  # no rack information
    b"\x00"  # tagged fields
)
MEMBER_KEY = b"\x00\x05\x00\x06group1\x00\x07member1"
MEMBER_VALUE = (
    b"\x00\x00"
    b"\x00"  # instance id: null
    b"\x06rack1"  # rack id
    b"\x0bconsumer-1"  # client id
    b"\x0b/127.0.0.1"  # client host
    b"\x02\x07topic1"  # subscribed topic names
    b"\x00"  # subscribed regex: null
    b"\x00\x00\xea\x60"  # rebalance timeout
    b"\x08uniform"  # server assignor
    b"\x00"
)
TARGET_METADATA_KEY = b"\x00\x06\x00\x06group1"
TARGET_METADATA_VALUE = b"\x00\x00\x00\x00\x00\x07\x00"
TARGET_MEMBER_KEY = b"\x00\x07\x00\x06group1\x00\x07member1"
TARGET_MEMBER_VALUE = b"\x00\x00\x02" + TOPIC_ID_A + b"\x02\x00\x00\x00\x01\x00\x00"
ASSIGNMENT_KEY = b"\x00\x08\x00\x06group1\x00\x07member1"
ASSIGNMENT_VALUE = (
    b"\x00\x00"
    b"\x00\x00\x00\x05"  # member epoch
    b"\x00\x00\x00\x04"  # previous member epoch
    b"\x00"  # state: stable
    b"\x03"  # assigned: two topics
    + TOPIC_ID_A
    + b"\x03\x00\x00\x00\x00\x00\x00\x00\x01\x00"  # partitions 0, 1
    + TOPIC_ID_B
    + b"\x02\x00\x00\x00\x02\x00"  # partition 2
    b"\x02"  # pending revocation: one topic
     + TOPIC_ID_B + b"\x02\x00\x00\x00\x05\x00"
    b"\x00"
)
# KIP-1251 tags each topic with AssignmentEpochs (tag 0, compact []int32).
ASSIGNMENT_VALUE_WITH_EPOCHS = (
    b"\x00\x00\x00\x00\x00\x05\x00\x00\x00\x04\x00"
    b"\x02" + TOPIC_ID_A + b"\x03\x00\x00\x00\x00\x00\x00\x00\x01"
    b"\x01\x00\x09\x03\x00\x00\x00\x03\x00\x00\x00\x05"  # one tagged field: tag 0, 9 bytes, epochs 3, 5
    b"\x01"
    b"\x00"
)


def test_consumer_group_record_with_a_value_is_skipped() -> None:
    assert decode(CG_GROUP_KEY, CG_VALUE) == SkippedRecord(3)


def test_consumer_group_tombstone_deletes_the_group() -> None:
    assert decode(CG_GROUP_KEY, None) == GroupTombstone("group1")


def test_partition_metadata_gives_topic_names_by_id() -> None:
    assert decode(PARTITION_METADATA_KEY, PARTITION_METADATA_VALUE) == ConsumerGroupTopics(
        "group1", ((UUID_A, "topic1"), (UUID_B, "topic2"))
    )


def test_partition_metadata_tombstone_is_skipped() -> None:
    assert decode(PARTITION_METADATA_KEY, None) == SkippedRecord(4)


def test_member_metadata() -> None:
    assert decode(MEMBER_KEY, MEMBER_VALUE) == ConsumerGroupMember(
        "group1", "member1", "consumer-1", "/127.0.0.1", instance_id=None, rack_id="rack1"
    )


def test_member_metadata_skips_the_classic_member_tagged_field() -> None:
    classic = b"\x01\x00\x0b" + b"\x00\x00\x27\x10" + b"\x02\x06range\x01\x00" + b"\x00"
    assert decode(MEMBER_KEY, MEMBER_VALUE[:-1] + classic) == decode(MEMBER_KEY, MEMBER_VALUE)


def test_member_tombstone_means_the_member_left() -> None:
    assert decode(MEMBER_KEY, None) == ConsumerGroupMemberLeft("group1", "member1")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (TARGET_METADATA_KEY, TARGET_METADATA_VALUE),
        (TARGET_METADATA_KEY, None),
        (TARGET_MEMBER_KEY, TARGET_MEMBER_VALUE),
        (TARGET_MEMBER_KEY, None),
    ],
)
def test_target_assignment_records_are_skipped(key: bytes, value: bytes | None) -> None:
    assert decode(key, value) == SkippedRecord(key[1])


def test_current_assignment_gives_assigned_partitions_by_topic_id() -> None:
    assert decode(ASSIGNMENT_KEY, ASSIGNMENT_VALUE) == ConsumerGroupAssignment(
        "group1",
        "member1",
        (TopicPartitions(UUID_A, (0, 1), by_id=True), TopicPartitions(UUID_B, (2,), by_id=True)),
    )


def test_current_assignment_with_assignment_epochs() -> None:
    assert decode(ASSIGNMENT_KEY, ASSIGNMENT_VALUE_WITH_EPOCHS) == ConsumerGroupAssignment(
        "group1", "member1", (TopicPartitions(UUID_A, (0, 1), by_id=True),)
    )


def test_current_assignment_tombstone_is_an_empty_assignment() -> None:
    assert decode(ASSIGNMENT_KEY, None) == ConsumerGroupAssignment("group1", "member1", ())


@pytest.mark.parametrize("key_type", [*range(9, 21), 999, 32767, -1, -32768])
def test_unknown_record_types_are_skipped_whatever_follows(key_type: int) -> None:
    assert decode(enc.int16(key_type) + b"\xff garbage", b"\x00") == SkippedRecord(key_type)
    assert decode(enc.int16(key_type), None) == SkippedRecord(key_type)


# ------------------------------------------------------------------------------------------------------------
# The encoder reproduces the hand-written fixtures, so its round trips below check the decoder against Kafka's
# layout rather than against itself.


def _member_metadata(version: int) -> enc.MemberMetadata:
    return enc.MemberMetadata(
        "member1",
        "client1",
        "/10.0.0.1",
        30000,
        group_instance_id="instance-1" if version == 3 else None,
        rebalance_timeout=60000,
        assignment=ASSIGNMENT,
    )


@pytest.mark.parametrize("version", range(5))
def test_encoder_matches_group_fixtures(version: int) -> None:
    fixture = [GROUP_V0, GROUP_V1, GROUP_V2, GROUP_V3, GROUP_V4][version]
    assert fixture == enc.group_metadata_value(
        version, "consumer", 5, "range", "member1", [_member_metadata(version)], 1700000000000
    )


def test_encoder_matches_the_other_fixtures() -> None:
    assert enc.consumer_protocol_assignment(ASSIGNED) == ASSIGNMENT
    assert enc.offset_commit_key("group1", "topic1", 7) == OFFSET_KEY
    assert enc.offset_commit_value(1, 1000, "md", 2000, expire_timestamp=3000) == OFFSET_V1
    assert enc.offset_commit_value(3, 1000, "", 2000, leader_epoch=9) == OFFSET_V3
    assert enc.offset_commit_value(4, 1000, "md", 2000, leader_epoch=9) == OFFSET_V4
    assert enc.offset_commit_value(4, 8372, "testdata", 1637, leader_epoch=0) == BURROW_VALUE_V4 + b"\x00"
    assert enc.consumer_group_metadata_value(7, {0: enc.int64(42)}) == CG_VALUE
    assert (
        enc.partition_metadata_value(
            [
                enc.TopicMetadata(UUID_A, "topic1", 3, [(0, ["r1", "r2"])]),
                enc.TopicMetadata(UUID_B, "topic2", 1),
            ]
        )
        == PARTITION_METADATA_VALUE
    )
    assert (
        enc.member_metadata_value(
            "consumer-1", "/127.0.0.1", None, "rack1", ["topic1"], None, 60000, "uniform"
        )
        == MEMBER_VALUE
    )
    assert enc.target_assignment_metadata_value(7) == TARGET_METADATA_VALUE
    assert enc.target_assignment_member_value([TopicPartitions(UUID_A, (1,))]) == TARGET_MEMBER_VALUE
    assert (
        enc.current_assignment_value(
            5,
            4,
            0,
            [TopicPartitions(UUID_A, (0, 1)), TopicPartitions(UUID_B, (2,))],
            [TopicPartitions(UUID_B, (5,))],
        )
        == ASSIGNMENT_VALUE
    )


# ------------------------------------------------------------------------------------------------------------
# Malformed input: every truncation is a DecodeError with a reason; specific faults name themselves.

VALID_RECORDS = [
    pytest.param(OFFSET_KEY, OFFSET_V1, False, id="offset-v1"),
    pytest.param(OFFSET_KEY, OFFSET_V3, False, id="offset-v3"),
    pytest.param(OFFSET_KEY, OFFSET_V4, True, id="offset-v4"),
    pytest.param(GROUP_KEY, GROUP_V0, False, id="group-v0"),
    pytest.param(GROUP_KEY, GROUP_V3, False, id="group-v3"),
    pytest.param(GROUP_KEY, GROUP_V4, True, id="group-v4"),
    pytest.param(PARTITION_METADATA_KEY, PARTITION_METADATA_VALUE, True, id="partition-metadata"),
    pytest.param(MEMBER_KEY, MEMBER_VALUE, True, id="member"),
    pytest.param(ASSIGNMENT_KEY, ASSIGNMENT_VALUE, True, id="assignment"),
]


@pytest.mark.parametrize(("key", "value", "flexible"), VALID_RECORDS)
def test_every_truncated_value_is_a_decode_error(key: bytes, value: bytes, flexible: bool) -> None:
    # A flexible value cut just before its final tagged-field count is complete (see the Burrow v4 fixture).
    complete_without_last_byte = decode(key, value[:-1]) == decode(key, value)
    assert complete_without_last_byte == flexible
    for cut in range(len(value) - 1 if flexible else len(value)):
        record = decode(key, value[:cut])
        assert isinstance(record, DecodeError), cut
        assert record.key_type == key[1]
        assert record.reason.startswith("value"), record.reason


@pytest.mark.parametrize(("key", "value", "flexible"), VALID_RECORDS)
def test_every_truncated_key_is_a_decode_error(key: bytes, value: bytes, flexible: bool) -> None:
    assert decode(key[:1], value) == DecodeError(None, "key: 1 bytes, shorter than the int16 record type")
    for cut in range(2, len(key)):
        record = decode(key[:cut], value)
        assert isinstance(record, DecodeError), cut
        assert record.key_type == key[1]
        assert record.reason.startswith("key: "), record.reason


def test_missing_key() -> None:
    assert decode(None, OFFSET_V3) == DecodeError(None, "key: missing")


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (
            OFFSET_KEY,
            OFFSET_V4[:14] + b"\x00" + OFFSET_V4[17:],
            "value v4: null in a non-nullable compact string at byte 14",
        ),
        (
            OFFSET_KEY,
            OFFSET_V4[:14] + b"\xff\xff\xff\xff\xff\x01",
            "value v4: unsigned varint longer than 5 bytes at byte 14",
        ),
        (
            OFFSET_KEY,
            OFFSET_V3[:14] + b"\xff\xff" + OFFSET_V3[16:],
            "value v3: null or negative length in a non-nullable string at byte 14",
        ),
        (
            OFFSET_KEY,
            OFFSET_V4[:-1] + b"\x01\x00\x05\xab",
            "value v4: 5-byte field with 1 bytes left at byte 28",
        ),
        (
            b"\x00\x01\xff\xff" + OFFSET_KEY[10:],
            OFFSET_V3,
            "key: null or negative length in a non-nullable string at byte 2",
        ),
        (
            GROUP_KEY,
            GROUP_V0[:32] + b"\x7f\xff\xff\xff" + GROUP_V0[36:],
            "value v0: array of 2147483647 items in 71 bytes at byte 32",
        ),
        (
            GROUP_KEY,
            GROUP_V0[:32] + b"\xff\xff\xff\xfe" + GROUP_V0[36:],
            "value v0: null or negative count in a non-nullable array at byte 32",
        ),
        (
            GROUP_KEY,
            GROUP_V0[:69] + b"\xff\xff\xff\xff" + GROUP_V0[73:],
            "value v0: null or negative length in non-nullable bytes at byte 69",
        ),
        (
            GROUP_KEY,
            GROUP_V1[:2] + b"\xff\xff" + GROUP_V1[12:],
            "value v1: null or negative length in a non-nullable string at byte 2",
        ),
        (
            GROUP_KEY,
            GROUP_V1[:16] + b"\xff\xfe" + GROUP_V1[23:],
            "value v1: negative string length -2 at byte 16",
        ),
        (
            ASSIGNMENT_KEY,
            ASSIGNMENT_VALUE[:11] + b"\x00" + ASSIGNMENT_VALUE[12:],
            "value v0: null or negative count in a non-nullable array at byte 11",
        ),
        (
            ASSIGNMENT_KEY,
            ASSIGNMENT_VALUE[:28] + b"\x7f" + ASSIGNMENT_VALUE[29:],
            "value v0: array of 126 items in 55 bytes at byte 28",
        ),
        (ASSIGNMENT_KEY, b"\x00\x01" + ASSIGNMENT_VALUE[2:], "value: unsupported version 1 at byte 0"),
        (
            MEMBER_KEY,
            MEMBER_VALUE[:9] + b"\x00" + MEMBER_VALUE[20:],
            "value v0: null in a non-nullable compact string at byte 9",
        ),
    ],
)
def test_specific_faults_are_named(key: bytes, value: bytes, reason: str) -> None:
    assert decode(key, value) == DecodeError(key[1], reason)


# ------------------------------------------------------------------------------------------------------------


# ------------------------------------------------------------------------------------------------------------
# Properties: round trips through the encoder, and no input ever raises.

names = st.text(st.characters(codec="utf-8"), max_size=40)
long_texts = st.text(st.characters(codec="utf-8"), max_size=300)  # v4 lengths past one varint byte
int32s = st.integers(-(2**31), 2**31 - 1)
int64s = st.integers(-(2**63), 2**63 - 1)
topic_ids = st.binary(min_size=16, max_size=16).map(enc.uuid_string)


@st.composite
def offset_commits(draw: st.DrawFn) -> tuple[OffsetCommit, int]:
    version = draw(st.integers(0, 4))
    commit = OffsetCommit(
        group=draw(names),
        topic=draw(names),
        partition=draw(int32s),
        offset=draw(int64s),
        timestamp_ms=draw(int64s),
        leader_epoch=draw(int32s) if version >= 3 else -1,
        metadata=draw(long_texts),
    )
    return commit, version


@given(offset_commits())
def test_offset_commit_round_trip(case: tuple[OffsetCommit, int]) -> None:
    commit, version = case
    assert decode(*enc.encode(commit, version)) == commit


@given(st.builds(OffsetTombstone, names, names, int32s))
def test_offset_tombstone_round_trip(tombstone: OffsetTombstone) -> None:
    assert decode(*enc.encode(tombstone)) == tombstone


@st.composite
def group_metadata(draw: st.DrawFn) -> tuple[GroupMetadata, int]:
    version = draw(st.integers(0, 4))
    protocol_type = draw(st.sampled_from(["consumer", "connect", ""]) | names)
    topic_partitions = st.builds(TopicPartitions, names, st.lists(int32s, max_size=5).map(tuple))
    members = st.builds(
        Member,
        member_id=names,
        client_id=names,
        client_host=names,
        group_instance_id=st.none() | names if version >= 3 else st.none(),
        rebalance_timeout_ms=int32s if version >= 1 else st.just(-1),
        session_timeout_ms=int32s,
        assignment=st.lists(topic_partitions, max_size=3).map(tuple)
        if protocol_type == "consumer"
        else st.just(()),
    )
    record = GroupMetadata(
        group=draw(names),
        protocol_type=protocol_type,
        generation=draw(int32s),
        protocol=draw(st.none() | names),
        leader=draw(st.none() | names),
        members=tuple(draw(st.lists(members, max_size=3))),
        current_state_timestamp_ms=draw(int64s) if version >= 2 else -1,
    )
    return record, version


@given(group_metadata())
def test_group_metadata_round_trip(case: tuple[GroupMetadata, int]) -> None:
    record, version = case
    assert decode(*enc.encode(record, version)) == record


@given(
    st.lists(st.builds(TopicPartitions, names, st.lists(int32s, max_size=5).map(tuple)), max_size=4),
    st.integers(0, 9),
    st.none() | st.binary(max_size=20),
)
def test_assignment_round_trip(topics: list[TopicPartitions], version: int, user_data: bytes | None) -> None:
    assert decode_assignment(enc.consumer_protocol_assignment(topics, version, user_data)) == tuple(topics)


@given(st.binary())
def test_decode_assignment_never_raises(payload: bytes) -> None:
    assert isinstance(decode_assignment(payload), tuple)


kip848_records = st.one_of(
    st.builds(GroupTombstone, names),
    st.builds(ConsumerGroupMember, names, names, names, names, st.none() | names, st.none() | names),
    st.builds(ConsumerGroupMemberLeft, names, names),
    st.builds(
        ConsumerGroupAssignment,
        names,
        names,
        st.lists(
            st.builds(TopicPartitions, topic_ids, st.lists(int32s, max_size=5).map(tuple), st.just(True)),
            max_size=3,
        ).map(tuple),
    ),
    st.builds(ConsumerGroupTopics, names, st.lists(st.tuples(topic_ids, names), max_size=3).map(tuple)),
)


@given(kip848_records)
def test_group_and_kip848_round_trips(record: Record) -> None:
    assert decode(*enc.encode(record)) == record


@given(st.none() | st.binary(), st.none() | st.binary())
def test_arbitrary_bytes_never_raise(key: bytes | None, value: bytes | None) -> None:
    assert isinstance(decode(key, value), Record)


@given(st.integers(-1, 9), st.binary(max_size=80), st.integers(-1, 5), st.none() | st.binary(max_size=200))
def test_garbage_behind_known_types_and_versions_never_raises(
    key_type: int, key_rest: bytes, version: int, value_rest: bytes | None
) -> None:
    value = None if value_rest is None else enc.int16(version) + value_rest
    assert isinstance(decode(enc.int16(key_type) + key_rest, value), Record)


VALID_VALUES = [OFFSET_V1, OFFSET_V3, OFFSET_V4, GROUP_V0, GROUP_V3, GROUP_V4, MEMBER_VALUE, ASSIGNMENT_VALUE]
VALID_KEYS = [OFFSET_KEY, OFFSET_KEY, OFFSET_KEY, GROUP_KEY, GROUP_KEY, GROUP_KEY, MEMBER_KEY, ASSIGNMENT_KEY]


@given(st.integers(0, len(VALID_VALUES) - 1), st.data())
def test_mutated_records_never_raise(index: int, data: st.DataObject) -> None:
    value = bytearray(VALID_VALUES[index])
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(value) - 1))
        value[at] = data.draw(st.integers(0, 255))
    assert isinstance(decode(VALID_KEYS[index], bytes(value)), Record)


# ------------------------------------------------------------------------------------------------------------
# The offset-commit fast path: taken for the shapes Kafka writes, and never different from the generic reader.

FAST_VERSIONS = (1, 3, 4)
short_metadata = st.text(st.characters(codec="utf-8"), max_size=126).filter(
    lambda text: len(text.encode()) < 127  # v4: a one-byte varint length
)


@given(offset_commits(), st.sampled_from([0, 1]), short_metadata)
def test_fast_path_decodes_the_shapes_kafka_writes(
    case: tuple[OffsetCommit, int], key_type: int, metadata: str
) -> None:
    commit, _ = case
    version = [1, 3, 4][abs(commit.partition) % 3]
    commit = OffsetCommit(
        commit.group,
        commit.topic,
        commit.partition,
        commit.offset,
        commit.timestamp_ms,
        commit.leader_epoch if version >= 3 else -1,
        metadata,
    )
    key = enc.offset_commit_key(commit.group, commit.topic, commit.partition, key_type)
    value = enc.offset_commit_value(
        version, commit.offset, metadata, commit.timestamp_ms, commit.leader_epoch, expire_timestamp=7
    )
    fast = fast_commit_fields(key, value)
    assert fast is not None
    assert OffsetCommit(*fast) == commit
    assert decode(key, value) == commit


@st.composite
def offset_commit_bytes(draw: st.DrawFn) -> tuple[bytes, bytes | None]:
    """Offset-commit keys and values of every version, with tagged fields and long metadata, then mutated:
    truncated, extended, or bytes overwritten, so that every fault of the fast path's shapes is reached."""
    commit, version = draw(offset_commits())
    key = enc.offset_commit_key(commit.group, commit.topic, commit.partition, draw(st.sampled_from([0, 1])))
    tags = draw(st.none() | st.dictionaries(st.integers(0, 300), st.binary(max_size=5), max_size=2))
    value = enc.offset_commit_value(
        version, commit.offset, commit.metadata, commit.timestamp_ms, commit.leader_epoch, 5, tags
    )
    parts = [bytearray(key), bytearray(value)]
    for _ in range(draw(st.integers(0, 3))):
        part = parts[draw(st.integers(0, 1))]
        match draw(st.sampled_from(["truncate", "extend", "overwrite"])):
            case "truncate":
                del part[draw(st.integers(0, len(part))) :]
            case "extend":
                part += draw(st.binary(min_size=1, max_size=8))
            case "overwrite" if part:
                edges = st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF])  # lengths: null, empty, varint
                part[draw(st.integers(0, len(part) - 1))] = draw(edges | st.integers(0, 255))
    return bytes(parts[0]), None if draw(st.booleans()) and not parts[1] else bytes(parts[1])


arbitrary_offset_commits = st.tuples(
    st.sampled_from([b"\x00\x00", b"\x00\x01"]).flatmap(lambda t: st.binary(max_size=60).map(t.__add__)),
    st.none() | st.binary(max_size=60),
)


@given(offset_commit_bytes() | arbitrary_offset_commits)
def test_fast_path_agrees_with_the_generic_reader(pair: tuple[bytes, bytes | None]) -> None:
    key, value = pair
    generic = _decode(key, value)
    assert decode(key, value) == generic
    assert type(decode(key, value)) is type(generic)
    if value is not None:
        fast = fast_commit_fields(key, value)
        assert fast is None or OffsetCommit(*fast) == generic


def test_fast_path_leaves_what_it_does_not_read_to_the_generic_reader() -> None:
    key = enc.offset_commit_key("g", "t", 3)
    v0 = enc.offset_commit_value(0, 5, "", 7)
    v4_tagged = enc.offset_commit_value(4, 5, "", 7, tags={1: b"x"})
    v4_long = enc.offset_commit_value(4, 5, "m" * 127, 7)
    v4_null = enc.offset_commit_value(4, 5, "", 0).replace(b"\x01", b"\x00", 1)
    assert v4_null[14] == 0
    v3_truncated = enc.offset_commit_value(3, 5, "", 7)[:-1]
    v4_without_tag_count = enc.offset_commit_value(4, 5, "", 7)[:-1]
    for value in (v0, v4_tagged, v4_long, v4_null, b"", b"\x00\x04", v3_truncated, v4_without_tag_count):
        assert fast_commit_fields(key, value) is None
    assert fast_commit_fields(enc.offset_commit_key("g", "t", 3, key_type=2), OFFSET_V4) is None
    # A group length of -4 points the topic length back at the key type: bytes that would still "parse".
    negative = b"\x00\x01\xff\xfc\x00\x00\x00"
    assert fast_commit_fields(negative, OFFSET_V4) is None
    assert decode(negative, OFFSET_V4) == DecodeError(
        1, "key: null or negative length in a non-nullable string at byte 2"
    )
    assert decode(key, v4_without_tag_count) == OffsetCommit("g", "t", 3, 5, 7, -1, "")
    assert decode(key, v4_long) == OffsetCommit("g", "t", 3, 5, 7, -1, "m" * 127)
    assert decode(key, v4_tagged) == OffsetCommit("g", "t", 3, 5, 7, -1, "")
    assert decode(key, v0) == OffsetCommit("g", "t", 3, 5, 7)
    assert decode(key, b"\x00\x04") == DecodeError(1, "value v4: truncated int64 at byte 2")
    null = "value v4: null in a non-nullable compact string at byte 14"
    assert decode(key, v4_null) == DecodeError(1, null)


def test_decode_batch_is_decode_record_by_record_in_order() -> None:
    pairs = [
        (OFFSET_KEY, OFFSET_V4),
        (OFFSET_KEY, None),
        (GROUP_KEY, GROUP_V3),
        (None, b""),
        (OFFSET_KEY, b"\x00\x04"),
        (enc.int16(12), b""),
        (OFFSET_KEY, OFFSET_V1),
        (OFFSET_KEY, OFFSET_V4[:-1] + b"\x01\x00\x00"),
    ]
    keys, values = [k for k, _ in pairs], [v for _, v in pairs]
    batch = decode_batch(keys, values)
    # The fast path's commits come as their fields, the generic reader's (a tagged field) as records.
    assert batch[0] == ("group1", "topic1", 7, 1000, 2000, 9, "md")
    assert batch[-2] == ("group1", "topic1", 7, 1000, 2000, -1, "md")
    assert batch[-1] == OffsetCommit("group1", "topic1", 7, 1000, 2000, 9, "md")
    as_records = [OffsetCommit(*r) if isinstance(r, tuple) else r for r in batch]
    assert as_records == [decode(k, v) for k, v in pairs]
    assert decode_batch([], []) == []
    with pytest.raises(ValueError, match="zip"):
        decode_batch(keys, values[:-1])
