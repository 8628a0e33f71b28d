"""The monitoring chain on real components: Kafka -> lagwatch -> Prometheus -> Alertmanager -> a webhook.

Prometheus (Debian's `prometheus`) scrapes lagwatch every second and evaluates the shipped alert rules, with
only their `for:` durations shortened to one second (expressions and range windows as shipped); it sends to
Alertmanager (Debian's `prometheus-alertmanager`), which notifies a webhook receiver served by this test. A
consumer that stops makes its partition STOP and its group ERR, and the alert arrives with its exact labels;
restarted, the consumer resolves it. In the same run, every PromQL expression of every panel of every shipped
dashboard is sent to that Prometheus and must return data.

Both daemons run on free 127.0.0.1 ports with their state in temp dirs. Without them the tests skip, except
in CI (CI set), where their absence is a broken setup.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

import aiohttp
import pytest

from exporter.core.model import Status
from exporter.tools.workload.runner import Workload
from exporter.tools.workload.scenarios import WorkloadConfig
from tests.dashboard_queries import DASHBOARD_DIR, panel_queries
from tests.e2e.driving import eventually, started_workload
from tests.e2e.monitoring import (
    Alert,
    Daemon,
    WebhookReceiver,
    alertmanager_config,
    missing_binaries,
    prometheus_config,
    shortened_rules,
    start_alertmanager,
    start_prometheus,
)
from tests.kafka_cluster import REPO, unique_name

if TYPE_CHECKING:
    from tests.e2e.conftest import Lagwatch

pytestmark = pytest.mark.e2e

T = TypeVar("T")
CLUSTER = "local"
SCRAPE_INTERVAL = "1s"
RULE_FOR = "1s"
RATE_INTERVAL = "10s"
"""Grafana's $__rate_interval is at least four scrape intervals; ten leave room for a late scrape."""
SCRAPES_FOR_RATES = 6
"""Scrapes within RATE_INTERVAL before rate() and deriv() panels are judged."""
ALERT_TIMEOUT_S = 60.0
DATA_TIMEOUT_S = 30.0
POLL_S = 0.5
COMMIT_INTERVAL = 1.0
RATE = 20.0
"""Records per second and partition, as in test_statuses.py: the slow group's lag grows at every commit."""
SCENARIOS = ("healthy", "slow", "stalled", "stopped")
"""The workload without rewound and the JVM console consumer: enough for every status the chain needs."""
GROUP_BY = ["alertname", "kafka_cluster", "group"]
"""Alertmanager's grouping: one notification per alert and group, so a webhook payload names one alert."""

EMPTY_BY_DESIGN: Mapping[tuple[str, str], str] = {}
"""(dashboard, panel) that return no data with the variables below, and why. The dashboards are shown for a
WARN group with a live member, so none is expected: the panels grafana/README.md lists as empty by design (the
ERR and WARN table, owners and members, max lag, HEAD age) all have data here."""


MISSING = missing_binaries()
# Skipped at collection, so that no Kafka starts for tests that cannot run.
if MISSING and not os.environ.get("CI"):
    pytest.skip(f"{', '.join(MISSING)} not installed", allow_module_level=True)


@pytest.fixture(scope="module", autouse=True)
def _required_binaries() -> None:
    """In CI, where the module is not skipped, missing daemons are a broken setup: the tests fail."""
    if MISSING:
        pytest.fail(f"{', '.join(MISSING)} not installed", pytrace=False)


async def _eventually(workload: Workload, check: Callable[[], Awaitable[T]], seconds: float) -> T:
    return await eventually(workload, check, seconds, POLL_S)


@pytest.fixture(scope="module")
async def webhook() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


@pytest.fixture(scope="module")
async def alertmanager(
    webhook: WebhookReceiver, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Daemon]:
    daemon = await start_alertmanager(
        tmp_path_factory.mktemp("alertmanager"), alertmanager_config(webhook.url, GROUP_BY)
    )
    try:
        yield daemon
    finally:
        await daemon.stop()


def _runbooks(lagwatch: Lagwatch) -> str:
    return f"{lagwatch.url}/runbooks"


@pytest.fixture(scope="module")
async def prometheus(
    lagwatch: Lagwatch, alertmanager: Daemon, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Daemon]:
    workdir = tmp_path_factory.mktemp("prometheus")
    rule_file = workdir / "lagwatch.rules.yml"
    # The shipped rules with their runbook links pointed at this lagwatch, as a user points them at theirs.
    generate = [sys.executable, str(REPO / "scripts" / "gen-prometheusrule"), "--rules"]
    rules = await asyncio.to_thread(
        subprocess.run,
        [*generate, "--runbook-base", _runbooks(lagwatch)],
        capture_output=True,
        text=True,
        check=True,
    )
    rule_file.write_text(shortened_rules(rules.stdout, RULE_FOR))
    config = prometheus_config(
        lagwatch=lagwatch.url.removeprefix("http://"),
        alertmanager=alertmanager.url.removeprefix("http://"),
        rule_file=rule_file,
        interval=SCRAPE_INTERVAL,
    )
    daemon = await start_prometheus(workdir, config)
    try:
        yield daemon
    finally:
        await daemon.stop()


@pytest.fixture(scope="module")
async def chain_workload(lagwatch: Lagwatch, kafka_bootstrap: str) -> AsyncIterator[Workload]:
    """conftest's `workload` with SCENARIOS only, started once lagwatch knows their topics."""
    config = WorkloadConfig(
        bootstrap_servers=tuple(kafka_bootstrap.split(",")),
        scenarios=SCENARIOS,
        prefix=unique_name("lagwatch-chain"),
        commit_interval=COMMIT_INTERVAL,
        rate=RATE,
        phase=lagwatch.intervals,
    )
    async with started_workload(lagwatch, config) as running:
        yield running


