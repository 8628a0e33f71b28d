"""Burrow v3 JSON bodies: exact JSON for burrow-semantics.md §5 examples and the §10.2 fixture shapes."""

from __future__ import annotations

import json
import logging
import struct
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from exporter.core.model import (
    NO_PARTITIONS,
    Commit,
    GroupSnapshot,
    GroupStatus,
    Partitions,
    PartitionSnapshot,
    PartitionStatus,
    Status,
)
from exporter.core.retention import Headroom
from exporter.core.verdicts import evaluate_group
from exporter.exposition import burrow_json
from exporter.exposition.burrow_json import ClusterModule, SASLProfile, TLSProfile, _float32

HOST = "burrow-host"
T0 = 1_700_000_000_000
BROKER_OFFSET = 4321


def dumps(body: object) -> str:
    """As Go's encoding/json writes it: compact, keys in struct order."""
    return json.dumps(body, separators=(",", ":"))


def commit(i: int) -> Commit:
    """Commit i of Burrow's storage fixture (core/internal/storage/fixtures.go)."""
    offset = 1000 + 100 * i
    return Commit(
        offset=offset,
        order=10 + i,
        timestamp_ms=T0 + 10_000 * i,
        lag=BROKER_OFFSET - offset,
        observed_ms=T0 + 5,
    )


def fixture_partition(commits: int, status: Status, complete: float) -> PartitionStatus:
    return PartitionStatus(
        topic="testtopic",
        partition=0,
        owner="",
        client_id="",
        status=status,
        start=commit(0),
        end=commit(commits - 1),
        current_lag=BROKER_OFFSET - commit(commits - 1).offset,
        complete=complete,
    )


def healthy_group() -> GroupStatus:
    p = fixture_partition(10, Status.OK, 1.0)
    return GroupStatus("testcluster", "testgroup", Status.OK, 1.0, Partitions.of((p,)), 1, p, 2421)


def stopped_group() -> GroupStatus:
    p = fixture_partition(5, Status.STOP, 0.5)
    return GroupStatus("testcluster", "testgroup2", Status.ERR, 0.0, Partitions.of((p,)), 1, p, 2921)


TESTGROUP_PARTITION = (
    '{"topic":"testtopic","partition":0,"owner":"","client_id":"","status":"OK",'
    '"start":{"offset":1000,"timestamp":1700000000000,"observedAt":1700000000005,"lag":3321},'
    '"end":{"offset":1900,"timestamp":1700000090000,"observedAt":1700000000005,"lag":2421},'
    '"current_lag":2421,"complete":1}'
)
TESTGROUP2_PARTITION = (
    '{"topic":"testtopic","partition":0,"owner":"","client_id":"","status":"STOP",'
    '"start":{"offset":1000,"timestamp":1700000000000,"observedAt":1700000000005,"lag":3321},'
    '"end":{"offset":1400,"timestamp":1700000040000,"observedAt":1700000000005,"lag":2921},'
    '"current_lag":2921,"complete":0.5}'
)


def test_status_of_a_healthy_group_lists_no_partition_but_keeps_maxlag() -> None:
    url = "/v3/kafka/testcluster/consumer/testgroup/status"
    assert dumps(burrow_json.consumer_status(healthy_group(), url=url, host=HOST)) == (
        '{"error":false,"message":"consumer status returned","status":{"cluster":"testcluster",'
        '"group":"testgroup","status":"OK","complete":1,"partitions":[],"partition_count":1,'
        f'"maxlag":{TESTGROUP_PARTITION},"totallag":2421}},'
        '"request":{"url":"/v3/kafka/testcluster/consumer/testgroup/status","host":"burrow-host"}}'
    )


def test_lag_of_a_healthy_group_lists_every_partition() -> None:
    url = "/v3/kafka/testcluster/consumer/testgroup/lag"
    assert dumps(burrow_json.consumer_lag(healthy_group(), url=url, host=HOST)) == (
        '{"error":false,"message":"consumer status returned","status":{"cluster":"testcluster",'
        f'"group":"testgroup","status":"OK","complete":1,"partitions":[{TESTGROUP_PARTITION}],'
        f'"partition_count":1,"maxlag":{TESTGROUP_PARTITION},"totallag":2421}},'
        '"request":{"url":"/v3/kafka/testcluster/consumer/testgroup/lag","host":"burrow-host"}}'
    )


