"""The Grafana dashboards and provisioning files: structure, data-source use, variables, the metrics contract.

No Grafana server can run here, so these checks are structural; tests/dashboard_queries.py gives an end-to-end
test every panel's PromQL to run against a real Prometheus. promtool, when present, checks that every query
parses.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from exporter.core.model import Status
from tests.dashboard_queries import DASHBOARD_DIR, panel_queries

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
DASHBOARDS = {
    path.stem: json.loads(path.read_text(encoding="utf-8")) for path in DASHBOARD_DIR.glob("*.json")
}
VALUES = {"cluster": "local", "group": "g1", "topic": ".*", "job": "lagwatch"}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    def walk(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from walk(panel.get("panels", []))

    return walk(dashboard["panels"])


def data_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in panels(dashboard) if panel["type"] != "row"]


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in dashboard["templating"]["list"]}


def queries_of(name: str) -> list[tuple[str, str, str]]:
    title = DASHBOARDS[name]["title"]
    return [query for query in panel_queries(DASHBOARD_DIR, VALUES) if query[0] == title]


def walk_json(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk_json(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk_json(value)


by_dashboard = pytest.mark.parametrize("name", sorted(DASHBOARDS))


# --- files ------------------------------------------------------------------------------------------------


def test_the_three_dashboards_are_shipped_with_stable_uids() -> None:
    assert {name: (d["uid"], d["title"]) for name, d in DASHBOARDS.items()} == {
        "lagwatch-overview": ("lagwatch-overview", "lagwatch / Overview"),
        "lagwatch-consumer-group": ("lagwatch-consumer-group", "lagwatch / Consumer group"),
        "lagwatch-self": ("lagwatch-self", "lagwatch / Exporter health"),
    }


@by_dashboard
def test_provisionable_header(name: str) -> None:
    dashboard = DASHBOARDS[name]
    # id null: Grafana assigns it; a fixed id would clash with dashboards already in the instance.
    assert (dashboard["id"], dashboard["schemaVersion"], dashboard["editable"]) == (None, 39, True)
    assert "lagwatch" in dashboard["tags"]
    assert "__inputs" not in dashboard
    assert "__requires" not in dashboard


@by_dashboard
def test_files_are_canonically_formatted(name: str) -> None:
    # Two-space JSON as Grafana exports it, so that a re-export gives a readable diff.
    text = (DASHBOARD_DIR / f"{name}.json").read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n"


# --- layout -----------------------------------------------------------------------------------------------


PANEL_TITLES = {
    "lagwatch-overview": [
        "Consumer groups",
        "Groups per status",
        "Groups in ERR and WARN",
        "Top groups by lag",
        "Total lag",
        "Groups not OK",
        "Top groups by lag in seconds",
        "Max lag in seconds",
        "lagwatch",
        "Kafka clusters up",
        "Committed offsets caught up",
        "HEAD age",
        "Series dropped by the cap",
    ],
    "lagwatch-consumer-group": [
        "Group",
        "Status",
        "Total lag",
        "Max lag",
        "Complete",
        "Partitions",
        "Members",
        "Group status",
        "Partitions",
        "Status per partition",
        "Lag per partition",
        "Time since last commit",
        "Lag in seconds per partition",
        "Lag in seconds: source",
        "Committed offset against HEAD",
        "Produced and committed per second",
        "Retention headroom per partition",
        "Retention margin and lost messages",
        "Owners",
        "Owners",
    ],
    "lagwatch-self": [
        "Instances",
        "Instances up",
        "Instances per version",
        "Series exposed",
        "Series dropped by the cap",
        "Kafka clusters",
        "Cluster up",
        "Committed offsets caught up",
        "HEAD age",
        "Evaluation duration",
        "__consumer_offsets",
        "Records read",
        "Decode errors",
        "Scrapes and process",
        "Scrape duration",
        "CPU",
        "Resident memory",
    ],
}


@by_dashboard
def test_panel_titles(name: str) -> None:
    assert [panel["title"] for panel in panels(DASHBOARDS[name])] == PANEL_TITLES[name]


@by_dashboard
def test_data_panel_titles_are_unique_and_described(name: str) -> None:
    # panel_queries identifies a query by (dashboard title, panel title).
    titles = [panel["title"] for panel in data_panels(DASHBOARDS[name])]
    assert len(titles) == len(set(titles))
    assert all(panel["description"].strip() for panel in data_panels(DASHBOARDS[name]))


@by_dashboard
def test_panel_ids_are_unique_positive_integers(name: str) -> None:
    ids = [panel["id"] for panel in panels(DASHBOARDS[name])]
    assert all(isinstance(i, int) and i > 0 for i in ids)
    assert len(ids) == len(set(ids))


@by_dashboard
def test_panels_tile_the_grid_without_overlap(name: str) -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in panels(DASHBOARDS[name]):
        pos = panel["gridPos"]
        assert pos["x"] >= 0
        assert pos["x"] + pos["w"] <= 24
        assert pos["w"] > 0
        assert pos["h"] > 0
        if panel["type"] == "row":
            assert (pos["x"], pos["w"], pos["h"]) == (0, 24, 1)
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in taken, f"{panel['title']!r} overlaps {taken[x, y]!r}"
                taken[x, y] = panel["title"]


# --- data source ------------------------------------------------------------------------------------------


@by_dashboard
def test_every_panel_target_and_query_variable_uses_the_datasource_variable(name: str) -> None:
    dashboard = DASHBOARDS[name]
    for panel in data_panels(dashboard):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        assert all(target["datasource"] == DATASOURCE for target in panel["targets"]), panel["title"]
    for variable in variables(dashboard).values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE


@by_dashboard
def test_no_datasource_uid_is_hard_coded(name: str) -> None:
    dashboard = DASHBOARDS[name]
    for node in walk_json(dashboard):
        if "datasource" in node:
            assert node["datasource"] == DATASOURCE
        if "uid" in node and node is not dashboard:
            assert node["uid"] == "${datasource}"
    # Grafana's export placeholders (${DS_PROMETHEUS}) only work through the import dialog, not provisioning.
    assert "${DS_" not in json.dumps(dashboard)


# --- variables --------------------------------------------------------------------------------------------

CLUSTERS = "label_values(lagwatch_group_status, kafka_cluster)"
# (name, type, query, multi and include-all, allValue)
VARIABLES = {
    "lagwatch-overview": [
        ("datasource", "datasource", "prometheus", False, None),
        ("cluster", "query", CLUSTERS, True, ".*"),
        (
            "group",
            "query",
            'label_values(lagwatch_group_status{kafka_cluster=~"$cluster"}, group)',
            True,
            ".*",
        ),
    ],
    # One group at a time, so cluster and group are single values matched literally with `=`.
    "lagwatch-consumer-group": [
        ("datasource", "datasource", "prometheus", False, None),
        ("cluster", "query", CLUSTERS, False, None),
        (
            "group",
            "query",
            'label_values(lagwatch_group_status{kafka_cluster="$cluster"}, group)',
            False,
            None,
        ),
        (
            "topic",
            "query",
            'label_values(lagwatch_partition_status{kafka_cluster="$cluster", group="$group"}, topic)',
            True,
            ".*",
        ),
    ],
    # No allValue for job: `.*` would pull in every job's scrape_duration_seconds, up and process_*.
    "lagwatch-self": [
        ("datasource", "datasource", "prometheus", False, None),
        ("job", "query", "label_values(lagwatch_build_info, job)", True, None),
        ("cluster", "query", 'label_values(lagwatch_cluster_up{job=~"$job"}, kafka_cluster)', True, ".*"),
    ],
}


@by_dashboard
def test_variables(name: str) -> None:
    found = [
        (v["name"], v["type"], v["query"], v["multi"], v.get("allValue"))
        for v in DASHBOARDS[name]["templating"]["list"]
    ]
    assert found == [(n, t, q, multi, all_value) for n, t, q, multi, all_value in VARIABLES[name]]
    for variable in DASHBOARDS[name]["templating"]["list"]:
        assert variable["includeAll"] == variable["multi"]
        if variable["type"] == "query":
            assert variable["definition"] == variable["query"]


@by_dashboard
def test_variables_refer_only_to_variables_defined_before_them(name: str) -> None:
    defined: set[str] = set()
    for variable in DASHBOARDS[name]["templating"]["list"]:
        assert set(re.findall(r"\$(\w+)", variable["query"])) <= defined, variable["name"]
        defined.add(variable["name"])


@by_dashboard
def test_every_variable_in_an_expression_is_defined(name: str, tmp_path: Path) -> None:
    shutil.copy(DASHBOARD_DIR / f"{name}.json", tmp_path)
    own = {variable: "x" for variable in variables(DASHBOARDS[name])}
    assert panel_queries(tmp_path, own)


MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"\$\{?(\w+)\}?"')


@by_dashboard
def test_multi_value_variables_are_matched_as_regexes_and_single_ones_literally(name: str) -> None:
    # Grafana joins a multi-value selection into a regex (a|b): after `=` it would match nothing.
    multi = {n for n, v in variables(DASHBOARDS[name]).items() if v["multi"]}
    texts = [target["expr"] for panel in data_panels(DASHBOARDS[name]) for target in panel["targets"]]
    texts += [v["query"] for v in variables(DASHBOARDS[name]).values()]
    matchers = [m for text in texts for m in MATCHER.findall(text)]
    assert matchers
    for label, operator, variable in matchers:
        assert operator == ("=~" if variable in multi else "="), (label, operator, variable)


# --- the metrics contract ---------------------------------------------------------------------------------

DOCUMENTED = set(re.findall(r"`(lagwatch_\w+)`", (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")))
PROMETHEUS_OWN = {"up", "scrape_duration_seconds"}
# The labels of docs/metrics.md. `kind` is the record-kind label of lagwatch_offsets_records_total as
# exporter/exposition/self_metrics.py writes it (that module is the authority on those names).
LABELS = {
    "kafka_cluster",
    "group",
    "topic",
    "partition",
    "status",
    "client_host",
    "client_id",
    "member_id",
    "source",
    "kind",
    "key_type",
    "version",
    "job",
    "instance",
}
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers outside strings, label sets, ranges and grouping
    clauses that are neither function names (followed by a parenthesis) nor keywords."""
    bare = _GROUPING.sub(" ", re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", _STRING.sub('""', expr)))
    names = re.findall(r"(?<![\w.])([a-zA-Z_:][\w:]*)(?!\w|\s*\()", bare)
    return {name for name in names if name.lower() not in _KEYWORDS}


def label_names(expr: str) -> set[str]:
    inside = _STRING.sub('""', expr)
    matchers = {m for block in re.findall(r"\{([^}]*)\}", inside) for m in re.findall(r"(\w+)\s*[=!]", block)}
    grouped = {label.strip() for clause in _GROUPING.findall(inside) for label in clause.split(",")}
    return matchers | (grouped - {""})


def test_metric_names_lexer() -> None:
    expr = (
        'sum by (kafka_cluster) (rate(x_total{a="b{c} y_total", d=~"$e"}[$__rate_interval]))\n'
        "  or on (kafka_cluster) 0 * up and time() - topk(10, max(z_seconds)) > 1e3"
    )
    assert metric_names(expr) == {"x_total", "up", "z_seconds"}
    assert label_names(expr) == {"kafka_cluster", "a", "d"}


def test_the_documented_names_are_read_from_the_docs() -> None:
    assert {
        "lagwatch_partition_status",
        "lagwatch_offsets_records_total",
        "lagwatch_series_dropped",
    } <= DOCUMENTED


@by_dashboard
def test_expressions_use_only_documented_metrics_and_labels(name: str) -> None:
    for _, panel, expr in queries_of(name):
        for metric in metric_names(expr):
            assert metric in DOCUMENTED | PROMETHEUS_OWN or metric.startswith("process_"), (panel, metric)
        # Never `cluster`: lagwatch's label is kafka_cluster, and Burrow's compatible names are optional.
        assert label_names(expr) <= LABELS, (panel, label_names(expr) - LABELS)
    for variable in variables(DASHBOARDS[name]).values():
        if variable["type"] == "query":
            assert metric_names(variable["query"]) <= {
                "label_values",
                "kafka_cluster",
                "group",
                "topic",
                "job",
            } | (DOCUMENTED)


REQUIRED_METRICS = {
    "lagwatch-overview": {
        "lagwatch_group_state",
        "lagwatch_group_status",
        "lagwatch_group_total_lag",
        "lagwatch_cluster_up",
        "lagwatch_offsets_caught_up",
        "lagwatch_head_refresh_timestamp_seconds",
        "lagwatch_series_dropped",
        "lagwatch_group_max_lag_seconds",
    },
    "lagwatch-consumer-group": {
        "lagwatch_group_status",
        "lagwatch_partition_status",
        "lagwatch_partition_lag",
        "lagwatch_partition_committed_offset",
        "lagwatch_topic_partition_end_offset",
        "lagwatch_partition_owner_info",
        "lagwatch_group_complete_ratio",
        "lagwatch_partition_lag_seconds",
        "lagwatch_group_lag_seconds_partitions",
        "lagwatch_partition_retention_headroom_seconds",
        "lagwatch_partition_retention_margin",
        "lagwatch_partition_lost_messages",
    },
    "lagwatch-self": {
        "lagwatch_cluster_up",
        "lagwatch_offsets_records_total",
        "lagwatch_offsets_decode_errors_total",
        "lagwatch_evaluation_duration_seconds",
        "scrape_duration_seconds",
        "lagwatch_series_exposed",
        "lagwatch_series_dropped",
    },
}


@by_dashboard
def test_each_dashboard_covers_its_part_of_the_issue(name: str) -> None:
    used = {metric for _, _, expr in queries_of(name) for metric in metric_names(expr)}
    assert REQUIRED_METRICS[name] <= used
    assert not any(metric.startswith("burrow_") for metric in used)


# --- statuses ---------------------------------------------------------------------------------------------

GROUP_STATUSES = {Status.OK, Status.WARN, Status.ERR}
PARTITION_STATUSES = {Status.OK, Status.WARN, Status.STOP, Status.STALL, Status.REWIND}
COLOURS = {
    "OK": "green",
    "WARN": "yellow",
    "ERR": "red",
    "STOP": "red",
    "STALL": "orange",
    "REWIND": "purple",
}


def status_mappings(panel: dict[str, Any]) -> list[dict[str, dict[str, Any]]]:
    field_config = panel["fieldConfig"]
    mappings = list(field_config["defaults"]["mappings"])
    for override in field_config["overrides"]:
        mappings += [m for p in override["properties"] if p["id"] == "mappings" for m in p["value"]]
    return [m["options"] for m in mappings if any(o["text"] in COLOURS for o in m["options"].values())]


def test_status_mappings_are_burrows_codes_with_fixed_colours() -> None:
    kinds: dict[tuple[str, str], set[Status]] = {}
    for name, dashboard in DASHBOARDS.items():
        for panel in data_panels(dashboard):
            for options in status_mappings(panel):
                assert all(Status(int(code)).name == o["text"] for code, o in options.items())
                assert all(COLOURS[o["text"]] == o["color"] for o in options.values())
                kinds[name, panel["title"]] = {Status(int(code)) for code in options}
    assert kinds == {
        ("lagwatch-overview", "Groups in ERR and WARN"): GROUP_STATUSES,
        ("lagwatch-consumer-group", "Status"): GROUP_STATUSES,
        ("lagwatch-consumer-group", "Group status"): GROUP_STATUSES,
        ("lagwatch-consumer-group", "Status per partition"): PARTITION_STATUSES,
    }


def panel(name: str, title: str) -> dict[str, Any]:
    (found,) = [p for p in data_panels(DASHBOARDS[name]) if p["title"] == title]
    return found


def test_partition_status_is_a_state_timeline_per_partition() -> None:
    timeline = panel("lagwatch-consumer-group", "Status per partition")
    assert timeline["type"] == "state-timeline"
    (target,) = timeline["targets"]
    assert target["legendFormat"] == "{{topic}} [{{partition}}]"
    assert (
        "lagwatch / Consumer group",
        "Status per partition",
        "max by (topic, partition) "
        '(lagwatch_partition_status{kafka_cluster="local", group="g1", topic=~".*"})',
    ) in queries_of("lagwatch-consumer-group")


def test_owners_table_lists_client_id_and_host_per_partition() -> None:
    owners = panel("lagwatch-consumer-group", "Owners")
    assert owners["type"] == "table"
    (target,) = owners["targets"]
    assert (target["instant"], target["format"]) == (True, "table")
    assert target["expr"] == (
        "max by (topic, partition, client_id, client_host, member_id) "
        '(lagwatch_partition_owner_info{kafka_cluster="$cluster", group="$group", topic=~"$topic"})'
    )


def test_groups_per_status_counts_the_state_set() -> None:
    # The state set has all three statuses (0 or 1) for every group: a status no group is in counts 0.
    expressions = [q for _, title, q in queries_of("lagwatch-overview") if title == "Groups per status"]
    assert expressions == [
        'sum(max by (kafka_cluster, group) (lagwatch_group_state{kafka_cluster=~"local", group=~"g1", '
        f'status="{status}"}}))'
        for status in ("OK", "WARN", "ERR")
    ]


# --- links ------------------------------------------------------------------------------------------------


def test_data_links_open_shipped_dashboards_with_their_variables() -> None:
    uids = {d["uid"]: set(variables(d)) for d in DASHBOARDS.values()}
    urls = [
        node["url"]
        for dashboard in DASHBOARDS.values()
        for node in walk_json(dashboard["panels"])
        if isinstance(node.get("url"), str)
    ]
    assert len(urls) == 3
    for url in urls:
        uid = re.fullmatch(r"/d/([\w-]+)/[\w-]+\?.*", url)
        assert uid is not None, url
        passed = set(re.findall(r"var-(\w+)=", url))
        assert passed == {"datasource", "cluster", "group"}
        assert passed <= uids[uid[1]]


# --- provisioning -----------------------------------------------------------------------------------------


def test_datasource_provisioning() -> None:
    config = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert config["apiVersion"] == 1
    (source,) = config["datasources"]
    assert (source["type"], source["access"], source["url"]) == ("prometheus", "proxy", "${PROMETHEUS_URL}")
    # The dashboards find it through their datasource variable, so nothing depends on its uid.
    assert "uid" not in source


def test_dashboard_provisioning_points_at_the_mounted_dashboards() -> None:
    config = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "lagwatch.yml").read_text())
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert (provider["type"], provider["folder"], provider["options"]["foldersFromFilesStructure"]) == (
        "file",
        "lagwatch",
        False,
    )
    path = provider["options"]["path"]
    assert Path(path).is_absolute()
    readme = (GRAFANA / "README.md").read_text(encoding="utf-8")
    assert f"grafana/dashboards:{path}:ro" in readme
    assert "grafana/provisioning/dashboards:/etc/grafana/provisioning/dashboards:ro" in readme
    assert "grafana/provisioning/datasources:/etc/grafana/provisioning/datasources:ro" in readme


