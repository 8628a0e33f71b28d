"""HEAD offsets: per cluster, topic metadata every `topic_refresh` and the log-end offset of every partition
every `offset_refresh`, one ListOffsets request per leader broker, written to the storage.

Retention headroom needs two more things, fetched beside them: each partition's log-start offset, a second
ListOffsets per leader sent together with the first (Kafka answers a partition listed twice in one request
with INVALID_REQUEST, so the earliest and the latest offset cannot share a request), and each topic's
retention settings, one batched DescribeConfigs with every metadata refresh. Neither may cost the HEAD offsets
anything: their failures are logged and leave the previous values. The task never ends because Kafka is away:
failures mark the cluster down, are logged once per change of state, and are retried with capped exponential
backoff; a fresh client is built for every reconnection so that nothing stale survives a broker restart.
Burrow's rules for a partial round hold (burrow-semantics.md section 4): a partition without a leader, or one
its leader answers with an error, is skipped and the metadata is refreshed next round. Lag in seconds keeps
its own, longer HEAD history; a `HeadObserver` passed in by the app is told of every offset stored and every
topic deleted, so the poller stays about HEAD offsets.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaClient
from aiokafka.errors import KafkaError, for_code
from aiokafka.protocol.admin import DescribeConfigsRequest
from aiokafka.protocol.offset import OffsetRequest

from exporter.retention import CONFIG_NAMES, TopicRetention, parse_topic_config
from exporter.settings import ClusterSettings
from exporter.sources.kafka_client import Topology, bootstrap, client_kwargs, fetch_topology
from exporter.sources.reconnect import BackoffClient
from exporter.storage import Storage

log = logging.getLogger(__name__)

_LATEST = -1
_EARLIEST = -2
_TOPIC_RESOURCE = 2
"""DescribeConfigs resource type of a topic."""
_CONFIG_BATCH = 1000
"""Topics per DescribeConfigs request: large clusters' responses stay well below a megabyte."""
_READ_UNCOMMITTED = 0
"""Burrow's isolation level: the HEAD is the high watermark, not the last stable offset."""
_FIRST_BACKOFF_S = 0.25
_MAX_BACKOFF_S = 30.0
_ROUND_TIMEOUTS = 3
"""A round's bound in request timeouts. aiokafka bounds every connection and request by request_timeout, and a
round may chain a few (bootstrap, a silent broker before the one that answers metadata, ListOffsets): this
bound only guards against a hang."""

_Plan = dict[int, list[tuple[str, list[tuple[int, int]]]]]
"""Leader broker -> the ListOffsets topics it is asked for: (topic, [(partition, _LATEST), ...])."""


@dataclass
class ClusterHealth:
    """What the HEAD poller knows about its cluster, read by the exposition through the app."""

    up: bool = False
    since_s: float | None = None
    """Wall-clock time `up` last changed (or was first set); None before the first round ended."""
    last_refresh_s: float | None = None
    """Wall-clock time of the last round that reached the cluster (leaderless partitions are retried)."""
    last_error: str = ""
    rounds: int = 0
    """Rounds that reached the cluster."""
    failures: int = 0
    """Rounds that did not, each followed by a backoff."""
    cluster_id: str = ""
    """The Kafka cluster's id from the last metadata; empty before it (or from brokers older than 3.1)."""


class HeadObserver(Protocol):
    """Told of what the poller writes to the storage (`timelag.TimeLag` is one)."""

    def observe(self, topic: str, partition: int, offset: int, now: float) -> None:
        """A HEAD offset polled at `now`, in seconds since the epoch."""

    def forget_topic(self, topic: str) -> None:
        """The topic was deleted."""


