"""A full outage of the 3-node cluster: every broker stopped, lagwatch backs off instead of reconnecting in a
loop, stays down in its metrics, and recovers by itself once the brokers are back."""

from __future__ import annotations

import asyncio
import time

import pytest

from exporter.core.model import Status
from tests.faults.harness import ConnectCounter, Workload, eventually, new_topic, partition_statuses, running
from tests.kafka_cluster import LocalKafka, unique_name

pytestmark = [pytest.mark.kafka, pytest.mark.faults]

OUTAGE_S = 10.0
MAX_ATTEMPTS_PER_BROKER_PER_S = 1.5
"""A broker address backs off to one attempt every 5 s; each of lagwatch's clients (HEAD poller, offsets
consumer) backs off on its own, and the window starts with the backoffs still short."""
MAX_CPU_SHARE = 0.15
RECOVERY_S = 45.0


async def test_a_full_outage_costs_a_few_connection_attempts_per_broker_and_recovers(
    three_nodes: LocalKafka,
) -> None:
    bootstrap = three_nodes.bootstrap
    prefix = unique_name("faults-outage")
    topic, group = f"{prefix}-topic", f"{prefix}-group"
    await new_topic(bootstrap, topic, 3)
    workload = Workload(bootstrap, topic, 3, group)
    await workload.start()
    try:
        async with running(bootstrap, prefix) as runtime:
            await eventually(lambda: partition_statuses(runtime, group) == [Status.OK] * 3, "the group OK")
            await workload.stop()
            ports = three_nodes.broker_ports().values()
            with ConnectCounter(ports) as counter:
                # One node after the other: the last one's metadata lists partitions without a leader, which
                # made aiokafka's consumer redial in a loop.
                for node in sorted(three_nodes.broker_ports()):
                    await asyncio.to_thread(three_nodes.stop_node, node)
                await asyncio.to_thread(three_nodes.stop)
                counter.counts.clear()
                cpu, started = time.process_time(), time.monotonic()
                await asyncio.sleep(OUTAGE_S)
                elapsed = time.monotonic() - started
                attempts = dict(counter.counts)
                cpu_share = (time.process_time() - cpu) / elapsed
            assert not runtime.head.health.up
            per_second = {port: attempts.get(port, 0) / elapsed for port in ports}
            assert max(per_second.values()) <= MAX_ATTEMPTS_PER_BROKER_PER_S, per_second
            assert cpu_share < MAX_CPU_SHARE, f"{cpu_share:.0%} of a core while every broker is down"

            await asyncio.to_thread(three_nodes.start)
            recovered = time.monotonic()
            workload = Workload(bootstrap, topic, 3, group)
            await workload.start()
            commits = workload.commits
            await eventually(lambda: workload.commits > commits, "a commit after the outage", RECOVERY_S)
            last = workload.produced.copy()
            await eventually(
                lambda: (
                    (status := runtime.statuses().get(group)) is not None
                    and all(
                        p.end is not None and p.end.offset >= last[p.partition] for p in status.partitions
                    )
                ),
                "the commits made after the outage in lagwatch's windows",
                RECOVERY_S,
            )
            # The round that read those commits may have run before the HEAD poller's next round: the statuses
            # follow within a refresh, not necessarily at the same instant.
            await eventually(
                lambda: partition_statuses(runtime, group) == [Status.OK] * 3,
                "the group OK again",
                RECOVERY_S,
            )
            assert runtime.head.health.up
            print(
                f"attempts per broker per second {per_second}, cpu {cpu_share:.1%}, "
                f"recovered in {time.monotonic() - recovered:.1f} s after the brokers were back"
            )
    finally:
        await workload.stop()
        if not three_nodes.running:
            await asyncio.to_thread(three_nodes.start)
