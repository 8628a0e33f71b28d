"""The offsets source's consumer gets aiokafka's bare C records; every other consumer its ConsumerRecords.

The broker's side (control batches, aborted transactions, positions) is covered against a real Kafka by
tests/integration/test_offsets_topic.py; here, the hook into aiokafka and what it yields for a batch."""

from __future__ import annotations

import inspect

from aiokafka.consumer import fetcher
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import ConsumerRecord, TopicPartition

from exporter.sources.raw_records import RAW, Bare, install

_TP = TopicPartition("__consumer_offsets", 7)
_RECORDS = [(40, b"key-40", b"value-40"), (41, b"key-41", None), (42, None, b"value-42")]


def _fetched(key_deserializer: object, fetch_offset: int) -> list[object]:
    builder = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, 1 << 16)
    for offset, key, value in _RECORDS:
        builder.append(offset - 40, 1_700_000_000_000, key, value, [])
    batch = bytearray(builder.build())
    # The batch's base offset, as the broker stamps it.
    batch[0:8] = (40).to_bytes(8, "big")
    install()
    records = fetcher.PartitionRecords(
        _TP,
        MemoryRecords(bytes(batch)),
        [],
        fetch_offset,
        key_deserializer,
        None,
        True,
        fetcher.READ_COMMITTED,
    )
    return list(records)


def test_a_consumer_marked_raw_gets_bare_records_from_the_fetch_position_on() -> None:
    fetched = _fetched(RAW, 41)
    assert [type(record) for record in fetched] == [Bare, Bare]
    assert fetched == [Bare(*record) for record in _RECORDS[1:]]


def test_other_consumers_still_get_consumer_records() -> None:
    fetched = _fetched(None, 40)
    assert all(isinstance(record, ConsumerRecord) for record in fetched)
    assert [(r.offset, r.key, r.value, r.topic, r.partition) for r in fetched] == [  # type: ignore[attr-defined]
        (*record, "__consumer_offsets", 7) for record in _RECORDS
    ]


def test_the_fetcher_still_creates_partition_records_by_its_module_name() -> None:
    # What `install` relies on: an aiokafka upgrade that stops doing this would silently bring back the
    # ConsumerRecords (correct, but slower); this says so.
    assert "PartitionRecords(" in inspect.getsource(fetcher.Fetcher._proc_fetch_request)
    assert "self._consumer_record(tp, record)" in inspect.getsource(fetcher.PartitionRecords._unpack_records)


def test_raw_is_the_identity_as_a_deserializer() -> None:
    assert RAW(b"\x00\x01") == b"\x00\x01"
    assert RAW(None) is None