def test_status_of_a_stopped_group() -> None:
    url = "/v3/kafka/testcluster/consumer/testgroup2/status"
    assert dumps(burrow_json.consumer_status(stopped_group(), url=url, host=HOST)) == (
        '{"error":false,"message":"consumer status returned","status":{"cluster":"testcluster",'
        f'"group":"testgroup2","status":"ERR","complete":0,"partitions":[{TESTGROUP2_PARTITION}],'
        f'"partition_count":1,"maxlag":{TESTGROUP2_PARTITION},"totallag":2921}},'
        '"request":{"url":"/v3/kafka/testcluster/consumer/testgroup2/status","host":"burrow-host"}}'
    )


def test_status_example_of_section_5_1() -> None:
    stop = PartitionStatus(
        topic="t",
        partition=0,
        owner="/10.0.0.5",
        client_id="consumer-1",
        status=Status.STOP,
        start=Commit(offset=1000, order=1, timestamp_ms=T0, lag=3321, observed_ms=T0 + 3),
        end=Commit(offset=1400, order=5, timestamp_ms=T0 + 40_000, lag=None, observed_ms=T0 + 40_002),
        current_lag=2921,
        complete=0.5,
    )
    ok = PartitionStatus(
        topic="t",
        partition=1,
        owner="/10.0.0.5",
        client_id="consumer-1",
        status=Status.OK,
        start=None,
        end=None,
        current_lag=None,
        complete=0.0,
    )
    status = GroupStatus("c1", "g1", Status.ERR, 0.5, Partitions.of((stop, ok)), 2, stop, 2921)
    body = burrow_json.consumer_status(status, url="/v3/kafka/c1/consumer/g1/status", host=HOST)
    stop_json = (
        '{"topic":"t","partition":0,"owner":"/10.0.0.5","client_id":"consumer-1","status":"STOP",'
        '"start":{"offset":1000,"timestamp":1700000000000,"observedAt":1700000000003,"lag":3321},'
        '"end":{"offset":1400,"timestamp":1700000040000,"observedAt":1700000040002,"lag":null},'
        '"current_lag":2921,"complete":0.5}'
    )
    assert dumps(body) == (
        '{"error":false,"message":"consumer status returned",'
        f'"status":{{"cluster":"c1","group":"g1","status":"ERR","complete":0.5,"partitions":[{stop_json}],'
        f'"partition_count":2,"maxlag":{stop_json},"totallag":2921}},'
        '"request":{"url":"/v3/kafka/c1/consumer/g1/status","host":"burrow-host"}}'
    )
    # /lag shows the OK partition too; its unknown lag is Burrow's 0, its missing window null.
    lag = burrow_json.consumer_lag(status, url="/v3/kafka/c1/consumer/g1/lag", host=HOST)
    assert lag["status"]["partitions"][1] == {
        "topic": "t",
        "partition": 1,
        "owner": "/10.0.0.5",
        "client_id": "consumer-1",
        "status": "OK",
        "start": None,
        "end": None,
        "current_lag": 0,
        "complete": 0,
    }


def test_retention_headroom_is_an_extra_key_and_changes_nothing_else() -> None:
    stop = PartitionStatus(
        topic="t",
        partition=0,
        owner="/10.0.0.5",
        client_id="consumer-1",
        status=Status.STOP,
        start=Commit(1000, 0, 1_700_000_000_000, 3321, 1_700_000_000_003),
        end=Commit(1400, 1, 1_700_000_040_000, None, 1_700_000_040_002),
        current_lag=2921,
        complete=0.5,
    )
    ok = PartitionStatus("t", 1, "", "", Status.OK, None, None, None, 0.0)
    status = GroupStatus("c1", "g1", Status.ERR, 0.5, Partitions.of((stop, ok)), 2, stop, 2921)
    url = "/v3/kafka/c1/consumer/g1/lag"
    plain = burrow_json.consumer_lag(status, url=url, host=HOST)
    headroom = {("t", 0): Headroom(lost=0, margin=400, seconds=3600.12345)}
    with_headroom = burrow_json.consumer_lag(status, url=url, host=HOST, headroom=headroom)
    extra = {"lost_messages": 0, "margin": 400, "headroom_seconds": 3600.123}
    # The golden body, plus one key on the partition that has a headroom (in the list and as maxlag).
    expected = json.loads(dumps(plain))
    expected["status"]["partitions"][0]["retention"] = extra
    expected["status"]["maxlag"]["retention"] = extra
    assert json.loads(dumps(with_headroom)) == expected
    lost = {("t", 0): Headroom(lost=25, margin=0, seconds=None)}
    body = burrow_json.consumer_status(status, url=url, host=HOST, headroom=lost)
    assert body["status"]["partitions"][0]["retention"] == {
        "lost_messages": 25,
        "margin": 0,
        "headroom_seconds": None,
    }


