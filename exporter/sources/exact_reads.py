"""Exact reads for lag in seconds: the timestamp of the record at a committed offset, for the offsets that
interpolation on the HEAD history cannot answer or must confirm (docs/lag-seconds.md, section 2).

Per cluster, `concurrency` workers each own a consumer (started at its first read), take the most recently
wanted read from `TimeLag.take_reads` when the rate limit allows, and hand back what they found. A read reads
like a transactional consumer would (`read_committed`), so transaction markers and aborted records are
skipped, and a compacted-away offset is answered by the next record that still exists. A failed read is
answered None: `TimeLag` asks for it again at the next evaluation while it is still needed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError, OffsetOutOfRangeError
from aiokafka.structs import TopicPartition

from exporter.core.exact_answers import (
    Appended,
    BelowLogStart,
    ExactAnswer,
    NothingBefore,
    PartitionOffset,
    Untimed,
)
from exporter.core.timelag import TimeLag
from exporter.settings import ClusterSettings
from exporter.sources.kafka_client import client_kwargs
from exporter.sources.reconnect import BackoffConsumer
from exporter.token_bucket import TokenBucket

__all__ = ["ExactReader", "RateLimit", "read_record_time"]

log = logging.getLogger(__name__)
_FIRST_BACKOFF_S = 0.5
_MAX_BACKOFF_S = 30.0

_POLL_MS = 200
"""One wait for records; between two, the position is compared with the end the broker reported."""
_FETCH_MAX_WAIT_MS = 100
"""The broker holds an empty fetch this long (aiokafka's default is 500 ms): a read that finds only markers
or an empty tail answers sooner."""
_FETCH_BYTES = 64 * 1024
"""One record is needed, not a megabyte; Kafka still returns a first batch larger than this whole."""


class RateLimit(TokenBucket):
    """The token bucket with a wait for the asyncio workers that share it."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(rate, burst, clock)
        self._turn = asyncio.Lock()

    async def ready(self) -> None:
        """Wait until a token is available, without spending it: the caller spends it with `take`, before its
        next await, when it has something to spend it on. Waiters take turns, so each sees the tokens the
        previous one left."""
        async with self._turn:
            wait = self.delay()
            if wait > 0:
                await asyncio.sleep(wait)


async def read_record_time(consumer: AIOKafkaConsumer, read: PartitionOffset) -> ExactAnswer:
    """What a read_committed consumer finds at `read.offset`: the first data record at or after it, nothing
    up to the end the broker reported, or an offset below the log start. Loops until one of them; raises
    KafkaError (OffsetOutOfRangeError included when the offset is not below the log start) and leaves the
    time bound to the caller."""
    tp = TopicPartition(read.topic, read.partition)
    # A fresh assignment: no end offsets left from the previous read.
    consumer.assign([tp])
    consumer.seek(tp, read.offset)
    try:
        while True:
            records = (await consumer.getmany(tp, timeout_ms=_POLL_MS, max_records=1)).get(tp)
            if records:
                timestamp = records[0].timestamp
                return Untimed() if timestamp is None or timestamp < 0 else Appended(timestamp / 1000)
            # aiokafka moves the position past control batches and aborted records without returning them.
            # A read_committed fetch ends at the last stable offset; where the broker reports none (-1, or
            # None from old brokers) the high watermark does. Both are None until a fetch has answered since
            # the assignment.
            end = consumer.last_stable_offset(tp)
            if end is None or end < 0:
                end = consumer.highwater(tp)
            if end is not None and end >= 0:
                position = await consumer.position(tp)
                if position >= end:
                    return NothingBefore(position)
    except OffsetOutOfRangeError:
        start = (await consumer.beginning_offsets([tp]))[tp]
        if read.offset < start:
            return BelowLogStart(start)
        raise


class ExactReader:
    """The exact reads of one cluster, served from its `TimeLag` until cancelled."""

    def __init__(
        self,
        name: str,
        cluster: ClusterSettings,
        timelag: TimeLag,
        *,
        concurrency: int = 4,
        rate: float = 20.0,
    ) -> None:
        self.name = name
        self.reads = 0
        """Reads answered, found or not."""
        self.failures = 0
        """Reads that failed (timeout, error); each is asked for again while still needed."""
        self._cluster = cluster
        self._timelag = timelag
        self._concurrency = concurrency
        self._limit = RateLimit(rate, burst=concurrency)
        self._wanted = asyncio.Event()
        self._failing = False

    def wake(self) -> None:
        """New reads may be wanted (the app calls this after each evaluation)."""
        self._wanted.set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as workers:
            for number in range(self._concurrency):
                workers.create_task(self._work(), name=f"exact-reads-{self.name}-{number}")

    async def _work(self) -> None:
        consumer: AIOKafkaConsumer | None = None
        failures = 0
        try:
            while True:
                await self._limit.ready()
                reads = self._timelag.take_reads(1)
                if not reads:
                    # Nothing awaits between take_reads and clear(), so a wake() cannot be lost.
                    self._wanted.clear()
                    await self._wanted.wait()
                    continue
                self._limit.take()
                if consumer is None:
                    consumer = await self._start_consumer()
                answer = None if consumer is None else await self._read(consumer, reads[0])
                self._timelag.answer(reads[0], answer)
                if answer is not None:
                    failures = 0
                    continue
                if consumer is not None:
                    await _stop(consumer)
                    consumer = None
                # Kafka away or refusing: every worker backing off keeps a 4,096-read queue from turning into
                # a reconnection every 1/exact_reads_per_second.
                failures += 1
                await asyncio.sleep(min(_MAX_BACKOFF_S, _FIRST_BACKOFF_S * 2 ** (failures - 1)))
        finally:
            if consumer is not None:
                await _stop(consumer)

    async def _start_consumer(self) -> AIOKafkaConsumer | None:
        consumer = BackoffConsumer(
            client_kwargs(self._cluster),
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="none",
            fetch_max_wait_ms=_FETCH_MAX_WAIT_MS,
            max_partition_fetch_bytes=_FETCH_BYTES,
            fetch_max_bytes=_FETCH_BYTES,
        )
        try:
            async with asyncio.timeout(self._cluster.request_timeout):
                await consumer.start()
        except (KafkaError, OSError, TimeoutError) as exc:
            await _stop(consumer)
            self._failed(f"cannot connect: {_describe(exc)}")
            return None
        return consumer

    async def _read(self, consumer: AIOKafkaConsumer, read: PartitionOffset) -> ExactAnswer | None:
        try:
            async with asyncio.timeout(self._cluster.request_timeout):
                answer = await read_record_time(consumer, read)
        except (KafkaError, OSError, TimeoutError) as exc:
            self._failed(f"{read.topic}/{read.partition} at {read.offset}: {_describe(exc)}")
            return None
        self.reads += 1
        if self._failing:
            self._failing = False
            log.info("cluster %s: exact reads succeed again", self.name)
        return answer

    def _failed(self, reason: str) -> None:
        self.failures += 1
        if not self._failing:
            log.warning("cluster %s: exact read failed (%s); retried while needed", self.name, reason)
        self._failing = True


def _describe(exc: BaseException) -> str:
    text = str(exc)
    # aiokafka's errors already start with their class name.
    return text if text.startswith(type(exc).__name__) else f"{type(exc).__name__}: {text}".rstrip(": ")


async def _stop(consumer: AIOKafkaConsumer) -> None:
    try:
        await consumer.stop()
    except (KafkaError, OSError) as exc:
        log.debug("stopping an exact-read consumer: %s", exc)
