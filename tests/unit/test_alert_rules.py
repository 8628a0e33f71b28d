"""Alert rules and their promtool tests, runbooks, and the example Alertmanager configuration."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.exposition import runbooks

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "alerts"
RULES = ALERTS / "lagwatch.rules.yml"
RULE_TESTS = sorted((ALERTS / "tests").glob("*.yml"))
ALERTMANAGER_CONFIG = ALERTS / "alertmanager.example.yml"
RUNBOOKS = REPO / "docs" / "runbooks.md"
METRICS_DOC = REPO / "docs" / "metrics.md"
RUNBOOK_BASE = "http://localhost:7980/runbooks#"
SEVERITIES = {"critical", "warning"}
RUNBOOK_PARTS = ("**Meaning.**", "**Likely causes.**", "**What to check.**", "**How to resolve.**")
NAMED_LABELS = ("kafka_cluster", "group", "instance")

PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
ALERTMANAGER = shutil.which("alertmanager") or shutil.which("prometheus-alertmanager")
NO_ALERTMANAGER = "Alertmanager not on PATH (apt-get install prometheus-alertmanager)"


@pytest.fixture
def promtool() -> str:
    if PROMTOOL is None:
        message = "promtool not on PATH (apt-get install prometheus); CI installs it"
        # A developer's run skips; in CI the same gap is a broken setup and must fail.
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return PROMTOOL


def _alerting_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


ALERT_RULES = _alerting_rules()
ALERT_NAMES = [rule["alert"] for rule in ALERT_RULES]


def _rule_test_cases() -> list[dict[str, Any]]:
    """Every alert_rule_test entry of every promtool test file."""
    cases = []
    for path in RULE_TESTS:
        document = yaml.safe_load(path.read_text())
        assert document["rule_files"] == ["../lagwatch.rules.yml"], path.name
        cases += [case for test in document["tests"] for case in test.get("alert_rule_test", [])]
    return cases


def _runbook_sections() -> dict[str, str]:
    """Level-2 sections of docs/runbooks.md by GitHub anchor."""
    sections: dict[str, str] = {}
    anchor = None
    for line in RUNBOOKS.read_text().splitlines():
        if line.startswith("## "):
            anchor = _github_anchor(line[3:])
            sections[anchor] = ""
        elif anchor is not None:
            sections[anchor] += line + "\n"
    return sections


def _github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


# --- promtool and amtool ----------------------------------------------------------------------------------


def test_promtool_checks_the_rules(promtool: str) -> None:
    checked = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60, check=False
    )
    assert (checked.returncode, checked.stderr) == (0, "")
    assert f"SUCCESS: {len(ALERT_RULES)} rules found" in checked.stdout


def test_promtool_unit_tests_pass(promtool: str) -> None:
    tested = subprocess.run(
        [promtool, "test", "rules", *map(str, RULE_TESTS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert tested.stdout.count("SUCCESS") == len(RULE_TESTS)


@pytest.mark.skipif(AMTOOL is None, reason="amtool not on PATH (apt-get install prometheus-alertmanager)")
def test_amtool_accepts_the_alertmanager_example() -> None:
    assert AMTOOL is not None
    checked = subprocess.run(
        [AMTOOL, "check-config", str(ALERTMANAGER_CONFIG)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert " - 2 inhibit rules\n - 2 receivers\n" in checked.stdout


# --- structure --------------------------------------------------------------------------------------------


def test_the_alerts_are_the_documented_sixteen() -> None:
    assert ALERT_NAMES == [
        "LagwatchGroupErr",
        "LagwatchPartitionsStopped",
        "LagwatchPartitionsStalled",
        "LagwatchPartitionsRewound",
        "LagwatchGroupWarn",
        "LagwatchGroupLagGrowing",
        "LagwatchGroupLagSecondsHigh",
        "LagwatchRetentionLossImminent",
        "LagwatchRetentionDataLost",
        "LagwatchDown",
        "LagwatchAbsent",
        "LagwatchClusterUnreachable",
        "LagwatchHeadRefreshStale",
        "LagwatchOffsetsDecodeErrors",
        "LagwatchOffsetsNotCaughtUp",
        "LagwatchSeriesCapExceeded",
    ]
    readme = (ALERTS / "README.md").read_text()
    assert [name for name in ALERT_NAMES if f"| `{name}` |" not in readme] == []


@pytest.mark.parametrize("rule", ALERT_RULES, ids=ALERT_NAMES)
def test_every_alert_has_severity_summary_description_and_runbook(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert sorted(annotations) == ["description", "runbook_url", "summary"]
    assert "\n" not in annotations["summary"].strip()
    assert annotations["runbook_url"] == RUNBOOK_BASE + rule["alert"].lower()


def test_every_runbook_url_has_a_section_and_every_alert_section_an_alert() -> None:
    sections = _runbook_sections()
    anchors = {rule["annotations"]["runbook_url"].removeprefix(RUNBOOK_BASE) for rule in ALERT_RULES}
    assert anchors - sections.keys() == set()
    assert {anchor for anchor in sections if anchor.startswith("lagwatch")} == anchors


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_every_runbook_section_has_its_four_parts_in_order(name: str) -> None:
    section = _runbook_sections()[name.lower()]
    positions = [section.find(part) for part in RUNBOOK_PARTS]
    assert -1 not in positions, f"{name}: missing {RUNBOOK_PARTS[positions.index(-1)]}"
    assert positions == sorted(positions)


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    cases = _rule_test_cases()
    firing = {case["alertname"] for case in cases if case["exp_alerts"]}
    quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}
    assert set(ALERT_NAMES) - firing == set()
    assert set(ALERT_NAMES) - quiet == set()
    assert (firing | quiet) - set(ALERT_NAMES) == set()


def test_firing_descriptions_name_the_cluster_group_and_instance() -> None:
    unnamed = [
        (case["alertname"], label)
        for case in _rule_test_cases()
        for alert in case["exp_alerts"]
        for label in NAMED_LABELS
        if label in alert["exp_labels"]
        and str(alert["exp_labels"][label]) not in alert["exp_annotations"]["description"]
    ]
    assert unnamed == []


def test_consumer_group_alerts_carry_the_cluster_and_the_group() -> None:
    labelled = {
        case["alertname"]: tuple(sorted(alert["exp_labels"]))
        for case in _rule_test_cases()
        for alert in case["exp_alerts"]
        if "group" in alert["exp_labels"]
    }
    assert set(labelled.values()) == {("group", "kafka_cluster", "severity")}
    assert len(labelled) == 9


def test_the_rules_use_only_documented_metrics() -> None:
    documented = set(re.findall(r"`(lagwatch_[a-z_]+)`", METRICS_DOC.read_text()))
    used = set(re.findall(r"\blagwatch_[a-z_]+\b", RULES.read_text()))
    assert used - documented == set()
    assert "lagwatch_partition_status" in used


# --- Alertmanager -----------------------------------------------------------------------------------------

# Alerts as the rules label them, and how the example configuration must route and inhibit each.
_ALERTS = {
    "LagwatchClusterUnreachable": ({"kafka_cluster": "prod", "instance": "lw-a:7980"}, "critical"),
    "LagwatchPartitionsStopped": ({"kafka_cluster": "prod", "group": "orders"}, "critical"),
    "LagwatchOffsetsNotCaughtUp": ({"kafka_cluster": "prod", "instance": "lw-a:7980"}, "warning"),
    "LagwatchPartitionsStalled": ({"kafka_cluster": "staging", "group": "billing"}, "critical"),
    "LagwatchGroupLagGrowing": ({"kafka_cluster": "staging", "group": "billing"}, "warning"),
    "LagwatchGroupWarn": ({"kafka_cluster": "staging", "group": "search"}, "warning"),
    "LagwatchDown": ({"job": "lagwatch", "instance": "lw-b:7980"}, "critical"),
    "LagwatchSeriesCapExceeded": ({"job": "lagwatch", "instance": "lw-c:7980"}, "warning"),
}
_EXPECTED = {
    "LagwatchClusterUnreachable": ("active", "page"),
    "LagwatchPartitionsStopped": ("suppressed", "page"),
    "LagwatchOffsetsNotCaughtUp": ("suppressed", "ticket"),
    "LagwatchPartitionsStalled": ("active", "page"),
    "LagwatchGroupLagGrowing": ("suppressed", "ticket"),
    "LagwatchGroupWarn": ("active", "ticket"),
    "LagwatchDown": ("active", "page"),
    "LagwatchSeriesCapExceeded": ("active", "ticket"),
}
_READY_TIMEOUT_S = 15.0


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """Base URL of an Alertmanager on loopback running the example configuration, without clustering."""
    if ALERTMANAGER is None:
        pytest.skip(NO_ALERTMANAGER)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={ALERTMANAGER_CONFIG}",
            f"--storage.path={tmp_path}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert _wait_until(lambda: _get(f"{url}/-/ready") is not None), (
            f"Alertmanager did not start: {log.name}"
        )
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.mark.e2e
def test_alertmanager_routes_by_severity_and_inhibits(alertmanager: str) -> None:
    body = [
        {"labels": {"alertname": name, "severity": severity, **labels}}
        for name, (labels, severity) in _ALERTS.items()
    ]
    request = urllib.request.Request(
        f"{alertmanager}/api/v2/alerts",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
    # The inhibitor learns about source alerts asynchronously: poll until the picture is complete.
    seen: dict[str, tuple[str, str]] = {}

    def settled() -> bool:
        seen.clear()
        for alert in json.loads(_get(f"{alertmanager}/api/v2/alerts") or "[]"):
            receivers = [receiver["name"] for receiver in alert["receivers"]]
            seen[alert["labels"]["alertname"]] = (alert["status"]["state"], ",".join(receivers))
        return seen == _EXPECTED

    _wait_until(settled)
    assert seen == _EXPECTED


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            text: str = response.read().decode()
            return text
    except OSError:
        return None


def _wait_until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# --- the runbooks page lagwatch serves ----------------------------------------------------------------------


def test_the_served_runbooks_have_a_section_with_the_id_of_every_alert_link() -> None:
    page = runbooks.page(runbooks.runbooks(), "9.9.9")
    ids = re.findall(r'<section id="([^"]+)">', page)
    assert sorted(ids) == sorted(_runbook_sections())
    for rule in ALERT_RULES:
        assert f'<section id="{rule["alert"].lower()}">' in page
    assert runbooks.runbooks() == RUNBOOKS.read_text()


def test_the_runbooks_page_escapes_the_markdown_and_ignores_headings_in_code() -> None:
    page = runbooks.page("# T\nintro <b>\n## A & B\ntext\n```\n## not a heading\n```\n## C\n", "1")
    assert re.findall(r'<section id="([^"]+)">', page) == ["a--b", "c"]
    assert "intro &lt;b&gt;" in page
    assert "<h2>A &amp; B</h2>" in page
    assert "## not a heading" in page


@pytest.mark.parametrize("rules", [False, True])
def test_gen_prometheusrule_points_every_runbook_link_at_the_given_base(rules: bool) -> None:
    base = "https://lagwatch.example.com/runbooks"
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen-prometheusrule"), "--runbook-base", base + "/"]
        + (["--rules"] if rules else []),
        capture_output=True,
        text=True,
        check=True,
    )
    document = yaml.safe_load(done.stdout)
    groups = document["groups"] if rules else document["spec"]["groups"]
    urls = [r["annotations"]["runbook_url"] for g in groups for r in g["rules"] if "alert" in r]
    assert urls == [f"{base}#{name.lower()}" for name in ALERT_NAMES]
