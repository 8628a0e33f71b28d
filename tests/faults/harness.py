"""What the fault tests and bench/bench_faults.py share: lagwatch's runtime for one cluster as `app.run`
builds it, a workload of producers and a committing group, a counter of `connect()` calls, Kafka's leaders."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Self

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from exporter.core.model import GroupStatus, Status
from exporter.runtime import ClusterRuntime
from exporter.settings import ClusterSettings, FilterSettings, LagSecondsSettings, Settings, StorageSettings
from tests.kafka_cluster import create_topic

CLUSTER = "faults"
INTERVALS = 10
COMMIT_S = 2.0
SPAN_S = (INTERVALS - 1) * COMMIT_S
"""A full window spans this long: a group whose commits stop for longer is STOP by Burrow's rules. Freezing a
broker stops every commit of the cluster for about 10 s (offset commits wait for every in-sync replica, until
Kafka fences the frozen one), so the span must be longer than that for a STOP to be lagwatch's fault."""
REFRESH_S = 1.0
_CLIENT_TIMEOUT_MS = 3000


def runtime_settings(bootstrap: str, prefix: str, **cluster: Any) -> tuple[Settings, ClusterSettings]:
    """Settings that admit only the topics and groups named `prefix...`; Kafka's own request timeout (30 s)
    unless `cluster` says otherwise."""
    cluster_settings = ClusterSettings(
        bootstrap_servers=tuple(bootstrap.split(",")), offset_refresh=REFRESH_S, topic_refresh=5.0, **cluster
    )
    settings = Settings(
        clusters={CLUSTER: cluster_settings},
        storage=StorageSettings(intervals=INTERVALS),
        filters=FilterSettings(topic_allow=f"^{re.escape(prefix)}", group_allow=f"^{re.escape(prefix)}"),
        lag_seconds=LagSecondsSettings(enabled=False),
    )
    return settings, cluster_settings


@contextlib.asynccontextmanager
async def running(bootstrap: str, prefix: str, **cluster: Any) -> AsyncIterator[ClusterRuntime]:
    """A runtime with its sources running, once its HEAD poller has reached Kafka."""
    settings, cluster_settings = runtime_settings(bootstrap, prefix, **cluster)
    runtime = ClusterRuntime(CLUSTER, settings, cluster_settings)
    task = asyncio.create_task(runtime.run())
    try:
        await eventually(lambda: runtime.head.health.up, "the HEAD poller reaches Kafka")
        yield runtime
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def eventually(check: Callable[[], object], what: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {within:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


def status_of(runtime: ClusterRuntime, group: str) -> GroupStatus | None:
    return runtime.statuses().get(group)


def partition_statuses(runtime: ClusterRuntime, group: str) -> list[Status]:
    status = status_of(runtime, group)
    return [] if status is None else [p.status for p in status.partitions]


class ConnectCounter:
    """Counts `connect()` calls to the given ports made by any socket of this process (asyncio dials with
    `socket.connect` on a non-blocking socket, as aiokafka's connections do)."""

    def __init__(self, ports: Iterable[int]) -> None:
        self.ports = set(ports)
        self.counts: Counter[int] = Counter()
        self._original = socket.socket.connect

    def __enter__(self) -> ConnectCounter:
        original, counts, ports = self._original, self.counts, self.ports

        def connect(sock: socket.socket, address: Any) -> None:
            if isinstance(address, tuple) and address[1] in ports:
                counts[address[1]] += 1
            original(sock, address)

        socket.socket.connect = connect  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *_exc: object) -> None:
        socket.socket.connect = self._original  # type: ignore[method-assign]


class _Sampler:
    """Runs `sample` every `every` seconds while entered."""

    every = 0.1

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.every)

    def __enter__(self) -> Self:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


class RoundWatch(_Sampler):
    """When the runtime's HEAD rounds end, to 50 ms."""

    every = 0.05

    def __init__(self, runtime: ClusterRuntime) -> None:
        super().__init__()
        self.health = runtime.head.health
        self.rounds = self.health.rounds
        self.ends: list[float] = []

    def sample(self) -> None:
        if self.health.rounds != self.rounds:
            self.rounds = self.health.rounds
            self.ends.append(time.monotonic())

    def gaps(self, start: float, end: float) -> list[float]:
        """The time between two consecutive round ends between `start` and `end`, both included."""
        during = [start, *(t for t in self.ends if start <= t <= end), end]
        return [b - a for a, b in itertools.pairwise(during)]


