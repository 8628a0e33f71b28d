"""HEAD offsets: per cluster, topic metadata every `topic_refresh` and the log-end offset of every partition
every `offset_refresh`, one ListOffsets request per leader broker, written to the storage.

Retention headroom needs two more things, fetched beside them: each partition's log-start offset, a second
ListOffsets per leader sent together with the first (Kafka answers a partition listed twice in one request
with INVALID_REQUEST, so the earliest and the latest offset cannot share a request), and each topic's
retention settings, one batched DescribeConfigs with every metadata refresh. Neither may cost the HEAD offsets
anything: their failures are logged and leave the previous values.

A round waits for each leader at most `broker_deadline` (half of `offset_refresh`, between 1 s and
`request_timeout`): a frozen or overloaded broker holds back only the partitions it leads, which keep their
last HEAD and are counted stale, while the rest of the cluster is stored and evaluated on time. A request
still unanswered at the deadline is not sent again while it is pending; an answer that arrives late is stored
when it arrives. The metadata is refreshed every round until every leader answers again (a fenced broker's
partitions move), and it and the retention settings are asked of a silent broker last, with the same
deadline. Each broker going silent or failing is logged once, and so is its recovery; `BrokerHealth` counts
its requests, errors and latency for the self-metrics.

The task never ends because Kafka is away: failures mark the cluster down, are logged once per change of
state, and are retried with capped exponential backoff; a fresh client is built for every reconnection so
that nothing stale survives a broker restart. Burrow's rules for a partial round hold (burrow-semantics.md
section 4): a partition without a leader, or one its leader answers with an error, is skipped and the
metadata is refreshed next round.

Lag in seconds keeps its own, longer HEAD history; a `HeadObserver` passed in by the runtime is told of every
offset stored and every topic deleted, so the poller stays about HEAD offsets. Evaluation waits for the end
of each round with `next_round`: the poller calls nobody back, so nothing evaluation does can stop it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import AIOKafkaClient
from aiokafka.errors import KafkaError, for_code
from aiokafka.protocol.admin import DescribeConfigsRequest
from aiokafka.protocol.offset import OffsetRequest

from exporter.core.retention import CONFIG_NAMES, TopicRetention, parse_topic_config
from exporter.core.storage import Storage
from exporter.settings import ClusterSettings
from exporter.sources.kafka_client import Topology, bootstrap, client_kwargs, fetch_topology
from exporter.sources.reconnect import BackoffClient
from exporter.sources.retry import cause

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


def broker_deadline(cluster: ClusterSettings) -> float:
    """How long a round waits for one leader's ListOffsets answer."""
    return min(cluster.request_timeout, max(1.0, cluster.offset_refresh / 2))