def test_status_of_an_unknown_group() -> None:
    notfound = GroupStatus("testcluster", "nobody", Status.NOTFOUND, 1.0, NO_PARTITIONS, 0, None, 0)
    body = burrow_json.consumer_status(
        notfound, url="/v3/kafka/testcluster/consumer/nobody/status", host=HOST
    )
    assert dumps(body["status"]) == (
        '{"cluster":"testcluster","group":"nobody","status":"NOTFOUND","complete":1,"partitions":[],'
        '"partition_count":0,"maxlag":null,"totallag":0}'
    )
    assert body["error"] is False


def _empty(status: Status) -> GroupStatus:
    return GroupStatus("c", "g", status, 1.0, NO_PARTITIONS, 0, None, 0)


def test_status_names_are_burrows() -> None:
    names = [
        burrow_json.consumer_lag(
            GroupStatus("c", "g", status, 1.0, NO_PARTITIONS, 0, None, 0), url="/", host=HOST
        )["status"]["status"]
        for status in Status
    ]
    assert names == ["NOTFOUND", "OK", "WARN", "ERR", "STOP", "STALL", "REWIND"]


def test_consumer_detail() -> None:
    first = Commit(offset=10, order=1, timestamp_ms=T0, lag=None, observed_ms=T0 + 1)
    second = Commit(offset=20, order=2, timestamp_ms=T0 + 60_000, lag=4, observed_ms=T0 + 60_001)
    snapshot = GroupSnapshot(
        cluster="c1",
        group="g1",
        partitions=(
            PartitionSnapshot.of(
                "orders", 0, (None, None, first, second), (24,), 4, owner="/10.0.0.5", client_id="c-1"
            ),
            # orders/1 is missing from the snapshot; orders/2 is a placeholder without a window.
            PartitionSnapshot.of("orders", 2, (), (7,), None),
            # Owned but never committed: a window of Nones, and no lag to report.
            PartitionSnapshot.of("refunds", 0, (None, None, None, None), (), None, owner="/10.0.0.6"),
        ),
        last_commit_ms=T0 + 60_000,
    )
    body = burrow_json.consumer_detail(snapshot, url="/v3/kafka/c1/consumer/g1", host=HOST)
    placeholder = '{"offsets":[],"owner":"","client_id":"","current-lag":0}'
    assert dumps(body) == (
        '{"error":false,"message":"consumer detail returned","topics":{"orders":['
        '{"offsets":[null,null,{"offset":10,"timestamp":1700000000000,"observedAt":1700000000001,"lag":null},'
        '{"offset":20,"timestamp":1700000060000,"observedAt":1700000060001,"lag":4}],'
        f'"owner":"/10.0.0.5","client_id":"c-1","current-lag":4}},{placeholder},{placeholder}],'
        '"refunds":[{"offsets":[null,null,null,null],"owner":"/10.0.0.6","client_id":"","current-lag":0}]},'
        '"request":{"url":"/v3/kafka/c1/consumer/g1","host":"burrow-host"}}'
    )


def test_consumer_detail_of_a_group_without_topics() -> None:
    body = burrow_json.consumer_detail(GroupSnapshot("c1", "g1", (), 0), url="/u", host=HOST)
    assert body["topics"] == {}


def test_lists_are_sorted() -> None:
    assert burrow_json.cluster_list(["prod", "local"], url="/v3/kafka", host=HOST) == {
        "error": False,
        "message": "cluster list returned",
        "clusters": ["local", "prod"],
        "request": {"url": "/v3/kafka", "host": HOST},
    }
    assert burrow_json.topic_list(["b", "a"], url="/v3/kafka/c/topic", host=HOST) == {
        "error": False,
        "message": "topic list returned",
        "topics": ["a", "b"],
        "request": {"url": "/v3/kafka/c/topic", "host": HOST},
    }
    assert burrow_json.consumer_list(["g2", "g1"], url="/v3/kafka/c/consumer", host=HOST) == {
        "error": False,
        "message": "consumer list returned",
        "consumers": ["g1", "g2"],
        "request": {"url": "/v3/kafka/c/consumer", "host": HOST},
    }
    assert burrow_json.topic_consumers(["g2", "g1"], url="/v3/kafka/c/topic/t/consumers", host=HOST) == {
        "error": False,
        "message": "consumers of topic returned",
        "consumers": ["g1", "g2"],
        "request": {"url": "/v3/kafka/c/topic/t/consumers", "host": HOST},
    }


