"""The Prometheus renderer: golden files, parser round trips, promtool, Burrow's vector, cap, granularity."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from exporter.core.model import NO_PARTITIONS, Commit, GroupStatus, Partitions, PartitionStatus, Status
from exporter.core.retention import Headroom, TopicRetention
from exporter.core.timelag import METHODS, SOURCE_CODES, LagSeconds
from exporter.exposition.cluster_view import BrokerView, ClusterView
from exporter.exposition.metrics import (
    CONTENT_TYPE,
    RenderOptions,
    RenderResult,
    render,
)
from exporter.exposition.text_format import format_float, seconds
from exporter.settings import Granularity

GOLDEN = Path(__file__).parent.parent / "golden"
# LAGWATCH_UPDATE_GOLDEN=1 rewrites the golden files from the current output; review the diff, then commit.
UPDATE_GOLDEN = os.environ.get("LAGWATCH_UPDATE_GOLDEN") == "1"
HEALTH = {
    "lagwatch_cluster_up",
    "lagwatch_offsets_caught_up",
    "lagwatch_head_refresh_timestamp_seconds",
    "lagwatch_evaluation_duration_seconds",
    "lagwatch_series_exposed",
    "lagwatch_series_dropped",
    "lagwatch_series_cap_exceeded",
}
T = 1_763_000_000_000
Sample = tuple[str, frozenset[tuple[str, str]]]


def _commit(offset: int, ts_ms: int, lag: int | None = 0) -> Commit:
    return Commit(offset=offset, order=offset, timestamp_ms=ts_ms, lag=lag, observed_ms=ts_ms + 7)


def _partition(
    topic: str,
    partition: int,
    status: Status = Status.OK,
    *,
    lag: int | None = 0,
    end: int | None = 100,
    complete: float = 1.0,
    ts_ms: int = T,
    owner: str = "",
    client_id: str = "",
    member_id: str = "",
) -> PartitionStatus:
    return PartitionStatus(
        topic=topic,
        partition=partition,
        owner=owner,
        client_id=client_id,
        status=status,
        start=None if end is None else _commit(end - 90, ts_ms - 540_000),
        end=None if end is None else _commit(end, ts_ms),
        current_lag=lag,
        complete=complete,
        member_id=member_id,
    )


def _group(cluster: str, name: str, status: Status, partitions: Sequence[PartitionStatus]) -> GroupStatus:
    known = [p for p in partitions if p.current_lag is not None]
    return GroupStatus(
        cluster=cluster,
        group=name,
        status=status,
        complete=sum(p.complete == 1.0 for p in partitions) / len(partitions) if partitions else 0.0,
        partitions=Partitions.of(partitions),
        partition_count=len(partitions),
        maxlag=max(known, key=lambda p: p.current_lag or 0) if known else None,
        totallag=sum(p.current_lag or 0 for p in known),
    )


def fixture() -> list[ClusterView]:
    """Two clusters; groups in every status; a placeholder partition; unknown lags; names needing escaping."""
    prod = [
        _group(
            "prod",
            "billing",
            Status.OK,
            [
                _partition(
                    "payments", 0, lag=0, end=2005, owner="/10.0.0.5", client_id="billing-1", member_id="m-1"
                ),
                _partition(
                    "payments", 1, lag=5, end=995, ts_ms=T + 1, owner="/10.0.0.5", client_id="billing-1"
                ),
                # Placeholder: the topic has a third partition the group never committed to.
                _partition("payments", 2, lag=None, end=None, complete=0.0),
            ],
        ),
        _group(
            "prod",
            'fraud "detector"\\v2\nbeta',
            Status.WARN,
            [
                _partition(
                    "payments", 0, Status.WARN, lag=120, end=1885, owner="/10.0.0.6", client_id='fd "one"'
                )
            ],
        ),
        _group("prod", "ghost", Status.NOTFOUND, []),
        _group(
            "prod",
            "search",
            Status.ERR,
            [
                _partition("clicks", 0, Status.STOP, lag=4000, end=5000, complete=0.5, ts_ms=T - 60_010),
                _partition("clicks", 1, Status.REWIND, lag=7, end=7993, complete=1.0),
                _partition("views", 0, Status.STALL, lag=3, end=40, complete=1.0),
            ],
        ),
        _group("prod", "empty", Status.OK, []),
    ]
    staging = [
        # The HEAD of `events` is not known yet: committed offsets are, the lag is not.
        _group("staging", "etl", Status.OK, [_partition("events", 0, lag=None, end=42, complete=0.3)]),
    ]
    # Lag in seconds, aligned with each group's partitions; None where the group never committed.
    prod_lags = {
        "billing": (LagSeconds(0.0, "caught_up"), LagSeconds(12.3456, "interpolated"), None),
        'fraud "detector"\\v2\nbeta': (LagSeconds(None, "pending_exact_read", 1885),),
        "search": (
            LagSeconds(3600.5, "exact"),
            LagSeconds(None, "below_log_start"),
            LagSeconds(1_234_567.8912, "exact"),
        ),
        "empty": (),
    }
    # Retention headroom, aligned like lag in seconds. payments: 7 days; clicks: infinite time, 1 GiB; views:
    # compact-only (no headroom at all); events (staging): log start and settings unknown.
    prod_headroom = {
        "billing": (Headroom(0, 5, 604800.0), Headroom(0, 95, 604787.6544), None),
        'fraud "detector"\\v2\nbeta': (Headroom(115, 0, 0.0),),
        "search": (Headroom(100, 0, None), Headroom(0, 7993, None), None),
        "empty": (),
    }
    return [
        ClusterView(
            name="prod",
            groups=prod,
            topics=[("clicks", [9000, 8000]), ("payments", [2005, 1000, None]), ("views", [43])],
            head_refresh_ms=T + 2_500,
            evaluation_seconds=0.0125,
            lag_seconds=prod_lags,
            headroom=prod_headroom,
            topic_starts={"clicks": [5100, 0], "payments": [2000, 900, None], "views": [0]},
            topic_retention={
                "clicks": TopicRetention(True, False, None, 1_073_741_824),
                "payments": TopicRetention(True, False, 604_800_000, None),
                "views": TopicRetention(False, True, None, None),
            },
        ),
        ClusterView(
            name="staging",
            groups=staging,
            topics=[("events", [None])],
            up=False,
            caught_up=False,
            lag_seconds={"etl": (LagSeconds(None, "head_unknown"),)},
        ),
    ]


def samples(body: bytes) -> dict[Sample, float]:
    """Every sample of the exposition, keyed by name and label set, checked to be unique."""
    found: dict[Sample, float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in found, key
            found[key] = s.value
    return found


def data_samples(body: bytes) -> dict[Sample, float]:
    return {k: v for k, v in samples(body).items() if k[0] not in HEALTH}


def key(name: str, **labels: str | int) -> Sample:
    return name, frozenset((k, str(v)) for k, v in labels.items())


def golden(name: str, result: RenderResult) -> None:
    path = GOLDEN / name
    if UPDATE_GOLDEN:
        path.write_bytes(result.body)
    assert result.body.decode() == path.read_text()


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("metrics_partition.prom", RenderOptions()),
        ("metrics_group.prom", RenderOptions(granularity="group")),
        ("metrics_burrow.prom", RenderOptions(burrow_compatible=True)),
        ("metrics_capped.prom", RenderOptions(max_series=40)),
        ("metrics_kafka_exporter.prom", RenderOptions(kafka_exporter=True)),
    ],
)
def test_golden(name: str, options: RenderOptions) -> None:
    golden(name, render(fixture(), options))


def test_nothing_to_report_still_reports_the_cap() -> None:
    result = render([])
    assert result == RenderResult(body=result.body, series=0, dropped=0)
    assert [line for line in result.body.decode().splitlines() if not line.startswith("#")] == [
        "lagwatch_series_exposed 0",
        "lagwatch_series_dropped 0",
        "lagwatch_series_cap_exceeded 0",
    ]


def test_content_type_is_the_text_format() -> None:
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


def test_group_series() -> None:
    found = samples(render(fixture()).body)
    billing = {"kafka_cluster": "prod", "group": "billing"}
    assert found[key("lagwatch_group_status", **billing)] == 1
    assert found[key("lagwatch_group_total_lag", **billing)] == 5
    assert found[key("lagwatch_group_max_lag", **billing)] == 5
    assert found[key("lagwatch_group_complete_ratio", **billing)] == pytest.approx(2 / 3)
    assert found[key("lagwatch_group_partitions", **billing)] == 3
    search = {"kafka_cluster": "prod", "group": "search"}
    assert found[key("lagwatch_group_status", **search)] == 3
    assert found[key("lagwatch_group_total_lag", **search)] == 4010
    # NOTFOUND groups have no series at all, like Burrow.
    assert not [k for k in found if ("group", "ghost") in k[1]]
    # A group without partitions (its topics were deleted) has no max lag.
    assert key("lagwatch_group_max_lag", kafka_cluster="prod", group="empty") not in found
    assert found[key("lagwatch_group_partitions", kafka_cluster="prod", group="empty")] == 0


def test_state_set_has_every_status_and_exactly_one_set() -> None:
    found = samples(render(fixture()).body)
    states = [k for k in found if k[0] == "lagwatch_group_state"]
    groups = {(dict(k[1])["kafka_cluster"], dict(k[1])["group"]) for k in states}
    assert len(groups) == 5
    for cluster, group in groups:
        values = {
            s: found[key("lagwatch_group_state", kafka_cluster=cluster, group=group, status=s)]
            for s in ("OK", "WARN", "ERR")
        }
        current = Status(int(found[key("lagwatch_group_status", kafka_cluster=cluster, group=group)])).name
        assert values == {s: float(s == current) for s in ("OK", "WARN", "ERR")}
    assert len(states) == 15


def test_partition_series() -> None:
    found = samples(render(fixture()).body)
    p0 = {"kafka_cluster": "prod", "group": "billing", "topic": "payments", "partition": "0"}
    p2 = {**p0, "partition": "2"}
    assert found[key("lagwatch_partition_status", **p0)] == 1
    assert found[key("lagwatch_partition_lag", **p0)] == 0
    assert found[key("lagwatch_partition_committed_offset", **p0)] == 2005
    assert found[key("lagwatch_partition_commit_timestamp_seconds", **p0)] == 1_763_000_000.0
    p1 = {**p0, "partition": "1"}
    assert found[key("lagwatch_partition_commit_timestamp_seconds", **p1)] == 1_763_000_000.001
    # The placeholder: a status, no lag (unknown, never -1), no offset, no owner.
    assert found[key("lagwatch_partition_status", **p2)] == 1
    for name in (
        "lagwatch_partition_lag",
        "lagwatch_partition_committed_offset",
        "lagwatch_partition_owner_info",
    ):
        assert not [k for k in found if k[0] == name and {("partition", "2"), ("topic", "payments")} <= k[1]]
    stop = {"kafka_cluster": "prod", "group": "search", "topic": "clicks", "partition": "0"}
    assert found[key("lagwatch_partition_status", **stop)] == 4
    assert found[key("lagwatch_partition_lag", **stop)] == 4000
    assert found[key("lagwatch_partition_status", **{**stop, "partition": "1"})] == 6
    assert found[key("lagwatch_partition_status", **{**stop, "topic": "views"})] == 5
    etl = {"kafka_cluster": "staging", "group": "etl", "topic": "events", "partition": "0"}
    assert key("lagwatch_partition_lag", **etl) not in found
    assert found[key("lagwatch_partition_committed_offset", **etl)] == 42
    assert all(v >= 0 for k, v in found.items() if k[0].endswith("_lag"))


def test_owner_info_and_escaping_round_trip() -> None:
    found = samples(render(fixture()).body)
    owners = {k: v for k, v in found.items() if k[0] == "lagwatch_partition_owner_info"}
    assert owners == {
        key(
            "lagwatch_partition_owner_info",
            kafka_cluster="prod",
            group="billing",
            topic="payments",
            partition=0,
            client_host="/10.0.0.5",
            client_id="billing-1",
            member_id="m-1",
        ): 1.0,
        key(
            "lagwatch_partition_owner_info",
            kafka_cluster="prod",
            group="billing",
            topic="payments",
            partition=1,
            client_host="/10.0.0.5",
            client_id="billing-1",
            member_id="",
        ): 1.0,
        key(
            "lagwatch_partition_owner_info",
            kafka_cluster="prod",
            group='fraud "detector"\\v2\nbeta',
            topic="payments",
            partition=0,
            client_host="/10.0.0.6",
            client_id='fd "one"',
            member_id="",
        ): 1.0,
    }


def test_escaped_text() -> None:
    body = render(fixture()).body.decode()
    assert 'lagwatch_group_status{kafka_cluster="prod",group="fraud \\"detector\\"\\\\v2\\nbeta"} 2\n' in body


def test_topic_series_skip_unknown_heads() -> None:
    found = samples(render(fixture()).body)
    heads = {
        (dict(k[1])["kafka_cluster"], dict(k[1])["topic"], dict(k[1])["partition"]): v
        for k, v in found.items()
        if k[0] == "lagwatch_topic_partition_end_offset"
    }
    assert heads == {
        ("prod", "clicks", "0"): 9000,
        ("prod", "clicks", "1"): 8000,
        ("prod", "payments", "0"): 2005,
        ("prod", "payments", "1"): 1000,
        ("prod", "views", "0"): 43,
    }


def test_health_series() -> None:
    result = render(fixture())
    found = samples(result.body)
    assert found[key("lagwatch_cluster_up", kafka_cluster="prod")] == 1
    assert found[key("lagwatch_cluster_up", kafka_cluster="staging")] == 0
    assert found[key("lagwatch_offsets_caught_up", kafka_cluster="staging")] == 0
    assert found[key("lagwatch_head_refresh_timestamp_seconds", kafka_cluster="prod")] == 1_763_000_002.5
    assert key("lagwatch_head_refresh_timestamp_seconds", kafka_cluster="staging") not in found
    assert found[key("lagwatch_evaluation_duration_seconds", kafka_cluster="prod")] == 0.0125
    assert found[key("lagwatch_series_exposed")] == result.series == len(data_samples(result.body)) == 118
    assert found[key("lagwatch_series_dropped")] == result.dropped == 0
    assert found[key("lagwatch_series_cap_exceeded")] == 0
    assert not result.capped


BROKERS = ClusterView(
    name="prod",
    groups=[],
    topics=[],
    brokers=[
        BrokerView(1, 0, 0.25, 40, 0.5, {}),
        BrokerView(2, 7, 12.5, 30, 0.75, {"deadline": 11, "error": 1}),
        BrokerView(3, 3, None, 0, 0.0, {"error": 2}),
    ],
)


def test_broker_series_say_which_partitions_are_stale_and_why() -> None:
    text = render([BROKERS]).body.decode()
    assert [line for line in text.splitlines() if "broker=" in line or "_broker_" in line] == [
        "# HELP lagwatch_broker_stale_partitions Partitions the broker leads whose HEAD the last refresh did "
        "not get (no answer within the broker deadline, or an error); they keep their previous HEAD.",
        "# TYPE lagwatch_broker_stale_partitions gauge",
        'lagwatch_broker_stale_partitions{kafka_cluster="prod",broker="1"} 0',
        'lagwatch_broker_stale_partitions{kafka_cluster="prod",broker="2"} 7',
        'lagwatch_broker_stale_partitions{kafka_cluster="prod",broker="3"} 3',
        "# HELP lagwatch_broker_head_age_seconds Seconds since the broker last answered ListOffsets (HEAD "
        "offsets).",
        "# TYPE lagwatch_broker_head_age_seconds gauge",
        'lagwatch_broker_head_age_seconds{kafka_cluster="prod",broker="1"} 0.250',
        'lagwatch_broker_head_age_seconds{kafka_cluster="prod",broker="2"} 12.500',
        "# HELP lagwatch_broker_request_errors_total HEAD refreshes the broker did not answer, by reason: "
        "deadline (no answer in time), error.",
        "# TYPE lagwatch_broker_request_errors_total counter",
        'lagwatch_broker_request_errors_total{kafka_cluster="prod",broker="1",reason="deadline"} 0',
        'lagwatch_broker_request_errors_total{kafka_cluster="prod",broker="1",reason="error"} 0',
        'lagwatch_broker_request_errors_total{kafka_cluster="prod",broker="2",reason="deadline"} 11',
        'lagwatch_broker_request_errors_total{kafka_cluster="prod",broker="2",reason="error"} 1',
        'lagwatch_broker_request_errors_total{kafka_cluster="prod",broker="3",reason="deadline"} 0',
        'lagwatch_broker_request_errors_total{kafka_cluster="prod",broker="3",reason="error"} 2',
        "# HELP lagwatch_broker_request_duration_seconds Latency of the broker's answered ListOffsets "
        "requests.",
        "# TYPE lagwatch_broker_request_duration_seconds summary",
        'lagwatch_broker_request_duration_seconds_sum{kafka_cluster="prod",broker="1"} 0.5',
        'lagwatch_broker_request_duration_seconds_count{kafka_cluster="prod",broker="1"} 40',
        'lagwatch_broker_request_duration_seconds_sum{kafka_cluster="prod",broker="2"} 0.75',
        'lagwatch_broker_request_duration_seconds_count{kafka_cluster="prod",broker="2"} 30',
        'lagwatch_broker_request_duration_seconds_sum{kafka_cluster="prod",broker="3"} 0',
        'lagwatch_broker_request_duration_seconds_count{kafka_cluster="prod",broker="3"} 0',
    ]
    assert render([BROKERS]).series == 0  # health, not data: never capped


def test_granularity_group_emits_no_partition_label() -> None:
    grouped = render(fixture(), RenderOptions(granularity="group"))
    found = data_samples(grouped.body)
    assert not [k for k in found if any(label == "partition" for label, _ in k[1])]
    full = data_samples(render(fixture()).body)
    assert found == {k: v for k, v in full.items() if k[0].startswith("lagwatch_group_")}
    # 8 per group, less the max lag of the two groups without a known lag, plus 8 of lag in seconds: the max
    # of billing and search, and the sources of billing (2), fraud (1), search (2) and etl (1).
    # Five more with retention headroom: lost messages of three groups, the lowest headroom of two.
    assert grouped.series == len(found) == 5 * 8 - 2 + 8 + 5


def test_families_are_contiguous_blocks() -> None:
    body = render(fixture(), RenderOptions(burrow_compatible=True)).body.decode()
    names = [re.split(r"[{ ]", line, maxsplit=1)[0] for line in body.splitlines() if not line.startswith("#")]
    blocks = [name for i, name in enumerate(names) if i == 0 or names[i - 1] != name]
    assert len(blocks) == len(set(blocks))
    typed = re.findall(r"^# TYPE (\S+) gauge$", body, re.MULTILINE)
    assert typed == blocks


def test_cap_keeps_group_series_first_and_whole_groups() -> None:
    # 51 group-level series, then 21 of billing's partitions, 9 of fraud's, 21 of search's, 4 of etl's, then
    # 12 topic series: a cap of 85 admits the partitions of billing and fraud and stops at search, though
    # etl's would fit.
    result = render(fixture(), RenderOptions(max_series=85))
    found = data_samples(result.body)
    assert result.series == len(found) == 81
    assert result.dropped == 118 - 81
    assert result.capped
    assert len([k for k in found if k[0].startswith("lagwatch_group_")]) == 51
    groups_with_partitions = {dict(k[1])["group"] for k in found if k[0].startswith("lagwatch_partition_")}
    assert groups_with_partitions == {"billing", 'fraud "detector"\\v2\nbeta'}
    assert not [k for k in found if k[0] == "lagwatch_topic_partition_end_offset"]
    health = samples(result.body)
    assert health[key("lagwatch_series_dropped")] == 37
    assert health[key("lagwatch_series_cap_exceeded")] == 1


def test_cap_below_one_group_drops_everything_but_health() -> None:
    result = render(fixture(), RenderOptions(max_series=10))
    assert result.series == 0
    assert result.dropped == 118
    assert {k[0] for k in samples(result.body)} == HEALTH


# --- lag in seconds ---------------------------------------------------------------------------------------


def test_lag_seconds_partition_series() -> None:
    found = samples(render(fixture()).body)
    billing = {"kafka_cluster": "prod", "group": "billing", "topic": "payments"}
    search = {"kafka_cluster": "prod", "group": "search"}
    fraud = {"kafka_cluster": "prod", "group": 'fraud "detector"\\v2\nbeta', "topic": "payments"}
    etl = {"kafka_cluster": "staging", "group": "etl", "topic": "events", "partition": "0"}
    seconds = {k: v for k, v in found.items() if k[0] == "lagwatch_partition_lag_seconds"}
    assert seconds == {
        key("lagwatch_partition_lag_seconds", **billing, partition=0): 0.0,
        key("lagwatch_partition_lag_seconds", **billing, partition=1): 12.346,
        key("lagwatch_partition_lag_seconds", **search, topic="clicks", partition=0): 3600.5,
        key("lagwatch_partition_lag_seconds", **search, topic="views", partition=0): 1_234_567.891,
    }
    sources = {k: v for k, v in found.items() if k[0] == "lagwatch_partition_lag_seconds_source"}
    # The placeholder partition 2 of billing has no source: the group never committed to it.
    assert sources == {
        key("lagwatch_partition_lag_seconds_source", **billing, partition=0): 1,
        key("lagwatch_partition_lag_seconds_source", **billing, partition=1): 2,
        key("lagwatch_partition_lag_seconds_source", **fraud, partition=0): 12,
        key("lagwatch_partition_lag_seconds_source", **search, topic="clicks", partition=0): 3,
        key("lagwatch_partition_lag_seconds_source", **search, topic="clicks", partition=1): 13,
        key("lagwatch_partition_lag_seconds_source", **search, topic="views", partition=0): 3,
        key("lagwatch_partition_lag_seconds_source", **etl): 10,
    }


def test_lag_seconds_are_durations_to_the_millisecond() -> None:
    body = render(fixture()).body.decode()
    lines = [line for line in body.splitlines() if line.startswith("lagwatch_partition_lag_seconds{")]
    assert [line.rsplit(" ", 1)[1] for line in lines] == ["0", "12.346", "3600.5", "1.234567891e+06"]


def test_lag_seconds_group_series() -> None:
    found = samples(render(fixture()).body)
    maxima = {dict(k[1])["group"]: v for k, v in found.items() if k[0] == "lagwatch_group_max_lag_seconds"}
    # fraud and etl have no figure at all; search's max ignores its partition below the log start.
    assert maxima == {"billing": 12.346, "search": 1_234_567.891}
    counts = {
        (dict(k[1])["group"], dict(k[1])["source"]): v
        for k, v in found.items()
        if k[0] == "lagwatch_group_lag_seconds_partitions"
    }
    assert counts == {
        ("billing", "caught_up"): 1,
        ("billing", "interpolated"): 1,
        ('fraud "detector"\\v2\nbeta', "pending_exact_read"): 1,
        ("search", "exact"): 2,
        ("search", "below_log_start"): 1,
        ("etl", "head_unknown"): 1,
    }
    body = render(fixture()).body.decode()
    # Sources in code order within a group.
    assert body.index('group="search",source="exact"') < body.index('group="search",source="below_log_start"')


def test_without_lag_seconds_no_family_appears() -> None:
    views = [ClusterView(v.name, v.groups, v.topics, v.up, v.caught_up) for v in fixture()]
    body = render(views).body
    assert b"lag_seconds" not in body
    assert render(views).series == 74


# --- Burrow compatibility ---------------------------------------------------------------------------------


# --- kafka_exporter's names ------------------------------------------------------------------------------


def test_kafka_exporter_names_have_no_minus_one_and_never_a_negative() -> None:
    found = data_samples(render(fixture(), RenderOptions(kafka_exporter=True)).body)
    kafka = {k: v for k, v in found.items() if k[0].startswith("kafka_")}
    assert all(v >= 0 for v in kafka.values())
    # billing never committed to payments/2: kafka_exporter writes -1 for its offset and lag; nothing here.
    placeholder = {"consumergroup": "billing", "kafka_cluster": "prod", "topic": "payments", "partition": "2"}
    assert key("kafka_consumergroup_current_offset", **placeholder) not in kafka
    assert key("kafka_consumergroup_lag", **placeholder) not in kafka
    # etl's HEAD is unknown: its offset is there, its lag (and its topic's lag sum) is not.
    etl = {"consumergroup": "etl", "kafka_cluster": "staging", "topic": "events"}
    assert kafka[key("kafka_consumergroup_current_offset", **etl, partition=0)] == 42
    assert key("kafka_consumergroup_lag", **etl, partition=0) not in kafka
    assert key("kafka_consumergroup_lag_sum", **etl) not in kafka
    # The sums cover the committed partitions only (kafka_exporter adds each uncommitted partition's -1).
    billing = {"consumergroup": "billing", "kafka_cluster": "prod", "topic": "payments"}
    assert kafka[key("kafka_consumergroup_current_offset_sum", **billing)] == 2005 + 995
    assert kafka[key("kafka_consumergroup_lag_sum", **billing)] == 0 + 5
    assert kafka[key("kafka_topic_partitions", kafka_cluster="prod", topic="payments")] == 3
    # The same figures as lagwatch's own names.
    assert (
        kafka[key("kafka_consumergroup_lag", **billing, partition=1)]
        == found[
            key(
                "lagwatch_partition_lag", kafka_cluster="prod", group="billing", topic="payments", partition=1
            )
        ]
    )


def test_kafka_exporter_names_only_when_asked_and_capped_like_the_others() -> None:
    plain = render(fixture())
    assert b"kafka_consumergroup" not in plain.body
    assert b"kafka_topic" not in plain.body
    grouped = data_samples(render(fixture(), RenderOptions(kafka_exporter=True, granularity="group")).body)
    assert not [k for k in grouped if any(label == "partition" for label, _ in k[1])]
    assert (
        key("kafka_consumergroup_lag_sum", consumergroup="search", kafka_cluster="prod", topic="clicks")
        in grouped
    )
    capped = render(fixture(), RenderOptions(kafka_exporter=True, max_series=70))
    assert capped.dropped > 0
    kept = data_samples(capped.body)
    assert capped.series == len(kept) <= 70


def burrow_vector() -> list[ClusterView]:
    """core/internal/httpserver/prometheus_test.go of Burrow v1.9.5 (Apache-2.0)."""

    def part(topic: str, partition: int, lag: int, end: int, complete: float) -> PartitionStatus:
        return PartitionStatus(
            topic=topic,
            partition=partition,
            owner="",
            client_id="",
            status=Status.OK,
            start=None,
            end=Commit(offset=end, order=0, timestamp_ms=0, lag=None),
            current_lag=lag,
            complete=complete,
        )

    testgroup = GroupStatus(
        cluster="testcluster",
        group="testgroup",
        status=Status.OK,
        complete=1.0,
        partitions=Partitions.of(
            (
                part("testtopic", 0, 100, 22663, 1.0),
                part("testtopic", 1, 10, 2488, 1.0),
                part("testtopic1", 0, 50, 99888, 1.0),
                part("incomplete", 0, 0, 5335, 0.2),
                part("incomplete", 1, 10, 99888, 1.0),
            )
        ),
        partition_count=2134,
        maxlag=None,
        totallag=2345,
    )
    notfound = GroupStatus("testcluster", "testgroup2", Status.NOTFOUND, 1.0, NO_PARTITIONS, 0, None, 0)
    return [
        ClusterView(
            name="testcluster",
            groups=[testgroup, notfound],
            topics=[("testtopic", [6556, 5566]), ("testtopic1", [54])],
        )
    ]


def test_burrow_test_vector() -> None:
    result = render(burrow_vector(), RenderOptions(burrow_compatible=True))
    found = samples(result.body)
    group = {"cluster": "testcluster", "consumer_group": "testgroup"}
    assert found[key("burrow_kafka_consumer_status", **group)] == 1
    assert found[key("burrow_kafka_consumer_lag_total", **group)] == 2345
    lag = {
        (dict(k[1])["topic"], dict(k[1])["partition"]): v
        for k, v in found.items()
        if k[0] == "burrow_kafka_consumer_partition_lag"
    }
    assert lag == {
        ("testtopic", "0"): 100,
        ("testtopic", "1"): 10,
        ("testtopic1", "0"): 50,
        ("incomplete", "0"): 0,
        ("incomplete", "1"): 10,
    }
    current = {
        (dict(k[1])["topic"], dict(k[1])["partition"]): v
        for k, v in found.items()
        if k[0] == "burrow_kafka_consumer_current_offset"
    }
    assert current == {
        ("testtopic", "0"): 22663,
        ("testtopic", "1"): 2488,
        ("testtopic1", "0"): 99888,
        ("incomplete", "1"): 99888,
    }
    status = {
        (dict(k[1])["topic"], dict(k[1])["partition"])
        for k in found
        if k[0] == "burrow_kafka_topic_partition_status"
    }
    assert status == set(current)
    name = "burrow_kafka_topic_partition_offset"
    offsets = {k: v for k, v in found.items() if k[0] == name}
    assert offsets == {
        key(name, cluster="testcluster", topic="testtopic", partition=0): 6556,
        key(name, cluster="testcluster", topic="testtopic", partition=1): 5566,
        key(name, cluster="testcluster", topic="testtopic1", partition=0): 54,
    }
    assert b"testgroup2" not in result.body
    for k in found:
        if k[0].startswith("burrow_"):
            assert {label for label, _ in k[1]} <= {"cluster", "consumer_group", "topic", "partition"}


def test_burrow_families_only_when_asked() -> None:
    assert b"burrow_" not in render(burrow_vector()).body


# --- promtool ---------------------------------------------------------------------------------------------

PROMTOOL = shutil.which("promtool")
NO_PROMTOOL = "promtool not on PATH (apt-get install prometheus); CI has it"


def promtool(body: bytes) -> subprocess.CompletedProcess[bytes]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
    )


@pytest.mark.skipif(PROMTOOL is None, reason=NO_PROMTOOL)
@pytest.mark.parametrize(
    "options",
    [
        RenderOptions(),
        RenderOptions(granularity="group"),
        RenderOptions(max_series=71),
    ],
)
def test_promtool_accepts_the_output(options: RenderOptions) -> None:
    checked = promtool(render(fixture(), options).body)
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, b"", b"")


@pytest.mark.skipif(PROMTOOL is None, reason=NO_PROMTOOL)
def test_promtool_accepts_the_broker_series() -> None:
    checked = promtool(render([BROKERS]).body)
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, b"", b"")


@pytest.mark.skipif(PROMTOOL is None, reason=NO_PROMTOOL)
def test_promtool_only_objects_to_burrows_gauge_named_total() -> None:
    # Burrow's own name for a gauge, kept for its dashboards: the lint finding is expected (docs/metrics.md).
    checked = promtool(render(fixture(), RenderOptions(burrow_compatible=True)).body)
    assert checked.returncode == 3
    findings = (checked.stdout + checked.stderr).decode().strip()
    assert findings == 'burrow_kafka_consumer_lag_total non-counter metrics should not have "_total" suffix'


@pytest.mark.skipif(PROMTOOL is None, reason=NO_PROMTOOL)
def test_promtool_only_objects_to_kafka_exporters_gauges_named_sum() -> None:
    # kafka_exporter's names for two gauges, kept for its dashboards: the findings are expected.
    checked = promtool(render(fixture(), RenderOptions(kafka_exporter=True)).body)
    assert checked.returncode == 3
    findings = (checked.stdout + checked.stderr).decode().strip().splitlines()
    assert findings == [
        f'kafka_consumergroup_{name}_sum non-histogram and non-summary metrics should not have "_sum" suffix'
        for name in ("current_offset", "lag")
    ]


# --- properties -------------------------------------------------------------------------------------------

names = st.text(alphabet=st.sampled_from('ab-._"\\\n é'), min_size=1, max_size=6)
commits = st.builds(_commit, st.integers(0, 10**12), st.integers(0, 2 * 10**12))


@st.composite
def partitions(draw: st.DrawFn, topic: str, partition: int) -> PartitionStatus:
    end = draw(st.none() | commits)
    return PartitionStatus(
        topic=topic,
        partition=partition,
        owner=draw(st.sampled_from(["", "/10.0.0.1", 'h"o\\st'])),
        client_id=draw(st.sampled_from(["", "c-1", "c\n2"])),
        status=draw(st.sampled_from([Status.OK, Status.WARN, Status.STOP, Status.STALL, Status.REWIND])),
        start=end,
        end=end,
        current_lag=draw(st.none() | st.integers(0, 10**15)),
        complete=draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])),
        member_id=draw(st.sampled_from(["", "m-1"])),
    )


@st.composite
def groups(draw: st.DrawFn, cluster: str) -> GroupStatus:
    topic = draw(names)
    parts = [draw(partitions(topic, i)) for i in range(draw(st.integers(0, 4)))]
    status = draw(st.sampled_from([Status.NOTFOUND, Status.OK, Status.WARN, Status.ERR]))
    return _group(cluster, draw(names), status, parts)


@st.composite
def lag_seconds(draw: st.DrawFn) -> LagSeconds:
    source = draw(st.sampled_from(sorted(SOURCE_CODES)))
    seconds = draw(st.floats(0, 10**9)) if source in METHODS else None
    return LagSeconds(seconds, source)


headrooms = st.builds(
    Headroom, st.integers(0, 10**12), st.integers(0, 10**12), st.none() | st.floats(0, 10**9)
)
retentions = st.builds(
    TopicRetention,
    st.booleans(),
    st.booleans(),
    st.none() | st.integers(0, 10**12),
    st.none() | st.integers(0, 10**12),
)


@st.composite
def clusters(draw: st.DrawFn) -> list[ClusterView]:
    views = []
    for name in draw(st.lists(names, min_size=1, max_size=2, unique=True)):
        found = draw(st.lists(groups(name), max_size=4, unique_by=lambda g: g.group))
        heads = draw(
            st.lists(st.tuples(names, st.lists(st.none() | st.integers(0, 10**12), max_size=3)), max_size=3)
        )
        # Some groups without lag in seconds, the others with one entry per partition (None: no commit).
        lags = {
            g.group: tuple(draw(st.none() | lag_seconds()) for _ in g.partitions)
            for g in found
            if draw(st.booleans())
        }
        headroom = {
            g.group: tuple(draw(st.none() | headrooms) for _ in g.partitions)
            for g in found
            if draw(st.booleans())
        }
        topics = sorted(dict(heads).items())
        starts = {topic: [draw(st.none() | st.integers(0, 10**12)) for _ in h] for topic, h in topics}
        retention = {topic: r for topic, _ in topics if (r := draw(st.none() | retentions)) is not None}
        views.append(
            ClusterView(
                name=name,
                groups=found,
                topics=topics,
                lag_seconds=lags,
                headroom=headroom,
                topic_starts=starts,
                topic_retention=retention,
            )
        )
    return views


@settings(max_examples=150, deadline=None)
@given(clusters(), st.booleans(), st.booleans(), st.sampled_from(["partition", "group"]), st.integers(0, 60))
def test_any_input_parses_and_the_cap_accounts_for_every_series(
    views: list[ClusterView], burrow: bool, kafka: bool, granularity: Granularity, cap: int
) -> None:
    options = RenderOptions(granularity=granularity, burrow_compatible=burrow, kafka_exporter=kafka)
    full = render(views, options)
    everything = data_samples(full.body)
    assert full.series == len(everything)
    assert full.dropped == 0
    capped = render(views, replace(options, max_series=cap))
    kept = data_samples(capped.body)
    assert capped.series == len(kept) <= cap
    assert capped.series + capped.dropped == full.series
    assert kept.items() <= everything.items()
    assert all(v >= 0 for v in everything.values())


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_format_float_is_gos_except_for_integers(value: float) -> None:
    text = format_float(value)
    if math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
        assert text == str(int(value))
    else:
        # client_python pads exponents to three digits from e+10 up; Go (and lagwatch) use two.
        assert text == re.sub(r"e\+0(\d\d)$", r"e+\1", floatToGoString(value))  # type: ignore[no-untyped-call]
    assert float(text) == value or math.isnan(value)


# Ties of the third decimal that a binary float holds exactly (k/16, k/1024), the edges of the short path
# (half a millisecond, 999,999.5) and the neighbours of each.
_SECONDS_EDGES = [
    edge
    for exact in (
        *(k / 16 for k in range(0, 64)),
        *(k / 1024 + n for k in range(0, 1024, 37) for n in (0, 1, 7, 999, 65_536)),
        0.0005,
        0.0015,
        999_999.4995,
        999_999.5,
        999_999.9995,
        1e6,
        -0.0,
    )
    for edge in (math.nextafter(exact, -math.inf), exact, math.nextafter(exact, math.inf))
]


@pytest.mark.parametrize("value", _SECONDS_EDGES)
def test_seconds_at_ties_and_edges_are_format_floats_to_the_millisecond(value: float) -> None:
    expected = "0" if value == 0 else format_float(round(value, 3))
    assert seconds(value) == expected


@given(st.floats(allow_nan=True, allow_infinity=True) | st.floats(0, 1e7) | st.floats(0, 10))
def test_seconds_are_format_floats_to_the_millisecond(value: float) -> None:
    expected = "0" if value == 0 else format_float(round(value, 3))
    assert seconds(value) == expected
