"""Fetched records without aiokafka's `ConsumerRecord`, for the consumer of `__consumer_offsets`.

aiokafka parses record batches in C, then builds a `ConsumerRecord` dataclass in Python for every record
(eleven fields, the headers copied into a tuple). All the offsets source reads of it is the offset, the key
and the value, which aiokafka's C record already has: a consumer created with `key_deserializer=RAW` gets them
from `getmany` as a `Bare` named tuple, built with tuple.__new__, at a fifth of the cost.

aiokafka creates a `PartitionRecords` per fetched partition by its fetcher module's global name, with no hook
per consumer, so `install` puts a subclass under that name, for every consumer of the process. It changes
only what a consumer marked with `RAW` gets; the others get their ConsumerRecords as before. Everything else
(batches, CRC checks, control batches, aborted transactions under read_committed, positions) stays aiokafka's.
Should an aiokafka upgrade stop calling `_consumer_record`, `RAW` is still an identity key deserializer and
the consumer gets ConsumerRecords again: slower, the same records (a unit test pins the hook).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from aiokafka.consumer import fetcher

__all__ = ["RAW", "Bare", "FetchedRecord", "install"]


class FetchedRecord(Protocol):
    """What the offsets source reads of a fetched record: a `Bare` record or a ConsumerRecord."""

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...


class Bare(NamedTuple):
    """A fetched record as a consumer marked with `RAW` gets it."""

    offset: int
    key: bytes | None
    value: bytes | None


def RAW(key: bytes | None) -> bytes | None:  # noqa: N802 - a marker, named as the constant it is
    """The key deserializer that marks a consumer for bare records; as a deserializer, the identity."""
    return key


_new_tuple = tuple.__new__


def _bare(tp: Any, record: Any) -> Bare:
    # Not the C record itself: it holds a list of headers, and the two tracked objects per record, alive until
    # the batch is applied, made the cycle collector run full collections ten times as often (44 per replay).
    return _new_tuple(Bare, (record.offset, record.key, record.value))


class _PartitionRecords(fetcher.PartitionRecords):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._key_deserializer is RAW:
            # An instance attribute, so that the other consumers' records pay nothing for the check.
            self._consumer_record = _bare


def install() -> None:
    """Make consumers created with `key_deserializer=RAW` get bare records. Idempotent."""
    fetcher.PartitionRecords = _PartitionRecords
