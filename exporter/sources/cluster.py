"""HEAD offsets: per cluster, topic metadata every `topic_refresh` and the log-end offset of every partition every
`offset_refresh`, one ListOffsets request per leader broker, written to the storage.

The task never ends because Kafka is away: failures mark the cluster down, are logged once per change of state, and
are retried with capped exponential backoff; a fresh client is built for every reconnection so that nothing stale
survives a broker restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaClient
from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import KafkaError, for_code
from aiokafka.protocol.offset import OffsetRequest
from aiokafka.structs import TopicPartition

from exporter.settings import ClusterSettings
from exporter.sources.kafka_client import client_kwargs
from exporter.storage import Storage

log = logging.getLogger(__name__)

_LATEST = -1
_READ_UNCOMMITTED = 0
_FIRST_BACKOFF_S = 0.25
_MAX_BACKOFF_S = 30.0


@dataclass
class ClusterHealth:
    """What the HEAD poller knows about its cluster, read by the exposition through the app."""

    up: bool = False
    last_refresh_s: float | None = None
    """Wall-clock time of the last round that reached the cluster (partitions without a leader are retried)."""
    last_error: str = ""
    rounds: int = 0


class HeadPoller:
    """Keeps the storage's topics and HEAD offsets of one cluster current."""

    def __init__(
        self,
        name: str,
        cluster: ClusterSettings,
        storage: Storage,
        *,
        on_round: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.health = ClusterHealth()
        self._cluster = cluster
        self._storage = storage
        self._on_round = on_round
        self._clock = clock
        self._client: AIOKafkaClient | None = None
        self._metadata_due = 0.0
        self._backoff = _FIRST_BACKOFF_S

    async def run(self) -> None:
        """Poll until cancelled."""
        try:
            while True:
                started = time.monotonic()
                try:
                    async with asyncio.timeout(self._cluster.request_timeout):
                        await self._round()
                except (KafkaError, OSError, TimeoutError) as exc:
                    self._mark_down(exc)
                    await self._close_client()
                    await asyncio.sleep(self._backoff)
                    self._backoff = min(self._backoff * 2, self._max_backoff())
                    continue
                self._backoff = _FIRST_BACKOFF_S
                if self._on_round is not None:
                    self._on_round()
                elapsed = time.monotonic() - started
                await asyncio.sleep(max(0.0, self._cluster.offset_refresh - elapsed))
        finally:
            await self._close_client()

    def _max_backoff(self) -> float:
        return min(_MAX_BACKOFF_S, max(1.0, 3 * self._cluster.offset_refresh))

    async def _round(self) -> None:
        client = await self._connect()
        if time.monotonic() >= self._metadata_due:
            if not await client.force_metadata_update():
                raise KafkaError("metadata request failed on every known broker")
            self._apply_metadata(client.cluster)
            self._metadata_due = time.monotonic() + self._cluster.topic_refresh
        if not await self._fetch_offsets(client):
            self._metadata_due = 0.0
        self.health.last_refresh_s = self._clock()
        self.health.rounds += 1
        self._mark_up()

    async def _connect(self) -> AIOKafkaClient:
        if self._client is None:
            client = AIOKafkaClient(**client_kwargs(self._cluster), metadata_max_age_ms=3_600_000)
            try:
                await client.bootstrap()
            except BaseException:
                await client.close()
                raise
            self._client = client
            self._metadata_due = 0.0
        return self._client

    async def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.close()
            except (KafkaError, OSError) as exc:
                log.debug("cluster %s: closing client: %s", self.name, exc)

    def _apply_metadata(self, metadata: ClusterMetadata) -> None:
        counts = {}
        for topic in metadata.topics(exclude_internal_topics=False):
            partitions = metadata.partitions_for_topic(topic)
            if partitions:
                counts[topic] = max(partitions) + 1
        for topic in self._storage.set_topics(counts, int(self._clock() * 1000)):
            log.info("cluster %s: topic %s was deleted", self.name, topic)

    async def _fetch_offsets(self, client: AIOKafkaClient) -> bool:
        """One ListOffsets per leader, concurrently. False when some partition could not be answered this round."""
        by_leader: dict[int, dict[str, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
        complete = True
        for topic in self._storage.topics():
            for partition in range(self._storage.partition_count(topic) or 0):
                leader = client.cluster.leader_for_partition(TopicPartition(topic, partition))
                if leader is None or leader < 0:
                    complete = False
                    continue
                by_leader[leader][topic].append((partition, _LATEST))
        results = await asyncio.gather(
            *(self._list_offsets(client, leader, topics) for leader, topics in by_leader.items()),
            return_exceptions=True,
        )
        for leader, result in zip(by_leader, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, KafkaError | OSError | TimeoutError):
                    raise result
                log.debug("cluster %s: ListOffsets to broker %s failed: %s", self.name, leader, result)
                complete = False
            elif not result:
                complete = False
        return complete

    async def _list_offsets(
        self, client: AIOKafkaClient, leader: int, topics: dict[str, list[tuple[int, int]]]
    ) -> bool:
        request = OffsetRequest(-1, _READ_UNCOMMITTED, list(topics.items()))
        response = await client.send(leader, request)
        now_ms = int(self._clock() * 1000)
        complete = True
        for topic, partitions in response.topics:
            for partition, error_code, *info in partitions:
                if error_code != 0:
                    log.debug("cluster %s: %s/%s: %s", self.name, topic, partition, for_code(error_code).__name__)
                    complete = False
                    continue
                self._storage.add_head_offset(topic, partition, info[-1], now_ms)
        return complete

    def _mark_up(self) -> None:
        if not self.health.up:
            log.info("cluster %s: connected, HEAD offsets are being refreshed", self.name)
        self.health.up = True
        self.health.last_error = ""

    def _mark_down(self, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
        if self.health.up or not self.health.last_error:
            log.warning("cluster %s: unreachable (%s); retrying with backoff", self.name, reason)
        self.health.up = False
        self.health.last_error = reason
