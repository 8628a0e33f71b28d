"""End to end: real Kafka, real consumers (exporter.tools.workload) and lagwatch as a subprocess.

Every scenario's status is checked in the three places a user sees it: /metrics, the Burrow API and
`lagwatch status`. Numbers that are deterministic are asserted exactly: a partition's lag equals the HEAD and
the committed offset of the same scrape, the stalled and rewound offsets equal what the workload committed,
the slow group advances by exactly its quota. The tests share one lagwatch and one workload and run in file
order; the last one stops lagwatch with SIGTERM.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from exporter.core.model import Status
from exporter.tools.workload.runner import Workload
from exporter.tools.workload.scenarios import CONSUMER_PROTOCOL, ScenarioState, slow_quota
from tests.e2e.driving import eventually
from tests.kafka_cluster import KafkaTool

if TYPE_CHECKING:
    from tests.e2e.conftest import Lagwatch, Metrics

pytestmark = pytest.mark.e2e

T = TypeVar("T")
CLUSTER = "local"
TIMEOUT_S = 30.0
POLL_S = 0.2
GROUP_TOOL = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"


async def _eventually(workload: Workload, check: Callable[[], Awaitable[T]], seconds: float = TIMEOUT_S) -> T:
    return await eventually(workload, check, seconds, POLL_S)


def _labels(state: ScenarioState, partition: int) -> dict[str, str | int]:
    return {"kafka_cluster": CLUSTER, "group": state.group, "topic": state.topic, "partition": partition}


async def _metrics_show(
    lagwatch: Lagwatch, state: ScenarioState, group: Status, partitions: Mapping[int, Status]
) -> Metrics:
    """One scrape with the group and each partition in the expected status, evaluated on full windows, and
    every partition's lag exactly HEAD minus committed offset."""
    metrics = await lagwatch.metrics()
    labels = {"kafka_cluster": CLUSTER, "group": state.group}
    assert metrics.get("lagwatch_group_status", **labels) == group
    assert metrics.get("lagwatch_group_complete_ratio", **labels) == 1
    assert metrics.get("lagwatch_group_partitions", **labels) == state.partitions
    total = 0
    for partition, status in partitions.items():
        assert metrics.get("lagwatch_partition_status", **_labels(state, partition)) == status, partition
        head = metrics.value(
            "lagwatch_topic_partition_end_offset",
            kafka_cluster=CLUSTER,
            topic=state.topic,
            partition=partition,
        )
        committed = metrics.value("lagwatch_partition_committed_offset", **_labels(state, partition))
        lag = metrics.value("lagwatch_partition_lag", **_labels(state, partition))
        assert lag == head - committed
        total += lag
    assert metrics.value("lagwatch_group_total_lag", **labels) == total
    return metrics


async def _burrow_status(
    lagwatch: Lagwatch, state: ScenarioState, endpoint: str = "status"
) -> dict[str, Any]:
    code, body = await lagwatch.burrow(f"/v3/kafka/{CLUSTER}/consumer/{state.group}/{endpoint}")
    assert code == 200, body
    assert body["error"] is False
    status: dict[str, Any] = body["status"]
    assert status["cluster"] == CLUSTER
    assert status["group"] == state.group
    assert status["partition_count"] == state.partitions
    return status


async def _window(lagwatch: Lagwatch, state: ScenarioState, partition: int) -> list[dict[str, Any]]:
    """The partition's full commit window from the Burrow consumer detail, oldest first."""
    code, body = await lagwatch.burrow(f"/v3/kafka/{CLUSTER}/consumer/{state.group}")
    assert code == 200, body
    offsets: list[dict[str, Any] | None] = body["topics"][state.topic][partition]["offsets"]
    assert len(offsets) == lagwatch.intervals
    assert None not in offsets, "window not full"
    return [commit for commit in offsets if commit is not None]


async def _status_cli(lagwatch: Lagwatch, state: ScenarioState, expected_exit: int) -> dict[str, Any]:
    run = await lagwatch.status("--json", "--group", state.group)
    assert run.returncode == expected_exit, run.stderr
    (group,) = run.json()["groups"]
    assert group["group"] == state.group
    result: dict[str, Any] = group
    return result


def _by_partition(status: Mapping[str, Any]) -> dict[int, dict[str, Any]]:
    return {p["partition"]: p for p in status["partitions"]}


