"""The Helm chart (deploy/helm/lagwatch) renders, with its defaults, the very objects of the plain manifests
in deploy/kubernetes, so the two cannot drift; its switches (config in a Secret, an existing Secret, a volume
claim, no Prometheus Operator objects, runbook links) change what they say and nothing else.

Needs the `helm` binary (on PATH, or where .ci/containers builds it); skipped without it, failed in CI."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "lagwatch"
KUBERNETES = ROOT / "deploy" / "kubernetes"
HELM_ONLY_LABELS = {
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
}
CI_HELM = (
    Path(os.environ.get("LAGWATCH_CI_CACHE") or Path.home() / ".cache" / "lagwatch-ci") / "tools" / "helm"
)


@pytest.fixture(scope="module")
def helm() -> str:
    found = shutil.which("helm") or (str(CI_HELM) if CI_HELM.exists() else None)
    if found is None:
        pytest.skip("helm is not installed (.ci/containers builds it from the Go module proxy)")
    return found


def _render(helm: str, *options: str, release: str = "lagwatch") -> dict[tuple[str, str], dict[str, Any]]:
    done = subprocess.run(
        [helm, "template", release, str(CHART), *options], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(done.stdout) if d}


def _plain() -> dict[tuple[str, str], dict[str, Any]]:
    documents = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document["kind"] != "Kustomization":
                documents[(document["kind"], document["metadata"]["name"])] = document
    return documents


def _without_helm_labels(node: Any) -> Any:
    """Drop the labels only Helm adds (and the config checksum that rolls pods on a config change)."""
    if isinstance(node, dict):
        return {
            key: _without_helm_labels(value)
            for key, value in node.items()
            if key not in HELM_ONLY_LABELS
            and key != "checksum/config"
            and not (key == "annotations" and set(value) <= {"checksum/config"})
        }
    if isinstance(node, list):
        return [_without_helm_labels(item) for item in node]
    return node


def test_lint_is_clean(helm: str) -> None:
    done = subprocess.run([helm, "lint", "--strict", str(CHART)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout


def test_defaults_render_the_plain_manifests(helm: str) -> None:
    rendered = _render(helm)
    assert _without_helm_labels(rendered) == _plain()
    # What was dropped is only Helm's bookkeeping.
    deployment = rendered[("Deployment", "lagwatch")]
    assert deployment["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "lagwatch",
        "app.kubernetes.io/instance": "lagwatch",
    }
    assert set(deployment["spec"]["template"]["metadata"]["annotations"]) == {"checksum/config"}


def test_the_pod_is_locked_down(helm: str) -> None:
    spec = _render(helm)[("Deployment", "lagwatch")]["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001
    (container,) = spec["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": "http"}
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "256Mi"},
        "limits": {"memory": "1Gi"},
    }


def test_config_in_a_secret(helm: str) -> None:
    toml = '[clusters.prod]\nbootstrap_servers = ["k:9092"]\n[clusters.prod.security]\nsasl_password = "s3"\n'
    rendered = _render(helm, "--set", "config.asSecret=true", "--set-string", f"config.toml={toml}")
    assert ("ConfigMap", "lagwatch") not in rendered
    secret = rendered[("Secret", "lagwatch")]
    assert secret["stringData"] == {"lagwatch.toml": toml}
    volumes = rendered[("Deployment", "lagwatch")]["spec"]["template"]["spec"]["volumes"]
    assert volumes[0] == {"name": "config", "secret": {"secretName": "lagwatch"}}


def test_an_existing_secret_and_a_volume_claim(helm: str) -> None:
    rendered = _render(
        helm,
        "--set",
        "config.existingSecret=kafka-lagwatch",
        "--set",
        "state.existingClaim=lagwatch-state",
        release="monitoring",
    )
    assert {kind for kind, _ in rendered} == {"Deployment", "Service", "ServiceMonitor", "PrometheusRule"}
    assert {name for _, name in rendered} == {"monitoring-lagwatch"}
    volumes = rendered[("Deployment", "monitoring-lagwatch")]["spec"]["template"]["spec"]["volumes"]
    assert volumes == [
        {"name": "config", "secret": {"secretName": "kafka-lagwatch"}},
        {"name": "state", "persistentVolumeClaim": {"claimName": "lagwatch-state"}},
    ]


def test_operator_objects_can_be_left_out(helm: str) -> None:
    rendered = _render(helm, "--set", "serviceMonitor.enabled=false", "--set", "prometheusRule.enabled=false")
    assert {kind for kind, _ in rendered} == {"Deployment", "Service", "ConfigMap"}


def test_runbook_links_point_where_told(helm: str) -> None:
    plain = _plain()[("PrometheusRule", "lagwatch")]
    rendered = _render(helm, "--set", "prometheusRule.runbookBase=https://lw.example.com/runbooks/")
    rules = rendered[("PrometheusRule", "lagwatch")]["spec"]["groups"]
    links = [r["annotations"]["runbook_url"] for g in rules for r in g["rules"] if "alert" in r]
    expected = [
        r["annotations"]["runbook_url"].replace(
            "http://localhost:7980/runbooks#", "https://lw.example.com/runbooks#"
        )
        for g in plain["spec"]["groups"]
        for r in g["rules"]
        if "alert" in r
    ]
    assert links == expected
    assert all(link.startswith("https://lw.example.com/runbooks#") for link in links)