def _of(alert: Alert, group: str) -> bool:
    return bool(alert["labels"].get("group") == group)


async def _single_value(prometheus: Daemon, expr: str) -> float:
    # An assertion, not an unpacking error: `eventually` retries it while Prometheus has not scraped yet.
    result = await prometheus.query(expr)
    assert len(result) == 1, f"{expr}: {result}"
    return float(result[0]["value"][1])


async def test_stopped_consumer_alerts_the_webhook_and_its_restart_resolves_it(
    chain_workload: Workload, prometheus: Daemon, webhook: WebhookReceiver, lagwatch: Lagwatch
) -> None:
    state = chain_workload.state("stopped")
    labels = {
        "alertname": "LagwatchPartitionsStopped",
        "kafka_cluster": CLUSTER,
        "group": state.group,
        "severity": "critical",
    }

    # A fresh group's first commit may read as STOP for a moment (docs/workload.md): only what arrives after
    # the consumer left counts.
    async def consumer_left() -> int:
        assert not state.running
        return len(webhook.notifications)

    left_at = await _eventually(chain_workload, consumer_left, ALERT_TIMEOUT_S)
    fired_at, firing = await webhook.wait_for(labels, "firing", since=left_at, seconds=ALERT_TIMEOUT_S)

    assert webhook.notifications[fired_at]["groupLabels"] == {
        key: labels[key] for key in ("alertname", "kafka_cluster", "group")
    }
    selector = f'kafka_cluster="{CLUSTER}", group="{state.group}"'
    assert await _single_value(prometheus, f"lagwatch_partition_status{{{selector}}}") == Status.STOP
    assert await _single_value(prometheus, f"lagwatch_group_status{{{selector}}}") == Status.ERR
    annotations = firing["annotations"]
    assert annotations["summary"] == (
        f"Consumer group {state.group} on Kafka cluster {CLUSTER} stopped committing on 1 partition(s)"
    )
    # The topic list comes from a query the template runs against this Prometheus.
    assert f"partition(s) in STOP (topics: {state.topic}):" in annotations["description"]
    runbook = annotations["runbook_url"]
    assert runbook == f"{_runbooks(lagwatch)}#lagwatchpartitionsstopped"
    async with aiohttp.ClientSession() as session, session.get(runbook) as response:
        assert response.status == 200
        assert '<section id="lagwatchpartitionsstopped">' in await response.text()

    await chain_workload.start_consumer("stopped")
    _, resolved = await webhook.wait_for(labels, "resolved", since=fired_at + 1, seconds=ALERT_TIMEOUT_S)

    assert resolved["startsAt"] == firing["startsAt"]
    assert datetime.fromisoformat(resolved["endsAt"]) > datetime.fromisoformat(resolved["startsAt"])

    async def group_ok() -> None:
        assert await _single_value(prometheus, f"lagwatch_group_status{{{selector}}}") == Status.OK

    # The alert resolves when the partition leaves STOP; the group follows within a scrape.
    await _eventually(chain_workload, group_ok, DATA_TIMEOUT_S)
    # The group has partition series, so the partition alert names the failure and the generic one stays
    # silent (alerts/README.md: either, never both).
    group_alerts = {alert["labels"]["alertname"] for _, alert in webhook.alerts() if _of(alert, state.group)}
    assert group_alerts == {"LagwatchPartitionsStopped"}


async def test_every_dashboard_panel_returns_data(chain_workload: Workload, prometheus: Daemon) -> None:
    slow = chain_workload.state("slow")
    group = slow.group
    # Panels whose single value the workload determines: one consumer on the slow topic's partitions.
    exact = {
        ("lagwatch / Consumer group", "Status"): float(Status.WARN),
        ("lagwatch / Consumer group", "Complete"): 1.0,
        ("lagwatch / Consumer group", "Partitions"): float(slow.partitions),
        ("lagwatch / Consumer group", "Members"): 1.0,
        ("lagwatch / Overview", "Kafka clusters up"): 1.0,
        ("lagwatch / Overview", "Committed offsets caught up"): 1.0,
        ("lagwatch / Exporter health", "Instances up"): 1.0,
        ("lagwatch / Exporter health", "Series dropped by the cap"): 0.0,
    }
    variables = {"cluster": CLUSTER, "group": group, "topic": ".*", "job": "lagwatch"}
    queries = panel_queries(DASHBOARD_DIR, {**variables, "__rate_interval": RATE_INTERVAL})
    assert len({dashboard for dashboard, _, _ in queries}) == len(list(DASHBOARD_DIR.glob("*.json")))

    async def ready() -> None:
        selector = f'kafka_cluster="{CLUSTER}", group="{group}"'
        assert await _single_value(prometheus, f"lagwatch_group_status{{{selector}}}") == Status.WARN
        scrapes = await _single_value(prometheus, f'count_over_time(up{{job="lagwatch"}}[{RATE_INTERVAL}])')
        assert scrapes >= SCRAPES_FOR_RATES

    await _eventually(chain_workload, ready, DATA_TIMEOUT_S)

    async def every_panel_has_data() -> None:
        empty: dict[tuple[str, str], str] = {}
        values: dict[tuple[str, str], list[float]] = {}
        for dashboard, panel, expr in queries:
            result = await prometheus.query(expr)
            if not result:
                empty[dashboard, panel] = expr
            values.setdefault((dashboard, panel), []).extend(float(s["value"][1]) for s in result)
        assert set(empty) == set(EMPTY_BY_DESIGN), empty
        assert {key: values[key] for key in exact} == {key: [value] for key, value in exact.items()}

    await _eventually(chain_workload, every_panel_has_data, DATA_TIMEOUT_S)