async def test_group_that_keeps_up_is_ok(lagwatch: Lagwatch, workload: Workload) -> None:
    state = workload.state("healthy")
    every_ok = dict.fromkeys(range(state.partitions), Status.OK)

    async def shows_ok() -> None:
        await _metrics_show(lagwatch, state, Status.OK, every_ok)
        status = await _burrow_status(lagwatch, state)
        assert status["status"] == "OK"
        assert status["partitions"] == []
        lag = await _burrow_status(lagwatch, state, "lag")
        assert {p: s["status"] for p, s in _by_partition(lag).items()} == dict.fromkeys(every_ok, "OK")
        cli = await _status_cli(lagwatch, state, expected_exit=0)
        assert cli["status"] == "OK"

    await _eventually(workload, shows_ok)
    # OK because the consumer was caught up at some commit of the window, not because nothing was produced.
    for partition in range(state.partitions):
        window = await _window(lagwatch, state, partition)
        assert 0 in [commit["lag"] for commit in window]
        assert window[-1]["offset"] > 0


async def test_consumer_slower_than_producer_warns(lagwatch: Lagwatch, workload: Workload) -> None:
    state = workload.state("slow")
    config = workload.config
    quota = slow_quota(config.rate, config.commit_interval)

    async def shows_warn() -> None:
        await _metrics_show(lagwatch, state, Status.WARN, dict.fromkeys(range(state.partitions), Status.WARN))
        for partition in range(state.partitions):
            window = await _window(lagwatch, state, partition)
            offsets = [commit["offset"] for commit in window]
            lags = [commit["lag"] for commit in window]
            assert [b - a for a, b in itertools.pairwise(offsets)] == [quota] * (config.phase - 1)
            assert all(a < b for a, b in itertools.pairwise(lags)), lags
        status = await _burrow_status(lagwatch, state)
        assert status["status"] == "WARN"
        assert {p: s["status"] for p, s in _by_partition(status).items()} == {0: "WARN", 1: "WARN"}
        cli = await _status_cli(lagwatch, state, expected_exit=0)
        assert cli["status"] == "WARN"

    await _eventually(workload, shows_warn)


async def test_consumer_committing_the_same_offset_stalls(lagwatch: Lagwatch, workload: Workload) -> None:
    state = workload.state("stalled")

    async def shows_stall() -> None:
        metrics = await _metrics_show(lagwatch, state, Status.ERR, {0: Status.STALL})
        stuck = state.committed[0]
        assert metrics.value("lagwatch_partition_committed_offset", **_labels(state, 0)) == stuck
        status = await _burrow_status(lagwatch, state)
        assert status["status"] == "ERR"
        (partition,) = status["partitions"]
        assert partition["status"] == "STALL"
        assert partition["start"]["offset"] == partition["end"]["offset"] == stuck
        assert partition["start"]["lag"] > 0
        cli = await _status_cli(lagwatch, state, expected_exit=1)
        assert _by_partition(cli)[0]["status"] == "STALL"

    await _eventually(workload, shows_stall)
    assert state.commits > workload.config.phase


async def test_consumer_that_stops_committing_is_stop_and_its_group_err(
    lagwatch: Lagwatch, workload: Workload
) -> None:
    state = workload.state("stopped")

    async def shows_stop() -> None:
        assert not state.running
        metrics = await _metrics_show(lagwatch, state, Status.ERR, {0: Status.STOP})
        last = state.committed[0]
        assert metrics.value("lagwatch_partition_committed_offset", **_labels(state, 0)) == last
        assert metrics.value("lagwatch_partition_lag", **_labels(state, 0)) > 0
        status = await _burrow_status(lagwatch, state)
        assert status["status"] == "ERR"
        (partition,) = status["partitions"]
        assert partition["status"] == "STOP"
        assert partition["end"]["offset"] == last
        cli = await _status_cli(lagwatch, state, expected_exit=1)
        assert _by_partition(cli)[0]["status"] == "STOP"

    await _eventually(workload, shows_stop)
    assert state.commits == workload.config.phase