def test_topic_offsets_keep_partition_indexes() -> None:
    body = burrow_json.topic_offsets([6556, None, 54], url="/v3/kafka/c/topic/t", host=HOST)
    assert dumps(body) == (
        '{"error":false,"message":"topic offsets returned","offsets":[6556,null,54],'
        '"request":{"url":"/v3/kafka/c/topic/t","host":"burrow-host"}}'
    )


def test_cluster_detail() -> None:
    module = ClusterModule(
        servers=["k1:9092", "k2:9092"],
        client_id="lagwatch",
        topic_refresh=60.0,
        offset_refresh=2.5,
        client_profile="prod",
        tls=TLSProfile(name="prod", ca_file="/etc/ca.pem"),
        sasl=SASLProfile(name="prod", username="monitor"),
    )
    assert dumps(burrow_json.cluster_detail(module, url="/v3/kafka/prod", host=HOST)) == (
        '{"error":false,"message":"cluster module detail returned","module":{"class-name":"kafka",'
        '"servers":["k1:9092","k2:9092"],"client-profile":{"name":"prod","client-id":"lagwatch",'
        '"kafka-version":"","tls":{"name":"prod","noverify":false,"certfile":"","keyfile":"",'
        '"cafile":"/etc/ca.pem"},"sasl":{"name":"prod","handshake-first":true,"username":"monitor"}},'
        '"topic-refresh":60,"offset-refresh":2.5},"request":{"url":"/v3/kafka/prod","host":"burrow-host"}}'
    )
    plain = burrow_json.cluster_detail(
        ClusterModule(servers=["k:9092"], client_id="x", topic_refresh=60, offset_refresh=10),
        url="/",
        host=HOST,
    )
    assert plain["module"]["client-profile"]["tls"] is None
    assert plain["module"]["client-profile"]["sasl"] is None
    assert plain["module"]["offset-refresh"] == 10


def test_error_bodies() -> None:
    assert dumps(burrow_json.error(burrow_json.CLUSTER_NOT_FOUND, url="/v3/kafka/x/topic", host=HOST)) == (
        '{"error":true,"message":"cluster not found",'
        '"request":{"url":"/v3/kafka/x/topic","host":"burrow-host"}}'
    )
    assert dumps(burrow_json.not_found()) == '{"error":true,"message":"invalid request type","result":{}}'
    assert dumps(burrow_json.group_removed(url="/v3/kafka/c/consumer/g", host=HOST)) == (
        '{"error":false,"message":"consumer group removed",'
        '"request":{"url":"/v3/kafka/c/consumer/g","host":"burrow-host"}}'
    )
    assert [
        burrow_json.CLUSTER_MODULE_NOT_FOUND,
        burrow_json.CLUSTER_OR_TOPIC_NOT_FOUND,
        burrow_json.CLUSTER_OR_CONSUMER_NOT_FOUND,
    ] == ["cluster module not found", "cluster or topic not found", "cluster or consumer not found"]


def test_complete_is_written_like_go_float32() -> None:
    # Values printed by Go's encoding/json for these float32s.
    cases = {1.0: "1", 0.0: "0", 0.5: "0.5", 0.1: "0.1", 0.2: "0.2", 1 / 3: "0.33333334", 2 / 3: "0.6666667"}
    cases[1 / 7] = "0.14285715"
    assert {value: json.dumps(_float32(value)) for value in cases} == cases


def f32(value: float) -> float:
    result: float = struct.unpack("f", struct.pack("f", value))[0]
    return result