@dataclass
class BrokerHealth:
    """One leader broker as the HEAD poller sees it."""

    answers: int = 0
    """ListOffsets requests answered (partition-level errors included)."""
    answer_seconds: float = 0.0
    """Sum of the answered requests' latencies."""
    errors: Counter[str] = field(default_factory=Counter)
    """Rounds without an answer, by reason: `deadline` (none within the deadline) or `error` (the request
    failed)."""
    last_answer_s: float | None = None
    """Wall-clock time of its last answer; None before the first."""
    stale_partitions: int = 0
    """Partitions it leads whose HEAD the last round did not refresh."""
    trouble: str = ""
    """Why it did not answer, while it does not; logged once."""


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
    brokers: dict[int, BrokerHealth] = field(default_factory=dict)
    """The brokers that lead a polled partition or have a request pending, by node id."""


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
        observer: HeadObserver | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.health = ClusterHealth()
        self._cluster = cluster
        self._storage = storage
        self._round_ended = asyncio.Event()
        """Set when a round that reached the cluster ends, then replaced by a fresh one for the next."""
        self._observer = observer
        self._clock = clock
        self._client: AIOKafkaClient | None = None
        self._metadata_due = 0.0
        self._plan: _Plan = {}
        self._plan_complete = True
        self._backoff = _FIRST_BACKOFF_S
        self._retention_refused = False
        self._pending: dict[int, asyncio.Task[bool]] = {}
        """ListOffsets requests per leader, kept past a round's deadline until answered or failed."""

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
                ended, self._round_ended = self._round_ended, asyncio.Event()
                ended.set()
                elapsed = time.monotonic() - started
                await asyncio.sleep(max(0.0, self._cluster.offset_refresh - elapsed))
        finally:
            await self._close_client()

    async def next_round(self, seen: int) -> int:
        """Wait until more than `seen` rounds reached the cluster (`health.rounds`); returns how many have.
        Whoever acts on HEAD rounds (evaluation) waits here: the poller calls nobody back."""
        while self.health.rounds <= seen:
            await self._round_ended.wait()
        return self.health.rounds

    def _max_backoff(self) -> float:
        return min(_MAX_BACKOFF_S, max(1.0, 3 * self._cluster.offset_refresh))

    async def _round(self) -> None:
        client = await self._connect()
        # Groups committing to a topic the last metadata did not list: the topic is new (or gone), so look now
        # rather than up to topic_refresh later.
        if time.monotonic() >= self._metadata_due or self._storage.unconfirmed_topics():
            silent = {node for node, broker in self.health.brokers.items() if broker.trouble}
            self._apply_topology(
                await fetch_topology(client, deadline=broker_deadline(self._cluster), last=silent)
            )
            self._metadata_due = time.monotonic() + self._cluster.topic_refresh
            await self._fetch_retention(client, silent)
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
        for task in self._pending.values():
            task.cancel()
        self._pending.clear()
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
        now_ms = int(self._clock() * 1000)
        for topic in self._storage.set_topics(counts, now_ms):
            log.info("cluster %s: topic %s was deleted", self.name, topic)
            if self._observer is not None:
                self._observer.forget_topic(topic)
        self._storage.set_topic_ids(topology.topic_ids, now_ms)

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
        """One ListOffsets per leader, concurrently, each waited for at most the broker deadline. False when
        some partition was not answered this round; raises when no leader answered at all."""
        leaders = list(self._plan)
        for leader, task in list(self._pending.items()):
            if task.done():
                del self._pending[leader]  # answered (and stored) after its round's deadline, or failed
        for leader in leaders:
            self.health.brokers.setdefault(leader, BrokerHealth())
            if leader not in self._pending:
                task = asyncio.create_task(self._request(client, leader, self._plan[leader]))
                task.add_done_callback(_retrieve)
                self._pending[leader] = task
        for node in set(self.health.brokers) - set(leaders):
            if node in self._pending:
                self.health.brokers[node].stale_partitions = 0  # it leads nothing now
            else:
                del self.health.brokers[node]
        if not leaders:
            return True
        await asyncio.wait(
            [self._pending[leader] for leader in leaders], timeout=broker_deadline(self._cluster)
        )
        complete = True
        failures: dict[int, BaseException] = {}
        for leader in leaders:
            task = self._pending[leader]
            broker = self.health.brokers[leader]
            if not task.done():
                broker.errors["deadline"] += 1
                failures[leader] = TimeoutError(f"no answer within {broker_deadline(self._cluster):g} s")
                answered = False
            else:
                del self._pending[leader]
                error = task.exception()
                if error is not None and not isinstance(error, KafkaError | OSError | TimeoutError):
                    raise error
                if error is not None:
                    failures[leader] = error
                answered = error is None and task.result()
            broker.stale_partitions = 0 if answered else sum(len(ps) for _, ps in self._plan[leader])
            complete &= answered
        if len(failures) == len(leaders):
            raise next(iter(failures.values()))  # the cluster is down: that is logged, not each broker
        for leader, failure in failures.items():
            self._trouble(leader, cause(failure))
        return complete

    async def _request(
        self, client: AIOKafkaClient, leader: int, topics: list[tuple[str, list[tuple[int, int]]]]
    ) -> bool:
        """`_list_offsets`, accounted to its broker whenever it ends, within the round or after it."""
        broker = self.health.brokers[leader]
        started = time.monotonic()
        try:
            complete = await self._list_offsets(client, leader, topics)
        except (KafkaError, OSError, TimeoutError):
            broker.errors["error"] += 1
            raise
        broker.answers += 1
        broker.answer_seconds += time.monotonic() - started
        broker.last_answer_s = self._clock()
        if broker.trouble:
            log.info("cluster %s: broker %s answers ListOffsets again", self.name, leader)
            broker.trouble = ""
        return complete

    def _trouble(self, leader: int, reason: str) -> None:
        broker = self.health.brokers[leader]
        if not broker.trouble:
            log.warning(
                "cluster %s: broker %s: %s; the HEAD offsets of the partitions it leads are stale until it "
                "answers (lagwatch_broker_stale_partitions)",
                self.name,
                leader,
                reason,
            )
        broker.trouble = reason

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

    async def _fetch_retention(self, client: AIOKafkaClient, silent: set[int]) -> None:
        """cleanup.policy, retention.ms and retention.bytes of every topic, in batches to one broker, not a
        silent one while another is known. A topic Kafka refuses (no DescribeConfigs permission) gets unknown
        settings; a failed or late request keeps the last ones."""
        topics = self._storage.topics()
        known = [broker.nodeId for broker in client.cluster.brokers()]
        nodes = [node for node in known if node not in silent] or known
        if not topics or not nodes:
            return
        for start in range(0, len(topics), _CONFIG_BATCH):
            batch = topics[start : start + _CONFIG_BATCH]
            request = DescribeConfigsRequest(
                [(_TOPIC_RESOURCE, topic, list(CONFIG_NAMES)) for topic in batch]
            )
            try:
                async with asyncio.timeout(broker_deadline(self._cluster)):
                    response = await client.send(random.choice(nodes), request)
            except (KafkaError, OSError, TimeoutError) as exc:
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
        reason = cause(exc)
        if self.health.up or not self.health.last_error:
            log.warning("cluster %s: unreachable (%s); retrying with backoff", self.name, reason)
        if self.health.up or self.health.since_s is None:
            self.health.since_s = self._clock()
        self.health.up = False
        self.health.last_error = reason
        self.health.failures += 1


def _retrieve(task: asyncio.Task[bool]) -> None:
    """Marks the exception of a request no round waits for any more as retrieved; it was accounted for."""
    if not task.cancelled():
        task.exception()