class StatusWatch(_Sampler):
    """Samples a group's partition statuses every 0.1 s while running; a STOP is false when the workload had
    committed within the window's span before it (so the group was not stopped)."""

    def __init__(self, runtime: ClusterRuntime, workload: Workload) -> None:
        super().__init__()
        self.runtime = runtime
        self.workload = workload
        self.seen: Counter[Status] = Counter()
        self.false: list[tuple[float, list[Status]]] = []

    def sample(self) -> None:
        statuses = partition_statuses(self.runtime, self.workload.group)
        self.seen.update(statuses)
        if any(s != Status.OK for s in statuses):
            now = time.monotonic()
            last = self.workload.committed_at[-1] if self.workload.committed_at else None
            if set(statuses) - {Status.OK, Status.STOP} or (last is not None and now - last < SPAN_S):
                self.false.append((now, statuses))


class Workload:
    """A producer writing `rate` records a second to every partition of `topic` (acks=1, each partition on
    its own, so that a frozen leader holds back only its own partitions) and a group of its own that commits,
    every COMMIT_S, the offsets produced so far: a healthy consumer, OK throughout."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, group: str, rate: float = 20.0) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.group = group
        self.rate = rate
        self.produced = [0] * partitions
        self.commits = 0
        self.committed_at: list[float] = []
        """time.monotonic() of every successful commit."""
        self._tasks: list[asyncio.Task[None]] = []
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        # Short request timeouts: a request to a frozen broker must not hold the workload back for long.
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, acks=1, linger_ms=5, request_timeout_ms=_CLIENT_TIMEOUT_MS
        )
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            enable_auto_commit=False,
            request_timeout_ms=_CLIENT_TIMEOUT_MS,
        )
        await self._consumer.start()
        tps = [TopicPartition(self.topic, p) for p in range(len(self.produced))]
        self._consumer.assign(tps)
        self._tasks = [asyncio.create_task(self._produce(p)) for p in range(len(self.produced))]
        self._tasks.append(asyncio.create_task(self._commit(tps)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for client in (self._producer, self._consumer):
            if client is not None:
                with contextlib.suppress(KafkaError, OSError, TimeoutError):
                    async with asyncio.timeout(10):
                        await client.stop()

    async def _produce(self, partition: int) -> None:
        assert self._producer is not None
        while True:
            try:
                sent = await self._producer.send(self.topic, b"x", partition=partition)
                await sent
                self.produced[partition] += 1
            except KafkaError:
                await asyncio.sleep(0.5)
            await asyncio.sleep(1 / self.rate)

    async def _commit(self, tps: list[TopicPartition]) -> None:
        assert self._consumer is not None
        while True:
            try:
                async with asyncio.timeout(5):
                    await self._consumer.commit({tp: self.produced[tp.partition] for tp in tps})
                self.commits += 1
                self.committed_at.append(time.monotonic())
            except (KafkaError, TimeoutError):
                pass
            await asyncio.sleep(COMMIT_S)


async def new_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await create_topic(admin, name, partitions, replication_factor=3)
    finally:
        await admin.close()


async def leaders(bootstrap: str, topic: str) -> dict[int, int]:
    """Partition -> leader node id."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        return {p["partition"]: p["leader"] for p in described["partitions"]}
    finally:
        await admin.close()


async def offsets_topic_leaders(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    """Leaders of `__consumer_offsets`, which Kafka creates on the first group coordination: a commit to
    `topic` by a group of its own makes sure it exists."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=f"{topic}-warm-up", enable_auto_commit=False
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        deadline = time.monotonic() + 60
        while True:
            try:
                await consumer.commit({tp: 0})
                break
            except KafkaError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
    finally:
        await consumer.stop()
    while True:
        found = await leaders(bootstrap, "__consumer_offsets")
        if len(found) == partitions and min(found.values()) >= 0:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"__consumer_offsets has no leader for every partition: {found}")
        await asyncio.sleep(0.2)


def offsets_partition(group: str, partitions: int) -> int:
    """The `__consumer_offsets` partition of an ASCII-named group: Utils.abs(group.hashCode()) % partitions,
    as Kafka computes it."""
    code = 0
    for char in group:
        code = (31 * code + ord(char)) & 0xFFFFFFFF
    signed = code - 2**32 if code >= 2**31 else code
    return (0 if signed == -(2**31) else abs(signed)) % partitions