@given(st.integers(1, 100_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_complete_ratios_are_shortest_float32_text(fraction: tuple[int, int]) -> None:
    value = fraction[0] / fraction[1]
    text = json.dumps(_float32(value))
    assert f32(float(text)) == f32(value)
    if f32(value).is_integer():
        assert text in ("0", "1")
    else:
        digits = len(text.lstrip("0.").replace(".", "").split("e")[0])
        assert all(f32(float(f"{f32(value):.{d}g}")) != f32(value) for d in range(1, digits))


def _evaluated(group: str, commits: int) -> GroupStatus:
    window = (None,) * (10 - commits) + tuple(commit(i) for i in range(commits))
    partition = PartitionSnapshot.of(
        "testtopic", 0, window, (BROKER_OFFSET,), BROKER_OFFSET - commit(commits - 1).offset
    )
    snapshot = GroupSnapshot("testcluster", group, (partition,), commit(commits - 1).timestamp_ms)
    return evaluate_group(snapshot, (T0 + 100_000) / 1000)


def _without_reasons(status: GroupStatus) -> GroupStatus:
    maxlag = None if status.maxlag is None else status.maxlag._replace(reason=None)
    partitions = Partitions.of(p._replace(reason=None) for p in status.partitions)
    return replace(status, partitions=partitions, maxlag=maxlag, reason=None)


def test_the_fixture_statuses_are_what_the_evaluator_computes() -> None:
    assert _without_reasons(_evaluated("testgroup", 10)) == healthy_group()
    assert _without_reasons(_evaluated("testgroup2", 5)) == stopped_group()


def test_evaluated_bodies_differ_from_burrows_only_by_the_partitions_reason() -> None:
    url = "/v3/kafka/testcluster/consumer/testgroup2/lag"
    ours = burrow_json.consumer_lag(_evaluated("testgroup2", 5), url=url, host=HOST)
    burrows = burrow_json.consumer_lag(stopped_group(), url=url, host=HOST)
    reason = {
        "rule": "stopped",
        "figures": {"last_commit_ms": T0 + 40_000, "span_s": 40, "offset": 1400, "head": BROKER_OFFSET},
        "text": "STOP: no commit since 22:14:00 UTC, longer than the window's span of 40 s, and the "
        "partition's HEAD moved past the last commit (offset 1,400, HEAD 4,321)",
    }
    assert ours["status"]["partitions"][0].pop("reason") == reason
    assert ours["status"]["maxlag"].pop("reason") == reason
    assert dumps(ours) == dumps(burrows)


def test_log_level_bodies() -> None:
    url = "/v3/admin/loglevel"
    assert dumps(burrow_json.log_level(logging.WARNING, url=url, host=HOST)) == (
        '{"error":false,"message":"log level returned","level":"warn",'
        '"request":{"url":"/v3/admin/loglevel","host":"burrow-host"}}'
    )
    assert dumps(burrow_json.log_level_set(url=url, host=HOST)) == (
        '{"error":false,"message":"set log level",'
        '"request":{"url":"/v3/admin/loglevel","host":"burrow-host"}}'
    )
    assert [burrow_json.UNKNOWN_LOG_LEVEL, burrow_json.UNDECODABLE_BODY] == [
        "unknown log level",
        "could not decode message body",
    ]


def test_log_level_names() -> None:
    names = {
        level: burrow_json.log_level_name(level) for level in (0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 60)
    }
    assert names == {
        0: "debug",
        5: "debug",
        10: "debug",
        15: "info",
        20: "info",
        25: "warn",
        30: "warn",
        35: "error",
        40: "error",
        45: "fatal",
        50: "fatal",
        60: "fatal",
    }
    accepted = ("debug", "TRACE", "Info", "warning", "WARN", "error", "Fatal")
    assert [burrow_json.parse_log_level(name) for name in accepted] == [10, 10, 20, 30, 30, 40, 50]
    for name in ("", "panic", "dpanic", "critical", "notset", " info", "10"):
        assert burrow_json.parse_log_level(name) is None


@given(st.integers(0, 100))
def test_a_level_is_named_after_the_least_severe_burrow_level_it_lets_through(level: int) -> None:
    through = [name for name in ("debug", "info", "warn", "error", "fatal") if _level(name) >= level]
    assert burrow_json.log_level_name(level) == (through[0] if through else "fatal")


def _level(name: str) -> int:
    level = burrow_json.parse_log_level(name)
    assert level is not None
    return level


def test_config_main() -> None:
    config = burrow_json.MainConfig(log_level=logging.ERROR, listen="0.0.0.0:7980", tls=True)
    assert dumps(burrow_json.config_main(config, url="/v3/config", host=HOST)) == (
        '{"error":false,"message":"main config returned","request":{"url":"/v3/config","host":"burrow-host"},'
        '"general":{"pidfile":"","stdout-logfile":"","access-control-allow-origin":""},'
        '"logging":{"filename":"","max-size":100,"max-backups":10,"max-age":30,"use-local-time":false,'
        '"use-compression":false,"level":"error"},'
        '"zookeeper":{"servers":[],"timeout":0,"root-path":""},'
        '"httpserver":{"default":{"address":"0.0.0.0:7980","tls":"default","timeout":0}}}'
    )
    plain = burrow_json.config_main(
        burrow_json.MainConfig(log_level=logging.INFO, listen=":7980", tls=False), url="/", host=HOST
    )
    assert plain["httpserver"] == {"default": {"address": ":7980", "tls": "", "timeout": 0}}
    assert plain["logging"]["level"] == "info"


def test_module_list_is_sorted_and_may_be_empty() -> None:
    url = "/v3/config/consumer"
    assert dumps(burrow_json.module_list("consumer", ["prod", "local"], url=url, host=HOST)) == (
        '{"error":false,"message":"module list returned",'
        '"request":{"url":"/v3/config/consumer","host":"burrow-host"},'
        '"coordinator":"consumer","modules":["local","prod"]}'
    )
    assert burrow_json.module_list("notifier", (), url="/", host=HOST)["modules"] == []


def test_storage_module() -> None:
    module = burrow_json.StorageModule(
        intervals=10, min_distance=0.5, expire_group=604800.0, group_allowlist="^app-", group_denylist="test"
    )
    assert dumps(burrow_json.storage_module(module, url="/v3/config/storage/default", host=HOST)) == (
        '{"error":false,"message":"storage module detail returned","module":{"class-name":"inmemory",'
        '"intervals":10,"min-distance":0.5,"group-allowlist":"^app-","expire-group":604800,'
        '"group-denylist":"test"},"request":{"url":"/v3/config/storage/default","host":"burrow-host"}}'
    )


def test_evaluator_module() -> None:
    module = burrow_json.EvaluatorModule(expire_cache=10.0, minimum_complete=0.0, allowed_lag=100)
    assert dumps(burrow_json.evaluator_module(module, url="/v3/config/evaluator/default", host=HOST)) == (
        '{"error":false,"message":"evaluator module detail returned","module":{"class-name":"caching",'
        '"expire-cache":10,"minimum-complete":0,"allowed-lag":100},'
        '"request":{"url":"/v3/config/evaluator/default","host":"burrow-host"}}'
    )


def test_consumer_module() -> None:
    client = ClusterModule(
        servers=["k1:9093"],
        client_id="lagwatch",
        topic_refresh=60.0,
        offset_refresh=10.0,
        tls=TLSProfile(name="default", ca_file="/etc/ca.pem"),
        sasl=SASLProfile(name="default", username="monitor"),
    )
    module = burrow_json.ConsumerModule(
        cluster="prod", client=client, start_latest=True, group_denylist="^tmp"
    )
    assert dumps(burrow_json.consumer_module(module, url="/v3/config/consumer/prod", host=HOST)) == (
        '{"error":false,"message":"consumer module detail returned","module":{"class-name":"kafka",'
        '"cluster":"prod","servers":["k1:9093"],"group-allowlist":"","zookeeper-path":"","zookeeper-timeout":0,'
        '"client-profile":{"name":"default","client-id":"lagwatch","kafka-version":"","tls":{"name":"default",'
        '"noverify":false,"certfile":"","keyfile":"","cafile":"/etc/ca.pem"},"sasl":{"name":"default",'
        '"handshake-first":true,"username":"monitor"}},"offsets-topic":"__consumer_offsets","start-latest":true,'
        '"group-denylist":"^tmp"},"request":{"url":"/v3/config/consumer/prod","host":"burrow-host"}}'
    )


def test_module_not_found_messages() -> None:
    assert [
        burrow_json.STORAGE_MODULE_NOT_FOUND,
        burrow_json.EVALUATOR_MODULE_NOT_FOUND,
        burrow_json.CONSUMER_MODULE_NOT_FOUND,
        burrow_json.NOTIFIER_MODULE_NOT_FOUND,
    ] == [
        "storage module not found",
        "evaluator module not found",
        "consumer module not found",
        "notifier module not found",
    ]
