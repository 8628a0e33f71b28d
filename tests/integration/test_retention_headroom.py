"""Retention headroom through the whole app against a real Kafka: `ClusterRuntime` with its HEAD poller (log
starts, DescribeConfigs) and offsets-topic source, read through the `/metrics` renderer.

Kafka deletes segments past retention.ms on its retention check, which the test cluster runs every second
(scripts/kafka-local sets log.retention.check.interval.ms); a topic with retention.ms and segment.ms of a
second loses its records within seconds of their writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from exporter.exposition.metrics import render
from exporter.runtime import ClusterRuntime
from exporter.settings import ClusterSettings, FilterSettings, Settings

CLUSTER = "it"
DEADLINE_S = 60.0


def _cluster(bootstrap: str) -> ClusterSettings:
    return ClusterSettings(
        bootstrap_servers=(bootstrap,), offset_refresh=0.5, topic_refresh=1.0, request_timeout=10.0
    )


@contextlib.asynccontextmanager
async def _topics(bootstrap: str, configs: dict[str, dict[str, str]]) -> AsyncIterator[dict[str, str]]:
    """Topics named `<prefix>-<key>` with the given configs (one partition each), deleted afterwards."""
    prefix = f"lagwatch-retention-{uuid.uuid4().hex[:8]}"
    names = {key: f"{prefix}-{key}" for key in configs}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(names[key], 1, 1, topic_configs=config) for key, config in configs.items()]
        )
        assert all(code == 0 for _, code, _ in response.topic_errors), response.topic_errors
        yield names
    finally:
        await admin.delete_topics(list(names.values()))
        await admin.close()


async def _produce(bootstrap: str, topic: str, count: int) -> None:
    """`count` records with distinct keys (a compacted topic refuses records without one)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        sent = [
            await producer.send(topic, key=f"k{i}".encode(), value=b"v", partition=0) for i in range(count)
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def _commit(bootstrap: str, group: str, topic: str, offset: int) -> None:
    """A consumer that commits `offset` and stops."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.commit({TopicPartition(topic, 0): offset})
    finally:
        await consumer.stop()


async def _log_start(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        return int((await consumer.beginning_offsets([tp]))[tp])
    finally:
        await consumer.stop()


async def _eventually(check: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {DEADLINE_S:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)


def _samples(runtime: ClusterRuntime) -> dict[tuple[str, str], float]:
    """(metric, topic) -> value of the runtime's retention series (one partition, one group per topic)."""
    found: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(render([runtime.view()]).body.decode()):
        for sample in family.samples:
            if "topic" in sample.labels:
                found[(sample.name, sample.labels["topic"])] = sample.value
    return found


async def test_lost_messages_margin_and_headroom(kafka_bootstrap: str) -> None:
    configs = {
        # 30 records, deleted a second after they were written: the group at offset 10 loses 20.
        "short": {"retention.ms": "1000", "segment.ms": "500", "cleanup.policy": "delete"},
        "day": {"retention.ms": "86400000", "cleanup.policy": "delete"},
        "forever": {"retention.ms": "-1", "cleanup.policy": "delete"},
        "compacted": {"cleanup.policy": "compact"},
    }
    async with _topics(kafka_bootstrap, configs) as names:
        prefix = names["short"].rsplit("-", 1)[0]
        group = f"{prefix}-group"
        for topic in names.values():
            await _produce(kafka_bootstrap, topic, 30)
        for topic in names.values():
            await _commit(kafka_bootstrap, group, topic, 10)
        # Kafka deletes the short topic's records only once a newer segment exists or the log is rolled: the
        # retention check rolls a log whose every record is past retention, so the log start reaches 30.
        await _eventually_log_start(kafka_bootstrap, names["short"], 30)

        settings = Settings(
            clusters={CLUSTER: _cluster(kafka_bootstrap)},
            filters=FilterSettings(topic_allow=f"^{re.escape(prefix)}-", group_allow=f"^{re.escape(group)}$"),
        )
        runtime = ClusterRuntime(CLUSTER, settings, _cluster(kafka_bootstrap))
        task = asyncio.create_task(runtime.run())
        try:
            short, day, forever, compacted = (names[k] for k in ("short", "day", "forever", "compacted"))
            await _eventually(
                lambda: all(
                    (name, topic) in _samples(runtime)
                    for name, topic in [
                        ("lagwatch_partition_lost_messages", short),
                        ("lagwatch_partition_retention_headroom_seconds", day),
                        ("lagwatch_topic_partition_start_offset", compacted),
                        ("lagwatch_partition_retention_margin", forever),
                    ]
                ),
                "every topic's retention series",
            )
            found = _samples(runtime)
            # Offsets 10 to 29 were deleted before the group read them: exactly 20, and nothing left.
            assert found[("lagwatch_topic_partition_start_offset", short)] == 30
            assert found[("lagwatch_partition_lost_messages", short)] == 20
            assert found[("lagwatch_partition_retention_margin", short)] == 0
            assert found[("lagwatch_partition_retention_headroom_seconds", short)] == 0
            assert found[("lagwatch_topic_retention_seconds", short)] == 1
            assert found[("lagwatch_partition_lag_seconds_source", short)] == 13  # below_log_start

            # A day of retention, records seconds old: 10 records of margin, nearly a day of headroom.
            assert found[("lagwatch_topic_partition_start_offset", day)] == 0
            assert found[("lagwatch_partition_lost_messages", day)] == 0
            assert found[("lagwatch_partition_retention_margin", day)] == 10
            assert found[("lagwatch_partition_retention_headroom_seconds", day)] > 86_400 - DEADLINE_S * 2
            assert found[("lagwatch_partition_retention_headroom_seconds", day)] <= 86_400
            assert found[("lagwatch_topic_retention_seconds", day)] == 86_400

            # Infinite retention: a margin (retention.bytes could still delete), no headroom in seconds.
            assert found[("lagwatch_partition_retention_margin", forever)] == 10
            assert ("lagwatch_partition_retention_headroom_seconds", forever) not in found
            assert ("lagwatch_topic_retention_seconds", forever) not in found

            # Compact-only: nothing is deleted by retention, so no headroom series at all.
            assert found[("lagwatch_topic_partition_start_offset", compacted)] == 0
            for name in (
                "lagwatch_partition_lost_messages",
                "lagwatch_partition_retention_margin",
                "lagwatch_partition_retention_headroom_seconds",
                "lagwatch_topic_retention_seconds",
            ):
                assert (name, compacted) not in found

            # Burrow fidelity: the lag still counts the lost records (HEAD 30 minus committed 10).
            status = runtime.statuses()[group]
            assert {p.topic: p.current_lag for p in status.partitions}[short] == 20
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def _eventually_log_start(bootstrap: str, topic: str, offset: int) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while (start := await _log_start(bootstrap, topic)) != offset:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"Kafka kept the log start of {topic} at {start}, not {offset}, for {DEADLINE_S:.0f} s: does "
                "the broker run its retention check often (log.retention.check.interval.ms, kafka-local)?"
            )
        await asyncio.sleep(0.5)
