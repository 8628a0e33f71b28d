"""Fetched records without aiokafka's `ConsumerRecord`, for the consumer of `__consumer_offsets`.

aiokafka parses record batches in C, then builds a `ConsumerRecord` dataclass in Python for every record
(eleven fields, the headers copied into a tuple): a quarter of a replay's CPU by bench_replay.py's profile,
and all the offsets source reads of it is the offset, the key and the value, which aiokafka's C record
already has. A consumer created with `key_deserializer=RAW` gets those C records from `getmany` instead.

aiokafka creates a `PartitionRecords` per fetched partition by its fetcher module's global name, with no hook
per consumer, so `install` puts a subclass under that name, for every consumer of the process. It changes
only what a consumer marked with `RAW` gets; the others get their ConsumerRecords as before. Everything else
(batches, CRC checks, control batches, aborted transactions under read_committed, positions) stays aiokafka's.
Should an aiokafka upgrade stop calling `_consumer_record`, `RAW` is still an identity key deserializer and
the consumer gets ConsumerRecords again: slower, the same records (a unit test pins the hook).
"""

from __future__ import annotations

from typing import Any, Protocol

from aiokafka.consumer import fetcher

__all__ = ["RAW", "FetchedRecord", "install"]


class FetchedRecord(Protocol):
    """What the offsets source reads of a fetched record: aiokafka's C record or a ConsumerRecord."""

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...


def RAW(key: bytes | None) -> bytes | None:  # noqa: N802 - a marker, named as the constant it is
    """The key deserializer that marks a consumer for bare records; as a deserializer, the identity."""
    return key


def _bare(tp: Any, record: Any) -> Any:
    return record


class _PartitionRecords(fetcher.PartitionRecords):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._key_deserializer is RAW:
            # An instance attribute, so that the other consumers' records pay nothing for the check.
            self._consumer_record = _bare


def install() -> None:
    """Make consumers created with `key_deserializer=RAW` get bare records. Idempotent."""
    fetcher.PartitionRecords = _PartitionRecords