async def test_consumer_reset_backwards_is_rewind(lagwatch: Lagwatch, workload: Workload) -> None:
    state = workload.state("rewound")

    # REWIND lasts intervals - 1 commits of every cycle, so all three views are read within one attempt.
    async def shows_rewind() -> None:
        metrics = await _metrics_show(lagwatch, state, Status.ERR, {0: Status.REWIND})
        rewound_to = state.rewound_to[0]
        assert metrics.value("lagwatch_partition_committed_offset", **_labels(state, 0)) == rewound_to
        offsets = [commit["offset"] for commit in await _window(lagwatch, state, 0)]
        drops = [i for i in range(1, len(offsets)) if offsets[i] < offsets[i - 1]]
        assert drops, offsets
        drop = drops[0]
        assert offsets[drop] == offsets[drop - 1] // 2 == rewound_to
        assert max(offsets[drop:]) < offsets[drop - 1]
        status = await _burrow_status(lagwatch, state)
        assert status["status"] == "ERR"
        (partition,) = status["partitions"]
        assert partition["status"] == "REWIND"
        assert partition["end"]["offset"] == rewound_to
        cli = await _status_cli(lagwatch, state, expected_exit=1)
        assert _by_partition(cli)[0]["status"] == "REWIND"

    await _eventually(workload, shows_rewind)


async def test_kip848_consumer_group_is_ok(
    lagwatch: Lagwatch, workload: Workload, kafka_bootstrap: str, kafka_tool: KafkaTool
) -> None:
    state = workload.state(CONSUMER_PROTOCOL)
    if state.unavailable:
        # Kafka 4 and the jars' console consumer are always there in CI: a skip there would hide a break.
        if os.environ.get("CI"):
            pytest.fail(state.unavailable)
        pytest.skip(state.unavailable)
    every_ok = dict.fromkeys(range(state.partitions), Status.OK)

    async def shows_ok() -> None:
        await _metrics_show(lagwatch, state, Status.OK, every_ok)
        status = await _burrow_status(lagwatch, state)
        assert status["status"] == "OK"
        cli = await _status_cli(lagwatch, state, expected_exit=0)
        assert cli["status"] == "OK"

    await _eventually(workload, shows_ok)
    listed = await kafka_tool(GROUP_TOOL, "--bootstrap-server", kafka_bootstrap, "--list", "--type")
    assert listed.returncode == 0, listed.stderr
    assert [state.group, "Consumer"] in [line.split() for line in listed.stdout.splitlines()]


async def test_restarted_consumer_brings_its_group_back_to_ok(lagwatch: Lagwatch, workload: Workload) -> None:
    state = workload.state("stopped")
    await _eventually(workload, lambda: _metrics_show(lagwatch, state, Status.ERR, {0: Status.STOP}))
    await workload.start_consumer("stopped")

    async def shows_ok() -> None:
        await _metrics_show(lagwatch, state, Status.OK, {0: Status.OK})
        status = await _burrow_status(lagwatch, state)
        assert status["status"] == "OK"
        assert status["partitions"] == []
        cli = await _status_cli(lagwatch, state, expected_exit=0)
        assert cli["status"] == "OK"

    await _eventually(workload, shows_ok)


async def test_deleting_a_group_removes_its_series(
    lagwatch: Lagwatch, workload: Workload, kafka_bootstrap: str, kafka_tool: KafkaTool
) -> None:
    state = workload.state("stalled")
    await _eventually(workload, lambda: _metrics_show(lagwatch, state, Status.ERR, {0: Status.STALL}))
    before = (await lagwatch.metrics()).of_group(state.group)
    assert "lagwatch_partition_lag" in before
    await workload.stop_consumer("stalled")

    deleted = await kafka_tool(
        GROUP_TOOL, "--bootstrap-server", kafka_bootstrap, "--delete", "--group", state.group
    )
    assert deleted.returncode == 0, deleted.stderr

    async def gone() -> Metrics:
        metrics = await lagwatch.metrics()
        assert metrics.of_group(state.group) == []
        return metrics

    metrics = await _eventually(workload, gone)
    # Only the group went: its topic, still produced to, keeps its HEAD series.
    assert metrics.value(
        "lagwatch_topic_partition_end_offset", kafka_cluster=CLUSTER, topic=state.topic, partition=0
    )
    code, body = await lagwatch.burrow(f"/v3/kafka/{CLUSTER}/consumer/{state.group}/status")
    assert code == 404
    assert body["status"]["status"] == "NOTFOUND"
    code, body = await lagwatch.burrow(f"/v3/kafka/{CLUSTER}/consumer")
    assert state.group not in body["consumers"]
    cli = await lagwatch.status("--json", "--group", state.group)
    assert cli.returncode == 1
    assert "not found" in cli.stderr


async def test_sigterm_stops_lagwatch_cleanly(lagwatch: Lagwatch) -> None:
    code = await lagwatch.terminate()
    assert code == 0, lagwatch.log_tail()
