"""The family table against docs/metrics.md and the collectors: each family declared once, documented once."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

from prometheus_client.core import Metric

from exporter.core.model import Record
from exporter.exposition.families import FAMILIES, FAMILY, Family, registry_family
from exporter.exposition.guard.counters import GuardCounters
from exporter.exposition.self_metrics import RECORD_KINDS, self_registry
from exporter.exposition.writers import counter_source, differs_source, enabled, writer_source

DOCS = Path(__file__).parent.parent.parent / "docs" / "metrics.md"
ROW = re.compile(r"^\| `([a-z_]+)` \|")


def documented() -> dict[str, tuple[str, tuple[str, ...]]]:
    """(type, labels) of every family in a table of docs/metrics.md, checked to be documented once."""
    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    header: list[str] = []
    for line in DOCS.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip()[1:-1].split("|")] if line.startswith("|") else []
        if cells[:1] == ["metric"]:
            header = cells
            continue
        match = ROW.match(line)
        if match is None:
            continue
        name = match.group(1)
        assert "type" in header, f"{name}: the table has no type column"
        assert "labels" in header, f"{name}: the table has no labels column"
        row = dict(zip(header, cells, strict=True))
        labels = row["labels"]
        assert name not in found, f"{name} is documented twice"
        found[name] = row["type"], tuple(re.findall(r"`([a-z_]+)`", labels)) if labels != "none" else ()
    return found


def test_every_family_is_documented_with_its_type_and_labels_and_nothing_else() -> None:
    docs = documented()
    assert sorted(docs) == sorted(FAMILY)
    for family in FAMILIES:
        assert docs[family.name] == (family.type, family.labels), family.name


def test_a_family_is_declared_once() -> None:
    assert len(FAMILY) == len(FAMILIES)


def test_the_collectors_write_every_registry_family_and_only_those() -> None:
    registry = self_registry({}, GuardCounters.new())
    written: list[Metric] = list(registry.collect())
    exposed = {m.name + ("_total" if m.type == "counter" else "") for m in written}
    declared = {f.name for f in FAMILIES if f.unit == "registry"}
    assert declared <= exposed
    assert {name for name in exposed if name.startswith("lagwatch_")} == declared
    for family in FAMILIES:
        if family.unit == "registry":
            metric = registry_family(family.name)
            assert (metric.type, metric.documentation) == (family.type, family.help)


def test_every_record_type_has_a_kind() -> None:
    assert sorted(t.__name__ for _, t in RECORD_KINDS) == sorted(t.__name__ for t in get_args(Record))
    assert [kind for kind, _ in RECORD_KINDS] == [
        "consumer_group_assignment",
        "consumer_group_member",
        "consumer_group_member_left",
        "consumer_group_topics",
        "decode_error",
        "group_metadata",
        "group_tombstone",
        "offset_commit",
        "offset_tombstone",
        "skipped",
    ]


def test_a_writer_is_one_comprehension_over_the_lists_it_reads() -> None:
    # The hot loop: one f-string per sample, the shared open label set, no call per sample, no other list.
    assert writer_source(FAMILY["lagwatch_partition_lag"]) == (
        "def write(rows):\n"
        "    return [f'''lagwatch_partition_lag{lb}}} {lag}\\n''' "
        "for lb, lag in zip(rows.lb, rows.lag, strict=True) if lag is not None]\n"
    )
    assert writer_source(FAMILY["kafka_topic_partition_current_offset"]) == (
        "def write(rows):\n"
        "    return [f'''kafka_topic_partition_current_offset"
        '{{kafka_cluster="{c}",partition="{p}",topic="{t}"}} {head}\\n\'\'\' '
        "for c, t, heads in zip(rows.c, rows.t, rows.heads, strict=True) "
        "for p, head in enumerate(heads) if head is not None]\n"
    )


def test_a_family_is_compared_on_what_it_reads() -> None:
    # The label sets are not compared (the names of the groups and partitions are, once for all families).
    # A partition's values and figures are plain values from the round's columns, their lists compared whole,
    # in C.
    assert differs_source(FAMILY["lagwatch_partition_status"]) == (
        "def differs(old, new):\n    return old.st != new.st\n"
    )
    assert differs_source(FAMILY["lagwatch_partition_lag_seconds_source"]) == (
        "def differs(old, new):\n    return old.lsrc != new.lsrc\n"
    )
    # A figure the rows compute is compared whole.
    assert differs_source(FAMILY["lagwatch_group_lag_seconds_partitions"]) == (
        "def differs(old, new):\n    return old.src != new.src\n"
    )
    # A path tested against None is compared for that alone; a method's result depends on all of its object; a
    # family that reads nothing of its rows never differs.
    method = Family(
        "x", "gauge", "group", ("kafka_cluster", "group"), "", value="g.maxlag.topic.upper()", present="mx"
    )
    assert differs_source(method) == (
        "def differs(old, new):\n"
        "    return old.mx != new.mx or any((g0 is None) is not (g1 is None) or (g0 is not None and "
        "((g0.maxlag is None) is not (g1.maxlag is None) or (g0.maxlag is not None and "
        "(g0.maxlag.topic != g1.maxlag.topic)))) for g0, g1 in zip(old.g, new.g, strict=True))\n"
    )
    assert differs_source(Family("x", "gauge", "group", ("kafka_cluster", "group"), "", value="1")) == (
        "def differs(old, new):\n    return False\n"
    )


def test_a_counter_counts_what_the_writers_write() -> None:
    families = [f for f in enabled(frozenset()) if f.unit == "topic"]
    assert counter_source("topic", families) == (
        "def count(rows):\n"
        "    return [sum(1 for p, head in enumerate(heads) if head is not None)"
        " + sum(1 for p, start in enumerate(starts) if start is not None)"
        " + (1 if r is not None and r.retention_ms is not None else 0)"
        " + (1 if r is not None and r.retention_bytes is not None else 0)"
        " for heads, starts, r in zip(rows.heads, rows.starts, rows.r, strict=True)]\n"
    )
