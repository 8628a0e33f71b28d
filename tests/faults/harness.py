"""What the fault tests and bench/bench_faults.py share: lagwatch's runtime for one cluster as `app.run`
builds it, a workload of producers and a committing group, a counter of `connect()` calls, Kafka's leaders."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from exporter.app import ClusterRuntime
from exporter.model import GroupStatus, Status
from exporter.settings import ClusterSettings, FilterSettings, LagSecondsSettings, Settings, StorageSettings
from tests.kafka_cluster import create_topic

CLUSTER = "faults"
INTERVALS = 5
"""Commits in a window: with a commit every COMMIT_S, a consumer silent for ~4 s would be STOP."""
COMMIT_S = 1.0
REFRESH_S = 1.0


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
        self._tasks: list[asyncio.Task[None]] = []
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks=1, linger_ms=5)
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=self.group, enable_auto_commit=False
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


def offsets_partition(group: str, partitions: int) -> int:
    """The `__consumer_offsets` partition of an ASCII-named group: Utils.abs(group.hashCode()) % partitions,
    as Kafka computes it."""
    code = 0
    for char in group:
        code = (31 * code + ord(char)) & 0xFFFFFFFF
    signed = code - 2**32 if code >= 2**31 else code
    return (0 if signed == -(2**31) else abs(signed)) % partitions
