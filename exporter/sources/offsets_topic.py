"""Committed offsets from `__consumer_offsets`: one consumer per cluster assigned every partition of the
topic, read_committed, from the earliest offset (so the windows are rebuilt from history) or the latest
(`start_latest`). Each fetched batch is decoded in one call and applied to the storage in log order; a
record's offset in the topic is the commit's order.

Kafka keeps all records of a group in one partition of the topic, so per-partition log order is exactly the
order of that group's commits, which is all the storage's placement rules need. read_committed keeps the
offsets of aborted transactions (`sendOffsetsToTransaction`) out of the windows.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from array import array
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import KafkaError, UnknownTopicOrPartitionError
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.structs import TopicPartition

from exporter.core.decoder import decode_batch
from exporter.core.groups import Group
from exporter.core.model import DecodeError, OffsetCommit, Record, SkippedRecord
from exporter.core.storage import Storage
from exporter.core.windows import GroupTopic
from exporter.gc_pause import freeze_survivors, gc_paused, untrack, untrack_young
from exporter.let_go import SLICE_S
from exporter.settings import ClusterSettings
from exporter.sources.kafka_client import client_kwargs
from exporter.sources.progress import SourceProgress
from exporter.sources.raw_records import RAW, FetchedRecord, install
from exporter.sources.reconnect import BackoffClient, BackoffConsumer
from exporter.sources.retry import Retry

log = logging.getLogger(__name__)

_FETCH_MIN_BYTES = 64 << 10
_FETCH_MAX_WAIT_MS = 200
"""Live, the broker answers a fetch once 64 KiB of commits are there or 200 ms passed. With aiokafka's default
of 1 byte, every fetch came back with the few commits of the last milliseconds and the next was sent at once:
at 5,000 commits/s, sending those fetches took a tenth of lagwatch's CPU (py-spy). A replay finds far more
than 64 KiB waiting and is not slowed; a live commit is seen at most 200 ms later."""

_BATCH_RECORDS = 5000
_CHUNK_RECORDS = 500
"""Records decoded and applied between two looks at the time (2-3 ms of work)."""
_POLL_TIMEOUT_MS = 500
_FIRST_RETRY_S = 1.0
_MAX_RETRY_S = 30.0
_WAIT_S = 2.0
"""How often a topic that does not exist yet is looked for again."""
_WINDOWS = frozenset({Group, GroupTopic, array})
"""What the storage keeps of each group, taken out of the cycle collector's lists (`untrack_young`): a group
holds its topics' windows, a window arrays of integers, nothing refers back (no reference cycle)."""