class HeadPoller:
    """Keeps the storage's topics, topic ids and HEAD offsets of one cluster current."""

    def __init__(
        self,
        name: str,
        cluster: ClusterSettings,
        storage: Storage,
        *,
        on_round: Callable[[], Awaitable[None]] | None = None,
        observer: HeadObserver | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.health = ClusterHealth()
        self._cluster = cluster
        self._storage = storage
        self._on_round = on_round
        self._observer = observer
        self._clock = clock
        self._client: AIOKafkaClient | None = None
        self._metadata_due = 0.0
        self._plan: _Plan = {}
        self._plan_complete = True
        self._backoff = _FIRST_BACKOFF_S
        self._retention_refused = False

    async def run(self) -> None:
        """Poll until cancelled."""
        try:
            while True:
                started = time.monotonic()
                try:
                    async with asyncio.timeout(_ROUND_TIMEOUTS * self._cluster.request_timeout):
                        await self._round()
                except (KafkaError, OSError, TimeoutError) as exc:
                    self._mark_down(exc)
                    await self._close_client()
                    await asyncio.sleep(self._backoff)
                    self._backoff = min(self._backoff * 2, self._max_backoff())
                    continue
                self._backoff = _FIRST_BACKOFF_S
                if self._on_round is not None:
                    await self._on_round()
                elapsed = time.monotonic() - started
                await asyncio.sleep(max(0.0, self._cluster.offset_refresh - elapsed))
        finally:
            await self._close_client()

    def _max_backoff(self) -> float:
        return min(_MAX_BACKOFF_S, max(1.0, 3 * self._cluster.offset_refresh))

    async def _round(self) -> None:
        client = await self._connect()
        # Groups committing to a topic the last metadata did not list: the topic is new (or gone), so look now
        # rather than up to topic_refresh later.
        if time.monotonic() >= self._metadata_due or self._storage.unconfirmed_topics():
            self._apply_topology(await fetch_topology(client))
            self._metadata_due = time.monotonic() + self._cluster.topic_refresh
            await self._fetch_retention(client)
        if not await self._fetch_offsets(client) or not self._plan_complete:
            self._metadata_due = 0.0
        self.health.last_refresh_s = self._clock()
        self.health.rounds += 1
        self._mark_up()

    async def _connect(self) -> AIOKafkaClient:
        if self._client is None:
            # metadata_max_age_ms: the client's own background refresh would duplicate fetch_topology.
            client = BackoffClient(**client_kwargs(self._cluster), metadata_max_age_ms=3_600_000)
            try:
                await bootstrap(client, self._cluster)
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

    def _apply_topology(self, topology: Topology) -> None:
        self.health.cluster_id = topology.cluster_id or self.health.cluster_id
        counts = {topic: len(leaders) for topic, leaders in topology.leaders.items()}
        for topic in topology.failed:
            # A topic listed with an error still exists: deleting it would drop every group's commits on it.
            known = self._storage.partition_count(topic)
            if known is not None:
                counts[topic] = known
        for topic in self._storage.set_topics(counts, int(self._clock() * 1000)):
            log.info("cluster %s: topic %s was deleted", self.name, topic)
            if self._observer is not None:
                self._observer.forget_topic(topic)
        self._storage.set_topic_ids(topology.topic_ids)

        plan: defaultdict[int, defaultdict[str, list[tuple[int, int]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        leaderless = 0
        for topic, leaders in topology.leaders.items():
            if self._storage.partition_count(topic) is None:
                continue  # rejected by the topic filter
            for partition, leader in enumerate(leaders):
                if leader < 0:
                    leaderless += 1
                else:
                    plan[leader][topic].append((partition, _LATEST))
        if leaderless:
            log.debug("cluster %s: %d partitions have no leader; skipped this round", self.name, leaderless)
        self._plan = {leader: list(topics.items()) for leader, topics in plan.items()}
        self._plan_complete = not leaderless and not topology.failed

    async def _fetch_offsets(self, client: AIOKafkaClient) -> bool:
        """One ListOffsets per leader, concurrently. False when some partition was not answered this round;
        raises when no leader answered at all."""
        leaders = list(self._plan)
        results = await asyncio.gather(
            *(self._list_offsets(client, leader, self._plan[leader]) for leader in leaders),
            return_exceptions=True,
        )
        complete = True
        failures: list[BaseException] = []
        for leader, result in zip(leaders, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, KafkaError | OSError | TimeoutError):
                    raise result
                log.debug("cluster %s: ListOffsets to broker %s failed: %s", self.name, leader, result)
                failures.append(result)
                complete = False
            elif not result:
                complete = False
        if failures and len(failures) == len(leaders):
            raise failures[0]
        return complete

    async def _list_offsets(
        self, client: AIOKafkaClient, leader: int, topics: list[tuple[str, list[tuple[int, int]]]]
    ) -> bool:
        earliest = [(topic, [(p, _EARLIEST) for p, _ in partitions]) for topic, partitions in topics]
        answers: tuple[Any, Any] = await asyncio.gather(
            client.send(leader, OffsetRequest(-1, _READ_UNCOMMITTED, topics)),
            client.send(leader, OffsetRequest(-1, _READ_UNCOMMITTED, earliest)),
            return_exceptions=True,
        )
        response, starts = answers
        if isinstance(response, BaseException):
            raise response
        if isinstance(starts, BaseException):
            if not isinstance(starts, KafkaError | OSError | TimeoutError):
                raise starts
            log.debug("cluster %s: ListOffsets (earliest) to broker %s failed: %s", self.name, leader, starts)
        else:
            for topic, partitions in starts.topics:
                for partition, error_code, _timestamp, offset in partitions:
                    if not error_code:
                        self._storage.set_start_offset(topic, partition, offset)
        now = self._clock()
        now_ms = int(now * 1000)
        observer = self._observer
        complete = True
        # ListOffsets v1-v3 (Kafka 4 dropped v0, aiokafka stops at v3): partition, error, timestamp, offset.
        for topic, partitions in response.topics:
            for partition, error_code, _timestamp, offset in partitions:
                if error_code:
                    log.debug(
                        "cluster %s: %s/%s: %s", self.name, topic, partition, for_code(error_code).__name__
                    )
                    complete = False
                else:
                    self._storage.add_head_offset(topic, partition, offset, now_ms)
                    if observer is not None:
                        observer.observe(topic, partition, offset, now)
        return complete

    async def _fetch_retention(self, client: AIOKafkaClient) -> None:
        """cleanup.policy, retention.ms and retention.bytes of every topic, in batches to one broker. A topic
        Kafka refuses (no DescribeConfigs permission) gets unknown settings; a failed request keeps the last
        ones."""
        topics = self._storage.topics()
        nodes = [broker.nodeId for broker in client.cluster.brokers()]
        if not topics or not nodes:
            return
        for start in range(0, len(topics), _CONFIG_BATCH):
            batch = topics[start : start + _CONFIG_BATCH]
            request = DescribeConfigsRequest(
                [(_TOPIC_RESOURCE, topic, list(CONFIG_NAMES)) for topic in batch]
            )
            try:
                response = await client.send(random.choice(nodes), request)
            except (KafkaError, OSError) as exc:
                log.debug("cluster %s: DescribeConfigs failed: %s", self.name, exc)
                return
            retention: dict[str, TopicRetention | None] = {}
            refused = 0
            for error_code, _message, _type, topic, entries, *_rest in response.resources:
                if error_code:
                    refused += 1
                    retention[topic] = None
                else:
                    retention[topic] = parse_topic_config({entry[0]: entry[1] for entry in entries})
            if refused and not self._retention_refused:
                log.warning(
                    "cluster %s: DescribeConfigs refused for %d topic(s) (%s): no retention headroom in "
                    "seconds for them",
                    self.name,
                    refused,
                    for_code(next(r[0] for r in response.resources if r[0])).__name__,
                )
            self._retention_refused = bool(refused)
            self._storage.set_topic_retention(retention)

    def _mark_up(self) -> None:
        if not self.health.up:
            log.info("cluster %s: connected, HEAD offsets are being refreshed", self.name)
            self.health.since_s = self._clock()
        self.health.up = True
        self.health.last_error = ""

    def _mark_down(self, exc: BaseException) -> None:
        # aiokafka's errors name their class themselves.
        reason = str(exc) if isinstance(exc, KafkaError) else f"{type(exc).__name__}: {exc}".rstrip(": ")
        if self.health.up or not self.health.last_error:
            log.warning("cluster %s: unreachable (%s); retrying with backoff", self.name, reason)
        if self.health.up or self.health.since_s is None:
            self.health.since_s = self._clock()
        self.health.up = False
        self.health.last_error = reason
        self.health.failures += 1
