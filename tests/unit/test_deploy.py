"""The container, Compose and Kubernetes files stay consistent with the repository they ship from."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.cli import main

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
KUBERNETES = ROOT / "deploy" / "kubernetes"


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _manifests() -> list[dict[str, Any]]:
    documents = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        documents.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return documents


def test_compose_runs_the_whole_chain() -> None:
    services = _compose()["services"]
    assert set(services) == {"kafka", "lagwatch", "workload", "prometheus", "alertmanager", "grafana"}
    kafka_version = (ROOT / "scripts" / "kafka-version").read_text().strip()
    assert services["kafka"]["image"] == f"apache/kafka:{kafka_version}"
    assert services["workload"]["command"][:2] == ["demo", "workload"]


def test_compose_images_are_pinned() -> None:
    for name, service in _compose()["services"].items():
        if "image" in service and "build" not in service and name != "workload":
            image = service["image"]
            assert re.search(r":v?\d+\.\d+\.\d+$", image), f"{name}: {image} is not pinned"


def test_every_file_compose_mounts_exists() -> None:
    sources = [
        volume.split(":")[0]
        for service in _compose()["services"].values()
        for volume in service.get("volumes", [])
    ]
    # Bind mounts start with "./"; anything else must be a named volume the file declares.
    binds = [s for s in sources if s.startswith("./")]
    assert binds
    for mount in binds:
        assert (ROOT / mount).exists(), f"docker-compose.yml mounts {mount}, which is not in the repository"
    assert {s for s in sources if not s.startswith("./")} == set(_compose()["volumes"])


def test_compose_prometheus_loads_the_shipped_rules_and_scrapes_lagwatch() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "compose" / "prometheus.yml").read_text())
    assert config["scrape_configs"][0]["static_configs"][0]["targets"] == ["lagwatch:7980"]
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]


def test_compose_grafana_mounts_dashboards_where_provisioning_looks() -> None:
    provider = yaml.safe_load((ROOT / "grafana" / "provisioning" / "dashboards" / "lagwatch.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    grafana = _compose()["services"]["grafana"]
    assert f"./grafana/dashboards:{path}:ro" in grafana["volumes"]


def test_compose_lagwatch_configuration_is_valid(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    environment = _compose()["services"]["lagwatch"]["environment"]
    for name, value in environment.items():
        monkeypatch.setenv(name, str(value).replace("/etc/lagwatch/lagwatch.toml", ""))
    monkeypatch.delenv("LAGWATCH_CONFIG")
    assert main(["--config", str(ROOT / "deploy" / "compose" / "lagwatch.toml"), "config", "check"]) == 0


def test_kubernetes_configmap_is_a_valid_configuration(tmp_path: Path) -> None:
    config_map = next(d for d in _manifests() if d["kind"] == "ConfigMap")
    path = tmp_path / "lagwatch.toml"
    path.write_text(config_map["data"]["lagwatch.toml"])
    tomllib.loads(path.read_text())
    assert main(["--config", str(path), "config", "check"]) == 0


def test_kubernetes_probes_and_port_match_the_image() -> None:
    deployment = next(d for d in _manifests() if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"][0]["containerPort"] == 7980
    assert "EXPOSE 7980" in (ROOT / "Dockerfile").read_text()
    assert container["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(
        p.name for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml"
    )


def test_prometheusrule_is_generated_from_the_alert_rules() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen-prometheusrule"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rule = next(d for d in _manifests() if d["kind"] == "PrometheusRule")
    shipped = yaml.safe_load((ROOT / "alerts" / "lagwatch.rules.yml").read_text())
    assert rule["spec"]["groups"] == shipped["groups"]
