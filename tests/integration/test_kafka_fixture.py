"""The Kafka fixtures do what the integration tests rely on, against a real broker."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tests.kafka_cluster import KafkaNode, KafkaTool, NewTopicFactory, Produce, unique_name

pytestmark = pytest.mark.kafka


async def _end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        offsets: dict[TopicPartition, int] = await consumer.end_offsets(
            [TopicPartition(topic, p) for p in range(partitions)]
        )
        return offsets
    finally:
        await consumer.stop()


async def test_produce_writes_exact_counts_per_partition(
    kafka_bootstrap: str, new_topic: NewTopicFactory, produce: Produce
) -> None:
    topic = await new_topic(3)
    await produce(topic, [3, 5, 7])
    assert await _end_offsets(kafka_bootstrap, topic, 3) == {
        TopicPartition(topic, 0): 3,
        TopicPartition(topic, 1): 5,
        TopicPartition(topic, 2): 7,
    }


async def test_broker_stops_and_comes_back_with_its_data(
    kafka_bootstrap: str, kafka_node: KafkaNode, new_topic: NewTopicFactory, produce: Produce
) -> None:
    topic = await new_topic(2)
    await produce(topic, [4, 1])
    await kafka_node.stop()
    host, port = kafka_bootstrap.split(",")[0].rsplit(":", 1)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(host, int(port))
    assert await kafka_node.start() == kafka_bootstrap
    await produce(topic, {1: 2})
    assert await _end_offsets(kafka_bootstrap, topic, 2) == {
        TopicPartition(topic, 0): 4,
        TopicPartition(topic, 1): 3,
    }


async def test_console_consumer_joins_a_kip848_group_and_commits(
    kafka_bootstrap: str,
    kafka_admin: AIOKafkaAdminClient,
    kafka_tool: KafkaTool,
    new_topic: NewTopicFactory,
    produce: Produce,
) -> None:
    topic = await new_topic(2)
    await produce(topic, [2, 3])
    group = unique_name("lagwatch-test-group")
    consumed = await kafka_tool(
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        *("--bootstrap-server", kafka_bootstrap, "--topic", topic, "--group", group),
        *("--consumer-property", "group.protocol=consumer", "--from-beginning"),
        *("--max-messages", "5", "--timeout-ms", "30000"),
    )
    assert consumed.returncode == 0, consumed.stderr
    assert sorted(consumed.stdout.split()) == ["0:0", "0:1", "1:0", "1:1", "1:2"]

    committed = await kafka_admin.list_consumer_group_offsets(group)
    assert {tp: meta.offset for tp, meta in committed.items()} == {
        TopicPartition(topic, 0): 2,
        TopicPartition(topic, 1): 3,
    }
    listed = await kafka_tool(
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        *("--bootstrap-server", kafka_bootstrap, "--list", "--type"),
    )
    assert listed.returncode == 0, listed.stderr
    assert [group, "Consumer"] in [line.split() for line in listed.stdout.splitlines()]