# --- promtool ---------------------------------------------------------------------------------------------

PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not on PATH (apt-get install prometheus); CI has it")
def test_promtool_parses_every_query(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    queries = panel_queries(DASHBOARD_DIR, VALUES)
    rules = [{"record": f"lagwatch:dashboard_query_{i}", "expr": q} for i, (_, _, q) in enumerate(queries)]
    path = tmp_path / "queries.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(queries)} rules found".encode() in checked.stdout


# --- panel_queries ----------------------------------------------------------------------------------------


def write_dashboard(directory: Path, file: str, title: str, panels: list[dict[str, Any]]) -> None:
    (directory / file).write_text(json.dumps({"title": title, "panels": panels}), encoding="utf-8")


def target(expr: str, ref: str = "A") -> dict[str, str]:
    return {"refId": ref, "expr": expr}


def test_panel_queries_substitutes_variables_in_file_panel_and_target_order(tmp_path: Path) -> None:
    write_dashboard(
        tmp_path,
        "b.json",
        "Second",
        [{"title": "p", "targets": [target('up{job=~"$job"}')]}],
    )
    write_dashboard(
        tmp_path,
        "a.json",
        "First",
        [
            {"title": "row", "type": "row", "panels": []},
            {
                "title": "two",
                "targets": [
                    target('rate(x{c="$cluster", g=~"${group}"}[$__rate_interval])', "A"),
                    target("y[$__range] offset $__interval", "B"),
                    {"refId": "C", "datasource": {"type": "__expr__"}, "expression": "$A + 1"},
                ],
            },
            {
                "title": "collapsed",
                "type": "row",
                "panels": [{"title": "inside", "targets": [target('z{g="$group"} > $__interval_ms')]}],
            },
        ],
    )
    (tmp_path / "notes.txt").write_text("$nothing")
    assert panel_queries(tmp_path, {"cluster": "c1", "group": "g.1", "job": "lagwatch", "__range": "5m"}) == [
        ("First", "two", 'rate(x{c="c1", g=~"g.1"}[1m])'),
        ("First", "two", "y[5m] offset 15s"),
        ("First", "inside", 'z{g="g.1"} > 15000'),
        ("Second", "p", 'up{job=~"lagwatch"}'),
    ]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ('x{g="$groups"}', "no value for variable $groups"),
        ('x{g="${cluster:regex}"}', "a '$' that is not a variable reference"),
        ('x{g=~"a$"}', "a '$' that is not a variable reference"),
    ],
)
def test_panel_queries_refuses_what_it_cannot_substitute(tmp_path: Path, expr: str, message: str) -> None:
    write_dashboard(tmp_path, "d.json", "D", [{"title": "the panel", "targets": [target(expr, "Q")]}])
    expected = f"d.json: panel 'the panel', target 'Q': {message} in {expr!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        panel_queries(tmp_path, {"group": "g", "cluster": "c"})