class OffsetsTopicSource:
    """Streams `__consumer_offsets` of one cluster into its storage until cancelled."""

    def __init__(
        self,
        name: str,
        cluster: ClusterSettings,
        storage: Storage,
        *,
        clock: Callable[[], float] = time.time,
        slice_s: float = SLICE_S,
    ) -> None:
        """`slice_s`: how long applying a fetch holds the event loop at most (plus one chunk of records);
        0 lets it turn after every chunk."""
        self.name = name
        self.progress = SourceProgress()
        self._cluster = cluster
        self._storage = storage
        self._clock = clock
        self._slice_s = slice_s
        self._logged_errors: set[str] = set()
        self._positions: dict[TopicPartition, int] = {}
        self._waiting_reason = ""
        self._created_later = False
        self._complete_at: dict[TopicPartition, int] = {}
        self._retry = Retry(
            log, f"cluster {name}: reading {cluster.offsets_topic}", _FIRST_RETRY_S, _MAX_RETRY_S
        )

    async def run(self) -> None:
        """Consume until cancelled; reconnects by itself, with capped exponential backoff, when Kafka is
        away."""
        install()
        while True:
            try:
                partitions = await self._partitions()
            except (KafkaError, OSError, TimeoutError) as exc:
                await self._failed(exc)
                continue
            if not partitions:
                await asyncio.sleep(_WAIT_S)
                continue
            consumer = BackoffConsumer(
                client_kwargs(self._cluster),
                group_id=None,
                enable_auto_commit=False,
                isolation_level="read_committed",
                key_deserializer=RAW,
                auto_offset_reset="latest" if self._cluster.start_latest else "earliest",
                fetch_min_bytes=_FETCH_MIN_BYTES,
                fetch_max_wait_ms=_FETCH_MAX_WAIT_MS,
            )
            try:
                await consumer.start()
                self._retry.succeeded()
                self.progress.problem = ""
                await self._consume(consumer, partitions)
            except (KafkaError, OSError, TimeoutError) as exc:
                await self._failed(exc)
            finally:
                await consumer.stop()

    async def _failed(self, exc: BaseException) -> None:
        delay = self._retry.failed(exc)
        self.progress.problem = self._retry.cause
        await asyncio.sleep(delay)

    @property
    def _topic(self) -> str:
        return self._cluster.offsets_topic

    async def _partitions(self) -> list[TopicPartition]:
        """The topic's partitions, empty while it does not exist or cannot be described. A consumer's own
        metadata leaves internal topics out, hence a client of its own for this one request."""
        client = BackoffClient(**client_kwargs(self._cluster))
        try:
            await client.bootstrap()
            # The broker creates the topic on the first group coordinator lookup; lagwatch must not create it.
            request = MetadataRequest([self._topic], allow_auto_topic_creation=False)
            response = await client.send(client.get_random_node(), request)
        finally:
            await client.close()
        metadata = ClusterMetadata()
        metadata.update_metadata(response)
        ids = metadata.partitions_for_topic(self._topic)
        if ids:
            self._waiting_reason = ""
            self.progress.problem = ""
            return [TopicPartition(self._topic, p) for p in sorted(ids)]
        if self._topic in metadata.unauthorized_topics:
            self._wait(
                logging.WARNING,
                "is not readable with lagwatch's credentials (grant Describe and Read on it, or set "
                "offsets_source = 'admin-api')",
            )
        elif not self._positions and _unknown_topic(response, self._topic):
            # No group has been coordinated yet: nothing existed to catch up on, so the source is ready, and
            # everything the topic will hold is new, to be read from its start even with start_latest. Only
            # for UNKNOWN_TOPIC_OR_PARTITION: a topic without a leader (a broker just started) exists.
            self._created_later = True
            self.progress.caught_up = True
            self._wait(logging.INFO, "does not exist yet")
        else:
            self._wait(logging.WARNING, "is missing from the metadata")
        return []

    def _wait(self, level: int, reason: str) -> None:
        self.progress.problem = f"{self._topic} {reason}" if level >= logging.WARNING else ""
        if reason != self._waiting_reason:
            self._waiting_reason = reason
            log.log(level, "cluster %s: %s %s; waiting", self.name, self._topic, reason)

    async def _consume(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        consumer.assign(partitions)
        fresh = [tp for tp in partitions if tp not in self._positions]
        if fresh and self._cluster.start_latest and not self._created_later:
            await consumer.seek_to_end(*fresh)
        elif fresh:
            await consumer.seek_to_beginning(*fresh)
        for tp in fresh:
            # Pinned now, so that a reconnection before the first record resumes here, not at a newer end.
            self._positions[tp] = await consumer.position(tp)
        # After a reconnection, resume where this source stopped instead of replaying the topic.
        for tp in partitions:
            consumer.seek(tp, self._positions[tp])
        targets: dict[TopicPartition, int] = {}
        if not self.progress.caught_up:
            # read_committed: these are the last stable offsets, which the positions reach past the markers.
            targets = dict(await consumer.end_offsets(partitions))
            await self._check_caught_up(consumer, targets)
        while True:
            fetched = await consumer.getmany(timeout_ms=_POLL_TIMEOUT_MS, max_records=_BATCH_RECORDS)
            if fetched:
                # With the collector on, the fetched records, alive until applied, were promoted to the old
                # generation, and the windows a replay creates by the hundred thousand kept triggering full
                # collections that walk the whole storage: a fifth of a replay's CPU. Paused while the records
                # are applied, and the young generations collected once they are garbage, GC takes 5%.
                with gc_paused():
                    await self._apply_fetched(fetched)
                    del fetched
                    self._keep_windows()
            if targets:
                await self._check_caught_up(consumer, targets)
            await self._note_complete(consumer, partitions)
            # Decoding runs on the event loop: yield between batches so scrapes and health checks stay prompt.
            await asyncio.sleep(0)

    def _keep_windows(self) -> None:
        """After a fetch was applied, with the collector paused: the groups and windows it made stay, out of
        the collector's lists for good, so that no collection walks them (a group's dict of topics holds only
        windows: CPython does not take it out by itself); the rest is collected, and during the replay what
        survives is frozen (gc_pause.py). The storage's containers of groups, one set per topic among them,
        are left to the next round (`Evaluation`): taken out here they would cost per fetch."""
        taken = untrack_young(_WINDOWS)
        untrack(group.topics for group in taken if isinstance(group, Group))
        del taken
        if self.progress.caught_up:
            gc.collect(1)
        else:
            freeze_survivors()

    async def _apply_fetched(self, fetched: dict[TopicPartition, list[FetchedRecord]]) -> None:
        """Apply a fetch in chunks, letting the event loop run every `slice_s`: a fetch of 5,000 records held
        it 100-550 ms at a time during the replay of 2,000,000 on a busy machine."""
        now_ms = int(self._clock() * 1000)
        turn = time.perf_counter()
        for tp, records in fetched.items():
            for start in range(0, len(records), _CHUNK_RECORDS):
                chunk = records[start : start + _CHUNK_RECORDS]
                self._apply_batch(chunk, tp.partition, now_ms)
                # Per chunk: a reconnection while the loop runs other work resumes after what was applied.
                self._positions[tp] = chunk[-1].offset + 1
                if time.perf_counter() - turn >= self._slice_s:
                    await asyncio.sleep(0)
                    turn = time.perf_counter()

    def _apply_batch(self, fetched: Sequence[FetchedRecord], partition: int, now_ms: int) -> None:
        """Decode one partition's fetched records in one call, apply them in log order in another, then count
        them: commits once per batch, the other records by kind, malformed ones logged (no await in between,
        so nothing can read a counter mid-batch)."""
        orders = [r.offset for r in fetched]
        records = decode_batch([r.key for r in fetched], [r.value for r in fetched])
        self._storage.apply_batch(records, orders, now_ms)
        # Commits come as tuples from the decoder's fast path, nearly every record; the rest one by one.
        others = [(r, order) for r, order in zip(records, orders, strict=True) if not isinstance(r, tuple)]
        self.progress.records[OffsetCommit] += len(records) - len(others)
        for record, order in others:
            self._count(record, partition, order)

    def _count(self, record: Record, partition: int, order: int) -> None:
        self.progress.records[type(record)] += 1
        if isinstance(record, DecodeError):
            # Reasons carry byte positions; counting and logging by key type keeps both bounded.
            key_type = "unknown" if record.key_type is None else str(record.key_type)
            self.progress.decode_errors[key_type] += 1
            if key_type not in self._logged_errors:
                self._logged_errors.add(key_type)
                log.warning(
                    "cluster %s: skipping malformed record at %s-%d offset %d: %s "
                    "(logged once per record type, counted in lagwatch_offsets_decode_errors_total)",
                    self.name,
                    self._topic,
                    partition,
                    order,
                    record.reason,
                )
        elif isinstance(record, SkippedRecord):
            self.progress.skipped_types[record.key_type] += 1

    async def _note_complete(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        """Advance `progress.complete_as_of` to the oldest of the partitions' last fetches that found the
        read at the stable end. aiokafka's consumer retries by itself while a broker is away, so a stalled
        fetch, not an exception, is what shows an interruption: the instant then stays put."""
        oldest: int | None = None
        for tp in partitions:
            polled = consumer.last_poll_timestamp(tp)
            end = consumer.last_stable_offset(tp)
            if end is None or end < 0:
                end = consumer.highwater(tp)
            if polled is not None and end is not None and await consumer.position(tp) >= end:
                self._complete_at[tp] = polled
            at = self._complete_at.get(tp)
            if at is None:
                return
            oldest = at if oldest is None else min(oldest, at)
        if oldest is None:
            return
        # aiokafka stamps fetches with the wall clock; the instant is kept on the source's own clock.
        age_s = max(0.0, time.time() - oldest / 1000)
        self.progress.complete_as_of = self._clock() - age_s

    async def _check_caught_up(self, consumer: AIOKafkaConsumer, targets: dict[TopicPartition, int]) -> None:
        for tp in list(targets):
            if await consumer.position(tp) >= targets[tp]:
                del targets[tp]
        if not targets and not self.progress.caught_up:
            self.progress.caught_up = True
            log.info("cluster %s: initial read of %s complete", self.name, self._topic)


def _unknown_topic(response: Any, topic: str) -> bool:
    """Whether a metadata response says the topic does not exist (rather than, say, has no leader yet)."""
    return any(
        entry[1] == topic and entry[0] == UnknownTopicOrPartitionError.errno for entry in response.topics
    )
