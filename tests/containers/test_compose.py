"""docker-compose.yml brought up as a user does (`docker compose up --wait`), Grafana aside (its image cannot
be had without a registry; the service stays in the file), and checked from outside through published ports:
Prometheus scrapes lagwatch, sees every status the demo workload produces, has loaded the shipped rules, and
an alert reaches Alertmanager. Then `docker compose down -v`. The demo runs at test speed (compose.ci.yml)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker  # type: ignore[import-untyped]
import pytest
import yaml

from tests.containers.conftest import docker_cli, eventually, get_json, need
from tests.kafka_cluster import REPO, unique_name

pytestmark = pytest.mark.containers

OVERRIDE = Path(__file__).with_name("compose.ci.yml")
SERVICES = ("kafka", "lagwatch", "workload", "prometheus", "alertmanager")
PREFIX = "lagwatch-demo"
"""The workload's default prefix: its groups are lagwatch-demo-<scenario>."""
STATUSES = {"slow": 2, "stopped": 4, "stalled": 5, "rewound": 6}
"""lagwatch_partition_status values: WARN, STOP, STALL, REWIND."""


class Stack:
    def __init__(self, project: str) -> None:
        self.project = project
        self.urls: dict[str, str] = {}

    def compose(self, *args: str, timeout: float = 600) -> str:
        files = ("-f", str(REPO / "docker-compose.yml"), "-f", str(OVERRIDE))
        done = docker_cli("compose", "-p", self.project, *files, *args, timeout=timeout)
        if done.returncode != 0 and args[0] != "logs":
            logs = self.compose("logs", "--no-color", "--tail", "25")
            raise AssertionError(f"docker compose {' '.join(args)}:\n{done.stdout}\n{done.stderr}\n{logs}")
        return done.stdout

    def url(self, service: str, port: int) -> str:
        address = self.compose("port", service, str(port)).strip()
        assert address.startswith("127.0.0.1:"), address
        return f"http://{address}"

    def prometheus(self, query: str) -> list[dict[str, Any]]:
        answer = get_json(f"{self.urls['prometheus']}/api/v1/query?query={urllib.parse.quote(query)}")
        assert answer["status"] == "success"
        return list(answer["data"]["result"])


@pytest.fixture(scope="module")
def stack(docker_client: docker.DockerClient, lagwatch_image: str) -> Iterator[Stack]:
    if docker_cli("compose", "version").returncode != 0:
        need("the Docker Compose v2 plugin is missing (docker compose version failed)")
    stack = Stack(unique_name("lagwatch-test"))
    try:
        stack.compose("up", "--detach", "--wait", "--wait-timeout", "300", "--no-build", *SERVICES)
        stack.urls = {"lagwatch": stack.url("lagwatch", 7980)}
        stack.urls["prometheus"] = stack.url("prometheus", 9090)
        stack.urls["alertmanager"] = stack.url("alertmanager", 9093)
        yield stack
    finally:
        stack.compose("down", "--volumes", "--timeout", "10")
    left = docker_client.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={stack.project}"}
    )
    volumes = docker_client.volumes.list(filters={"label": f"com.docker.compose.project={stack.project}"})
    assert (left, volumes) == ([], []), "docker compose down -v left containers or volumes behind"


def test_every_service_but_grafana_runs(stack: Stack) -> None:
    running = stack.compose("ps", "--services", "--status", "running").split()
    assert sorted(running) == sorted(SERVICES)


def test_prometheus_scrapes_lagwatch(stack: Stack) -> None:
    def lagwatch_target() -> dict[str, Any] | None:
        targets = get_json(f"{stack.urls['prometheus']}/api/v1/targets")["data"]["activeTargets"]
        (target,) = [t for t in targets if t["labels"]["job"] == "lagwatch"]
        return target if target["health"] == "up" else None

    target = eventually(lagwatch_target, "Prometheus's lagwatch target to be up", within=60)
    assert target["scrapeUrl"] == "http://lagwatch:7980/metrics"
    (cluster_up,) = stack.prometheus('lagwatch_cluster_up{job="lagwatch"}')
    assert (cluster_up["metric"]["kafka_cluster"], cluster_up["value"][1]) == ("local", "1")


def test_the_shipped_rule_groups_are_loaded(stack: Stack) -> None:
    shipped = yaml.safe_load((REPO / "alerts" / "lagwatch.rules.yml").read_text())["groups"]
    loaded = get_json(f"{stack.urls['prometheus']}/api/v1/rules")["data"]["groups"]
    assert {g["name"]: [r["name"] for r in g["rules"]] for g in loaded} == {
        g["name"]: [r.get("alert") or r["record"] for r in g["rules"]] for g in shipped
    }
    assert all(rule["health"] == "ok" for group in loaded for rule in group["rules"])


def test_every_demo_status_reaches_prometheus(stack: Stack) -> None:
    # Raw samples of the last minutes: REWIND comes and goes every few seconds, so one instant may miss it.
    def seen() -> dict[str, set[int]] | None:
        found: dict[str, set[int]] = {}
        for series in stack.prometheus(f'lagwatch_partition_status{{group=~"{PREFIX}-.*"}}[10m]'):
            scenario = series["metric"]["group"].removeprefix(f"{PREFIX}-")
            found.setdefault(scenario, set()).update(int(float(v)) for _, v in series["values"])
        return found if all(s in found.get(n, set()) for n, s in STATUSES.items()) else None

    found = eventually(seen, "WARN, STOP, STALL and REWIND in Prometheus", within=240, every=5)
    assert found["healthy"] == {1}
    (stalled,) = stack.prometheus(f'lagwatch_partition_status{{group="{PREFIX}-stalled"}}')
    assert stalled["value"][1] == "5"
    (stopped,) = stack.prometheus(f'lagwatch_partition_status{{group="{PREFIX}-stopped"}}')
    assert stopped["value"][1] == "4"


def test_an_alert_reaches_alertmanager(stack: Stack) -> None:
    # STALL holds for good, so LagwatchPartitionsStalled fires once its `for: 2m` has passed.
    wanted = {
        "alertname": "LagwatchPartitionsStalled",
        "group": f"{PREFIX}-stalled",
        "kafka_cluster": "local",
    }

    def stalled_alert() -> dict[str, Any] | None:
        alerts = get_json(f"{stack.urls['alertmanager']}/api/v2/alerts")
        matching = [a for a in alerts if wanted.items() <= a["labels"].items()]
        return matching[0] if matching else None

    alert = eventually(stalled_alert, "LagwatchPartitionsStalled in Alertmanager", within=240, every=5)
    assert alert["labels"]["severity"] == "critical"
    assert alert["status"]["state"] == "active"
    shipped = yaml.safe_load((REPO / "alerts" / "lagwatch.rules.yml").read_text())["groups"]
    (rule,) = [r for g in shipped for r in g["rules"] if r.get("alert") == wanted["alertname"]]
    assert alert["annotations"]["runbook_url"] == rule["annotations"]["runbook_url"]
    assert alert["annotations"]["summary"] == (
        f"Consumer group {PREFIX}-stalled on Kafka cluster local is stuck on 1 partition(s)"
    )