@given(
    st.lists(
        st.tuples(
            st.text(st.characters(exclude_characters="$"), max_size=5),
            st.sampled_from(["cluster", "group", "__rate_interval"]),
            st.booleans(),
        ),
        max_size=5,
    ),
    st.text(max_size=5),
    st.text(max_size=5),
)
def test_panel_queries_replaces_exactly_the_references(
    tmp_path_factory: pytest.TempPathFactory, parts: list[tuple[str, str, bool]], cluster: str, group: str
) -> None:
    values = {"cluster": cluster, "group": group, "__rate_interval": "2m"}
    # A literal followed by a word character would extend the name of the bare reference before it.
    template = expected = ""
    for literal, name, braced in parts:
        template += literal + ("${" + name + "}" if braced else "$" + name + " ")
        expected += literal + values[name] + ("" if braced else " ")
    directory = tmp_path_factory.mktemp("dashboards")
    write_dashboard(directory, "d.json", "D", [{"title": "p", "targets": [target(template)]}])
    assert panel_queries(directory, values) == [("D", "p", expected)]


def test_panel_queries_of_the_shipped_dashboards() -> None:
    queries = panel_queries(DASHBOARD_DIR, VALUES)
    targets = [
        (d["title"], p["title"]) for d in DASHBOARDS.values() for p in data_panels(d) for _ in p["targets"]
    ]
    assert sorted((d, p) for d, p, _ in queries) == sorted(targets)
    assert Counter(d for d, _, _ in queries) == {
        "lagwatch / Overview": 14,
        "lagwatch / Consumer group": 20,
        "lagwatch / Exporter health": 13,
    }
    assert not [q for _, _, q in queries if "$" in q]
