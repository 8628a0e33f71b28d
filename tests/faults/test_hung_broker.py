"""One broker of the 3-node cluster frozen with SIGSTOP: the HEAD rounds go on without it, on time, the
partitions it leads keep their last HEAD and are exported as stale, the log names the broker once, and the
group that commits through another broker stays OK."""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import time

import pytest

from exporter.core.model import Status
from exporter.exposition.metrics import render
from exporter.sources.cluster import broker_deadline
from tests.faults.harness import (
    INTERVALS,
    RoundWatch,
    StatusWatch,
    Workload,
    eventually,
    leaders,
    new_topic,
    offsets_partition,
    offsets_topic_leaders,
    partition_statuses,
    running,
)
from tests.kafka_cluster import OFFSETS_PARTITIONS, LocalKafka, unique_name

pytestmark = [pytest.mark.kafka, pytest.mark.faults]

FROZEN_S = 15.0
EXPORTED_AT_S = 5.0
PARTITIONS = 6


async def test_a_frozen_broker_holds_back_only_its_own_partitions(
    three_nodes: LocalKafka, caplog: pytest.LogCaptureFixture
) -> None:
    bootstrap = three_nodes.bootstrap
    # A group whose coordinator (its __consumer_offsets partition's leader) is not the broker to freeze: its
    # commits go on, so every partition must stay OK.
    prefix = unique_name("faults-hung")
    topic = f"{prefix}-topic"
    await new_topic(bootstrap, topic, PARTITIONS)
    group_leaders = await offsets_topic_leaders(bootstrap, topic, OFFSETS_PARTITIONS)
    data_leaders = await leaders(bootstrap, topic)
    group = next(
        f"{prefix}-group-{i}"
        for i in range(1000)
        if group_leaders[offsets_partition(f"{prefix}-group-{i}", OFFSETS_PARTITIONS)] != data_leaders[0]
    )
    frozen = data_leaders[0]
    frozen_partitions = sorted(p for p, leader in data_leaders.items() if leader == frozen)
    others = sorted(set(data_leaders) - set(frozen_partitions))
    assert others, f"every partition is led by broker {frozen}: {data_leaders}"

    workload = Workload(bootstrap, topic, PARTITIONS, group)
    await workload.start()
    try:
        async with running(bootstrap, prefix) as runtime:
            deadline = broker_deadline(runtime.settings)
            await eventually(
                lambda: (
                    workload.commits > INTERVALS
                    and partition_statuses(runtime, group) == [Status.OK] * PARTITIONS
                ),
                "a full window of commits, the group OK",
            )
            health = runtime.head.health
            rounds = RoundWatch(runtime)
            caplog.clear()
            caplog.set_level(logging.INFO, logger="exporter.sources.cluster")
            before = runtime.storage.head_offsets(topic)
            with rounds, StatusWatch(runtime, workload) as statuses:
                three_nodes.signal_node(frozen, signal.SIGSTOP)
                frozen_at = time.monotonic()
                try:
                    # Before Kafka fences the broker (broker.session.timeout.ms, 9 s) and moves its leaders.
                    await asyncio.sleep(EXPORTED_AT_S)
                    exposition = render([runtime.view()]).body.decode()
                    await asyncio.sleep(FROZEN_S - EXPORTED_AT_S)
                    heads_frozen = runtime.storage.head_offsets(topic)
                finally:
                    three_nodes.signal_node(frozen, signal.SIGCONT)
                resumed_at = time.monotonic()
                await eventually(
                    lambda: health.brokers.get(frozen) is None or not health.brokers[frozen].trouble,
                    f"broker {frozen} answering again",
                )
                await asyncio.sleep(3 * runtime.settings.offset_refresh)

            # A round waits at most the broker deadline for the frozen broker, and the metadata refreshes it
            # forces each ask a live broker first.
            gaps = rounds.gaps(frozen_at, resumed_at)
            assert max(gaps) < runtime.settings.offset_refresh + deadline + 1.5, gaps
            assert before is not None
            assert heads_frozen is not None
            assert all((heads_frozen[p] or 0) > (before[p] or 0) for p in others), (before, heads_frozen)

            broker = f'broker="{frozen}"'
            assert _sample(exposition, "lagwatch_broker_stale_partitions", broker) >= 1, exposition
            age = _sample(exposition, "lagwatch_broker_head_age_seconds", broker)
            assert age > EXPORTED_AT_S - 2 * deadline, exposition
            errors = _sample(
                exposition, "lagwatch_broker_request_errors_total", f'{broker},reason="deadline"'
            )
            assert errors >= 1, exposition
            assert health.up

            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert len([w for w in warnings if f"broker {frozen}:" in w]) == 1, warnings
            recovered = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
            assert any(f"broker {frozen} answers" in m for m in recovered), recovered

            assert statuses.false == [], statuses.false
    finally:
        await workload.stop()


def _sample(exposition: str, name: str, labels: str) -> float:
    """The value of the sample of `name` whose labels end with `labels`."""
    found = re.search(rf"^{name}{{[^}}]*{re.escape(labels)}}} (\S+)$", exposition, re.MULTILINE)
    assert found is not None, f"no {name}{{...{labels}}} in\n{exposition}"
    return float(found[1])
