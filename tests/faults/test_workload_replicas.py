"""The demo workload's topics on a 3-node cluster get three replicas, not one (issue #16, item 8)."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient

from exporter.tools.workload.runner import Workload
from exporter.tools.workload.scenarios import PARTITIONS, WorkloadConfig
from tests.kafka_cluster import LocalKafka, unique_name


async def test_workload_topics_are_replicated_on_every_broker_of_a_three_node_cluster(
    three_nodes: LocalKafka,
) -> None:
    config = WorkloadConfig(
        bootstrap_servers=tuple(three_nodes.bootstrap.split(",")),
        scenarios=("healthy", "slow"),
        prefix=unique_name("replicas"),
    )
    await Workload(config).create_topics()
    admin = AIOKafkaAdminClient(bootstrap_servers=three_nodes.bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([f"{config.prefix}-healthy", f"{config.prefix}-slow"])
    finally:
        await admin.close()
    for topic in described:
        assert len(topic["partitions"]) == PARTITIONS[topic["topic"].rsplit("-", 1)[1]]
        assert {len(p["replicas"]) for p in topic["partitions"]} == {3}
        assert {len(p["isr"]) for p in topic["partitions"]} == {3}
