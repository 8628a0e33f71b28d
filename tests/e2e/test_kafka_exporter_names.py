"""kafka_exporter's names on real components: Kafka -> lagwatch (`metrics.compatible = kafka_exporter`) ->
Prometheus, which evaluates alert rules written the way kafka_exporter users write them, unchanged.

The workload runs a healthy group (caught up at every commit), a slow one (its lag grows) and a stalled one
(it commits the same offset again and again while records arrive). The popular expressions must fire for
exactly the lagging groups, and kafka_exporter's figures must equal lagwatch's own in the same scrape.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
import yaml

from exporter.tools.workload.runner import Workload
from exporter.tools.workload.scenarios import WorkloadConfig
from tests.e2e.conftest import COMMIT_INTERVAL, INTERVALS, RATE, running_lagwatch
from tests.e2e.driving import eventually, started_workload
from tests.e2e.monitoring import Daemon, missing_binaries, prometheus_config, start_prometheus
from tests.kafka_cluster import unique_name

if TYPE_CHECKING:
    from tests.e2e.conftest import Lagwatch

pytestmark = pytest.mark.e2e

T = TypeVar("T")
SCENARIOS = ("healthy", "slow", "stalled")
THRESHOLD = 150
"""Messages: the healthy group stays far below (it commits the end every second, 20 records a second and
partition arrive), the slow and stalled ones pass it within seconds."""
TIMEOUT_S = 60.0
POLL_S = 0.5

# kafka_exporter users' alerts, as they are commonly written: per group and topic, with the lag summed over
# the partitions or taken from the per-topic sum, and a group that stopped moving while it lags.
RULES = {
    "groups": [
        {
            "name": "kafka-exporter-style",
            "rules": [
                {
                    "alert": "KafkaConsumerGroupLagHigh",
                    "expr": f"sum by (consumergroup, topic) (kafka_consumergroup_lag) > {THRESHOLD}",
                },
                {
                    "alert": "KafkaConsumerGroupLagSumHigh",
                    "expr": f"kafka_consumergroup_lag_sum > {THRESHOLD}",
                },
                {
                    "alert": "KafkaConsumerGroupNotCommitting",
                    "expr": "delta(kafka_consumergroup_current_offset_sum[10s]) == 0 "
                    "and kafka_consumergroup_lag_sum > 0",
                },
            ],
        }
    ]
}

MISSING = [name for name in missing_binaries() if "alertmanager" not in name]
if MISSING and not os.environ.get("CI"):
    pytest.skip(f"{', '.join(MISSING)} not installed", allow_module_level=True)


@pytest.fixture(scope="module", autouse=True)
def _required_binaries() -> None:
    if MISSING:
        pytest.fail(f"{', '.join(MISSING)} not installed", pytrace=False)


@pytest.fixture(scope="module")
async def lagwatch(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Lagwatch]:
    """The e2e lagwatch with kafka_exporter's names (through the environment, as a container would set it)."""
    settings = {"LAGWATCH_METRICS__COMPATIBLE": "kafka_exporter"}
    async with running_lagwatch(kafka_bootstrap, tmp_path_factory.mktemp("lagwatch"), settings) as running:
        yield running


@pytest.fixture(scope="module")
async def prometheus(lagwatch: Lagwatch, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Daemon]:
    workdir = tmp_path_factory.mktemp("prometheus")
    rule_file = workdir / "kafka-exporter.rules.yml"
    rule_file.write_text(yaml.safe_dump(RULES, sort_keys=False))
    config = prometheus_config(
        lagwatch=lagwatch.url.removeprefix("http://"), alertmanager=None, rule_file=rule_file, interval="1s"
    )
    daemon = await start_prometheus(workdir, config)
    try:
        yield daemon
    finally:
        await daemon.stop()


@pytest.fixture(scope="module")
async def groups(lagwatch: Lagwatch, kafka_bootstrap: str) -> AsyncIterator[Workload]:
    config = WorkloadConfig(
        bootstrap_servers=tuple(kafka_bootstrap.split(",")),
        scenarios=SCENARIOS,
        prefix=unique_name("lagwatch-kafka-exporter"),
        commit_interval=COMMIT_INTERVAL,
        rate=RATE,
        phase=INTERVALS,
    )
    async with started_workload(lagwatch, config) as running:
        yield running


async def _eventually(workload: Workload, check: Callable[[], Awaitable[T]]) -> T:
    return await eventually(workload, check, TIMEOUT_S, POLL_S)


def _by(result: list[dict[str, Any]], *labels: str) -> dict[tuple[str, ...], float]:
    return {tuple(s["metric"][label] for label in labels): float(s["value"][1]) for s in result}


async def test_kafka_exporter_alerts_fire_for_exactly_the_lagging_groups(
    groups: Workload, prometheus: Daemon
) -> None:
    healthy, slow, stalled = (groups.state(name) for name in SCENARIOS)
    ours = f'consumergroup=~"{groups.config.prefix}-.*"'

    async def firing() -> dict[str, set[str]]:
        alerts = await prometheus.query(f'ALERTS{{alertstate="firing", {ours}}}')
        found: dict[str, set[str]] = {}
        for alert in alerts:
            found.setdefault(alert["metric"]["alertname"], set()).add(alert["metric"]["consumergroup"])
        assert found == {
            "KafkaConsumerGroupLagHigh": {slow.group, stalled.group},
            "KafkaConsumerGroupLagSumHigh": {slow.group, stalled.group},
            "KafkaConsumerGroupNotCommitting": {stalled.group},
        }, found
        return found

    await _eventually(groups, firing)

    async def same_as_lagwatchs_own() -> None:
        # One evaluation instant (a second ago, so both queries see the same scrapes).
        params = {"time": f"{time.time() - 1:.3f}"}
        kafka = await prometheus.get_json(
            "/api/v1/query",
            {"query": f"sum by (consumergroup, topic) (kafka_consumergroup_lag{{{ours}}})", **params},
        )
        selector = f'group=~"{groups.config.prefix}-.*"'
        native = await prometheus.get_json(
            "/api/v1/query",
            {"query": f"sum by (group, topic) (lagwatch_partition_lag{{{selector}}})", **params},
        )
        by_kafka = _by(kafka["data"]["result"], "consumergroup", "topic")
        by_native = _by(native["data"]["result"], "group", "topic")
        assert by_kafka == by_native
        assert set(by_kafka) == {(s.group, s.topic) for s in (healthy, slow, stalled)}
        assert all(value >= 0 for value in by_kafka.values())

    await _eventually(groups, same_as_lagwatchs_own)

    # The topic and member families, with kafka_exporter's labels (and kafka_cluster).
    partitions = _by(await prometheus.query(f'kafka_topic_partitions{{topic="{healthy.topic}"}}'), "topic")
    assert partitions == {(healthy.topic,): healthy.partitions}
    oldest = await prometheus.query(f'kafka_topic_partition_oldest_offset{{topic="{healthy.topic}"}}')
    assert {s["metric"]["partition"]: float(s["value"][1]) for s in oldest} == {
        str(p): 0.0 for p in range(healthy.partitions)
    }
    members = await prometheus.query(f'kafka_consumergroup_members{{consumergroup="{healthy.group}"}}')
    assert [(s["metric"]["kafka_cluster"], float(s["value"][1])) for s in members] == [("local", 1.0)]
    lags = await prometheus.query(f'kafka_consumergroup_lag{{consumergroup="{healthy.group}"}}')
    assert sorted(s["metric"]["partition"] for s in lags) == [str(p) for p in range(healthy.partitions)]
