"""The HTTP server: Burrow's v3 API (exact bodies), health, /metrics, DELETE, basic auth, TLS, gzip.

The clusters are the app's ClusterRuntime, their storages filled with model records and evaluated (the sources
never run); the data are Burrow's own evaluator fixtures (burrow-semantics.md 10.2) plus a WARN group and a
second cluster.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import gzip
import json
import logging
import shutil
import socket
import ssl
import subprocess
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from exporter import __version__
from exporter.core.model import (
    GroupMetadata,
    Member,
    OffsetCommit,
    TopicPartitions,
)
from exporter.core.retention import TopicRetention
from exporter.core.storage import Storage
from exporter.exposition import metrics_endpoint
from exporter.exposition.blocks import BlockRenderer
from exporter.exposition.server import HttpServer, build_app
from exporter.exposition.webconfig import WebConfigError, parse_web_config
from exporter.runtime import ClusterRuntime
from exporter.settings import ClusterSettings, HttpSettings, LagSecondsSettings, Settings
from exporter.sources.cluster import BrokerHealth

NOW = 1_700_000_000
NOW_MS = NOW * 1000
T0 = NOW_MS - 100_000
HOST = socket.gethostname()
TOKEN = "s3cret-admin-token"
PASSWORD = "hunter2"
PASSWORD_HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()


# ------------------------------------------------------------------------------------------------------------
# Fixture clusters (imported by test_status.py too): the app's ClusterRuntime over a storage filled here and
# evaluated at NOW. Its sources never run; what they would report is set on their own state objects.

UNREACHABLE = "KafkaConnectionError: Unable to bootstrap from [('k', 9092)]"


async def make_runtime(
    name: str,
    servers: tuple[str, ...],
    fill: Callable[[Storage], object],
    *,
    exact_reads: bool = False,
    evaluated: bool = True,
) -> ClusterRuntime:
    """A runtime as after its replay and first HEAD round, evaluated unless told not to. Lag in seconds is
    computed only with `exact_reads` (it needs a HEAD history that only a running poller writes, or exact
    reads)."""
    settings = Settings(
        clusters={name: ClusterSettings(bootstrap_servers=servers)},
        lag_seconds=LagSecondsSettings(enabled=exact_reads, state_dir=""),
    )
    runtime = ClusterRuntime.filled(name, settings, fill, clock=lambda: NOW)
    runtime.offsets.progress.caught_up = True
    health = runtime.head.health
    health.up, health.rounds, health.last_refresh_s = True, 1, NOW
    if evaluated:
        await runtime.evaluate_now()
    return runtime


def fill_c1(storage: Storage) -> None:
    storage.set_topics({"testtopic": 1, "othertopic": 2}, NOW_MS)
    storage.add_head_offset("testtopic", 0, 4321, NOW_MS)
    for i in range(10):
        storage.apply(
            OffsetCommit("testgroup", "testtopic", 0, 1000 + 100 * i, T0 + 10_000 * i), 10 + i, NOW_MS
        )
    for i in range(5):
        storage.apply(
            OffsetCommit("testgroup2", "testtopic", 0, 1000 + 100 * i, T0 + 10_000 * i), 30 + i, NOW_MS
        )
    member = Member("m1", "consumer-1", "/10.0.0.5", assignment=(TopicPartitions("testtopic", (0,)),))
    storage.apply(GroupMetadata("testgroup2", "consumer", 1, "range", "m1", (member,)), 40, NOW_MS)
    # HEAD grows faster than the group commits: the lag at commit never decreases (WARN); commits are recent.
    for i in range(10):
        storage.add_head_offset("othertopic", 1, 100 + 200 * i, NOW_MS)
        storage.apply(
            OffsetCommit("slowgroup", "othertopic", 1, 10 + 100 * i, NOW_MS - 9000 + 1000 * i), 50 + i, NOW_MS
        )


async def make_c1() -> ClusterRuntime:
    """testgroup OK (lag 2421), testgroup2 ERR (STOP, lag 2921, owned), slowgroup WARN (lag 990)."""
    runtime = await make_runtime("c1", ("kafka1:9092", "kafka2:9092"), fill_c1, exact_reads=True)
    assert runtime.exact_reads is not None
    runtime.exact_reads.reads, runtime.exact_reads.failures = 7, 1
    runtime.progress.records.update({OffsetCommit: 25, GroupMetadata: 1})
    runtime.progress.decode_errors.update({"1": 2})
    runtime.progress.skipped_types.update({10: 3})
    return runtime


def fill_c2(storage: Storage) -> None:
    storage.set_topics({"events": 1}, NOW_MS)
    storage.add_head_offset("events", 0, 500, NOW_MS)
    for i in range(10):
        storage.apply(OffsetCommit("quiet", "events", 0, 500, T0 + 10_000 * i), i, NOW_MS)


async def make_c2() -> ClusterRuntime:
    """One caught-up group, OK."""
    return await make_runtime("c2", ("kafka9:9092",), fill_c2)


async def starting(name: str, fill: Callable[[Storage], object]) -> ClusterRuntime:
    """A cluster before its first evaluation: 12 records of the committed offsets read so far."""
    runtime = await make_runtime(name, ("kafka1:9092",), fill, evaluated=False)
    runtime.offsets.progress.caught_up = False
    runtime.progress.records[OffsetCommit] = 12
    return runtime


def unreachable(runtime: ClusterRuntime) -> None:
    """The HEAD poller lost the cluster 30 s before NOW."""
    health = runtime.head.health
    health.up, health.since_s, health.last_error = False, NOW - 30, UNREACHABLE


def make_settings(**http: Any) -> Settings:
    return Settings(
        clusters={"c1": ClusterSettings(bootstrap_servers=("kafka1:9092",))},
        http=HttpSettings(listen="127.0.0.1:0", **http),
    )


def read_side_settings() -> Settings:
    """make_settings() for a runtime filled by hand: no lag in seconds, whose HEAD history only a running
    poller writes (and which would read a state file from the default directory)."""
    return make_settings().model_copy(update={"lag_seconds": LagSecondsSettings(enabled=False)})


@pytest.fixture
async def clusters() -> dict[str, ClusterRuntime]:
    return {"c1": await make_c1(), "c2": await make_c2()}


@pytest.fixture
async def client(clusters: dict[str, ClusterRuntime]) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(build_app(clusters, make_settings()))) as test_client:
        yield test_client


async def get_json(client: TestClient[Any, Any], path: str, status: int = 200) -> Any:
    response = await client.get(path)
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


def request(url: str) -> dict[str, str]:
    return {"url": url, "host": HOST}


def commit(offset: int, timestamp: int, lag: int | None) -> dict[str, Any]:
    return {"offset": offset, "timestamp": timestamp, "observedAt": NOW_MS, "lag": lag}


TESTGROUP2_PARTITION = {
    "topic": "testtopic",
    "partition": 0,
    "owner": "/10.0.0.5",
    "client_id": "consumer-1",
    "status": "STOP",
    "start": commit(1000, T0, 3321),
    "end": commit(1400, T0 + 40_000, 2921),
    "current_lag": 2921,
    "complete": 0.5,
}

TESTGROUP_PARTITION = {
    "topic": "testtopic",
    "partition": 0,
    "owner": "",
    "client_id": "",
    "status": "OK",
    "start": commit(1000, T0, 3321),
    "end": commit(1900, T0 + 90_000, 2421),
    "current_lag": 2421,
    "complete": 1,
}


# ------------------------------------------------------------------------------------------------------------
# Burrow's v3 API


async def test_cluster_list(client: TestClient[Any, Any]) -> None:
    assert await get_json(client, "/v3/kafka") == {
        "error": False,
        "message": "cluster list returned",
        "clusters": ["c1", "c2"],
        "request": request("/v3/kafka"),
    }


async def test_cluster_detail_shows_the_settings_and_no_secret(client: TestClient[Any, Any]) -> None:
    assert await get_json(client, "/v3/kafka/c1") == {
        "error": False,
        "message": "cluster module detail returned",
        "module": {
            "class-name": "kafka",
            "servers": ["kafka1:9092", "kafka2:9092"],
            "client-profile": {
                "name": "default",
                "client-id": "lagwatch",
                "kafka-version": "",
                "tls": None,
                "sasl": None,
            },
            "topic-refresh": 60,
            "offset-refresh": 10,
        },
        "request": request("/v3/kafka/c1"),
        "lagwatch": {
            "ready": True,
            "waiting_for": "",
            "reachable": True,
            "unreachable_since": None,
            "cause": "",
            "statuses_as_of": NOW_MS,
        },
    }


async def test_cluster_detail_says_when_the_cluster_is_unreachable(
    client: TestClient[Any, Any], clusters: dict[str, ClusterRuntime]
) -> None:
    unreachable(clusters["c1"])
    body = await get_json(client, "/v3/kafka/c1")
    assert body["lagwatch"] == {
        "ready": True,
        "waiting_for": "",
        "reachable": False,
        "unreachable_since": NOW_MS - 30_000,
        "cause": "KafkaConnectionError: Unable to bootstrap from [('k', 9092)]",
        "statuses_as_of": NOW_MS,
    }


async def test_config_cluster_is_burrows_alias_of_the_cluster_detail(client: TestClient[Any, Any]) -> None:
    detail = await get_json(client, "/v3/kafka/c1")
    alias = await get_json(client, "/v3/config/cluster/c1")
    assert alias["request"] == request("/v3/config/cluster/c1")
    assert {**alias, "request": None} == {**detail, "request": None}


async def test_cluster_detail_with_sasl_ssl_names_the_profiles() -> None:
    settings = ClusterSettings.model_validate(
        {
            "bootstrap_servers": "k:9093",
            "security": {"protocol": "SASL_SSL", "sasl_username": "alice", "sasl_password": "pw"},
        }
    )
    cluster = await make_c2()
    cluster.settings = settings
    async with TestClient(TestServer(build_app({"c2": cluster}, make_settings()))) as test_client:
        body = await get_json(test_client, "/v3/kafka/c2")
    profile = body["module"]["client-profile"]
    assert profile["tls"] == {
        "name": "default",
        "noverify": False,
        "certfile": "",
        "keyfile": "",
        "cafile": "",
    }
    assert profile["sasl"] == {"name": "default", "handshake-first": True, "username": "alice"}
    assert "pw" not in json.dumps(body)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/v3/kafka/nope", "cluster module not found"),
        ("/v3/kafka/nope/topic", "cluster not found"),
        ("/v3/kafka/nope/topic/testtopic", "cluster or topic not found"),
        ("/v3/kafka/c1/topic/missing", "cluster or topic not found"),
        ("/v3/kafka/nope/topic/testtopic/consumers", "cluster not found"),
        ("/v3/kafka/nope/consumer", "cluster not found"),
        ("/v3/kafka/nope/consumer/testgroup", "cluster or consumer not found"),
        ("/v3/kafka/c1/consumer/missing", "cluster or consumer not found"),
    ],
)
async def test_not_found_errors_are_burrows(client: TestClient[Any, Any], path: str, message: str) -> None:
    assert await get_json(client, path, 404) == {"error": True, "message": message, "request": request(path)}


async def test_topic_list_and_offsets(client: TestClient[Any, Any]) -> None:
    assert await get_json(client, "/v3/kafka/c1/topic") == {
        "error": False,
        "message": "topic list returned",
        "topics": ["othertopic", "testtopic"],
        "request": request("/v3/kafka/c1/topic"),
    }
    # Partition 0 of othertopic never had a HEAD offset: null keeps the indexes (Burrow would shift them).
    assert await get_json(client, "/v3/kafka/c1/topic/othertopic") == {
        "error": False,
        "message": "topic offsets returned",
        "offsets": [None, 1900],
        "request": request("/v3/kafka/c1/topic/othertopic"),
    }


async def test_consumers_of_a_topic(client: TestClient[Any, Any]) -> None:
    assert await get_json(client, "/v3/kafka/c1/topic/testtopic/consumers") == {
        "error": False,
        "message": "consumers of topic returned",
        "consumers": ["testgroup", "testgroup2"],
        "request": request("/v3/kafka/c1/topic/testtopic/consumers"),
    }
    body = await get_json(client, "/v3/kafka/c1/topic/nobody/consumers")
    assert body["consumers"] == []


async def test_consumer_list(client: TestClient[Any, Any]) -> None:
    assert await get_json(client, "/v3/kafka/c1/consumer") == {
        "error": False,
        "message": "consumer list returned",
        "consumers": ["slowgroup", "testgroup", "testgroup2"],
        "request": request("/v3/kafka/c1/consumer"),
    }


async def test_consumer_detail(client: TestClient[Any, Any]) -> None:
    window = [None] * 5 + [commit(1000 + 100 * i, T0 + 10_000 * i, 3321 - 100 * i) for i in range(5)]
    assert await get_json(client, "/v3/kafka/c1/consumer/testgroup2") == {
        "error": False,
        "message": "consumer detail returned",
        "topics": {
            "testtopic": [
                {"offsets": window, "owner": "/10.0.0.5", "client_id": "consumer-1", "current-lag": 2921}
            ]
        },
        "request": request("/v3/kafka/c1/consumer/testgroup2"),
    }


def burrow_shape(body: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """A status body without lagwatch's one addition, the partitions' `reason` key, and the reasons removed
    (those of `partitions`, then that of `maxlag`)."""
    status = body["status"]
    objects = [*status["partitions"], *([status["maxlag"]] if status["maxlag"] else [])]
    return body, [p.pop("reason") for p in objects]


STOP_REASON = {
    "rule": "stopped",
    "figures": {"last_commit_ms": T0 + 40_000, "span_s": 40, "offset": 1400, "head": 4321},
    "text": "STOP: no commit since 22:12:20 UTC, longer than the window's span of 40 s, and the partition's "
    "HEAD moved past the last commit (offset 1,400, HEAD 4,321)",
}
LAG_FELL_REASON = {
    "rule": "lag_decreased",
    "figures": {"from_lag": 2521, "to_lag": 2421, "at_ms": T0 + 90_000},
    "text": "OK: lag fell from 2,521 to 2,421 at 22:13:10 UTC",
}


async def test_status_of_an_err_group_lists_its_bad_partition(client: TestClient[Any, Any]) -> None:
    path = "/v3/kafka/c1/consumer/testgroup2/status"
    body, reasons = burrow_shape(await get_json(client, path))
    assert reasons == [STOP_REASON, STOP_REASON]
    assert body == {
        "error": False,
        "message": "consumer status returned",
        "status": {
            "cluster": "c1",
            "group": "testgroup2",
            "status": "ERR",
            "complete": 0,
            "partitions": [TESTGROUP2_PARTITION],
            "partition_count": 1,
            "maxlag": TESTGROUP2_PARTITION,
            "totallag": 2921,
        },
        "request": request(path),
    }


async def test_status_leaves_ok_partitions_out_and_lag_lists_them(client: TestClient[Any, Any]) -> None:
    status, reasons = burrow_shape(await get_json(client, "/v3/kafka/c1/consumer/testgroup/status"))
    assert reasons == [LAG_FELL_REASON]
    assert status["status"] == {
        "cluster": "c1",
        "group": "testgroup",
        "status": "OK",
        "complete": 1,
        "partitions": [],
        "partition_count": 1,
        "maxlag": TESTGROUP_PARTITION,
        "totallag": 2421,
    }
    lag, reasons = burrow_shape(await get_json(client, "/v3/kafka/c1/consumer/testgroup/lag"))
    assert reasons == [LAG_FELL_REASON, LAG_FELL_REASON]
    assert lag["message"] == "consumer status returned"
    assert lag["status"]["partitions"] == [TESTGROUP_PARTITION]
    assert lag["request"] == request("/v3/kafka/c1/consumer/testgroup/lag")


async def test_partition_objects_carry_the_retention_headroom_of_their_status(
    client: TestClient[Any, Any], clusters: dict[str, ClusterRuntime]
) -> None:
    # Without the partition's log start there is no headroom.
    lag, _ = burrow_shape(await get_json(client, "/v3/kafka/c1/consumer/testgroup/lag"))
    assert lag["status"]["partitions"] == [TESTGROUP_PARTITION]
    # The HEAD poller learns that the log starts past the committed offset, under a one-day retention.
    c1 = clusters["c1"]
    c1.storage.set_start_offset("testtopic", 0, 2000)
    c1.storage.set_topic_retention({"testtopic": TopicRetention(True, False, 86_400_000, None)})
    await c1.evaluate_now()
    lag, _ = burrow_shape(await get_json(client, "/v3/kafka/c1/consumer/testgroup/lag"))
    retention = {"lost_messages": 100, "margin": 0, "headroom_seconds": 0.0}
    assert lag["status"]["partitions"] == [{**TESTGROUP_PARTITION, "retention": retention}]
    assert lag["status"]["maxlag"] == {**TESTGROUP_PARTITION, "retention": retention}


@pytest.mark.parametrize("endpoint", ["status", "lag"])
@pytest.mark.parametrize("cluster", ["c1", "nope"])
async def test_unknown_group_is_a_404_without_error(
    client: TestClient[Any, Any], endpoint: str, cluster: str
) -> None:
    path = f"/v3/kafka/{cluster}/consumer/ghost/{endpoint}"
    assert await get_json(client, path, 404) == {
        "error": False,
        "message": "consumer status returned",
        "status": {
            "cluster": cluster,
            "group": "ghost",
            "status": "NOTFOUND",
            "complete": 1,
            "partitions": [],
            "partition_count": 0,
            "maxlag": None,
            "totallag": 0,
        },
        "request": request(path),
    }


@pytest.mark.parametrize("path", ["/v3/nothing", "/v3/kafka/c1/consumer/testgroup/bogus", "/favicon.ico"])
async def test_unknown_paths_get_burrows_plain_404(client: TestClient[Any, Any], path: str) -> None:
    assert await get_json(client, path, 404) == {
        "error": True,
        "message": "invalid request type",
        "result": {},
    }


async def test_known_paths_with_another_method_get_405(client: TestClient[Any, Any]) -> None:
    assert (await client.post("/v3/kafka")).status == 405
    assert (await client.put("/metrics")).status == 405


async def test_group_names_with_slashes_and_spaces_are_path_segments(
    clusters: dict[str, ClusterRuntime],
) -> None:
    storage = clusters["c1"].storage
    storage.apply(OffsetCommit("team/app one", "testtopic", 0, 4321, NOW_MS), 90, NOW_MS)
    await clusters["c1"].evaluate_now()
    async with TestClient(TestServer(build_app(clusters, make_settings()))) as test_client:
        body = await get_json(test_client, "/v3/kafka/c1/consumer/team%2Fapp%20one/lag")
    assert body["status"]["group"] == "team/app one"
    assert body["request"]["url"] == "/v3/kafka/c1/consumer/team/app one/lag"


# ------------------------------------------------------------------------------------------------------------
# DELETE


async def test_delete_is_off_without_an_admin_token(client: TestClient[Any, Any]) -> None:
    response = await client.delete("/v3/kafka/c1/consumer/testgroup2", headers={"Authorization": "Bearer x"})
    assert response.status == 404
    assert await response.json() == {"error": True, "message": "invalid request type", "result": {}}
    assert "testgroup2" in (await get_json(client, "/v3/kafka/c1/consumer"))["consumers"]


@pytest.fixture
async def admin_client(clusters: dict[str, ClusterRuntime]) -> AsyncIterator[TestClient[Any, Any]]:
    app = build_app(clusters, make_settings(admin_token=TOKEN))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x"])
async def test_delete_needs_the_bearer_token(admin_client: TestClient[Any, Any], header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    path = "/v3/kafka/c1/consumer/testgroup2"
    response = await admin_client.delete(path, headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert await response.json() == {
        "error": True,
        "message": "missing or invalid admin token",
        "request": request(path),
    }
    assert "testgroup2" in (await get_json(admin_client, "/v3/kafka/c1/consumer"))["consumers"]


async def test_delete_removes_the_group_and_its_series(admin_client: TestClient[Any, Any]) -> None:
    path = "/v3/kafka/c1/consumer/testgroup2"
    response = await admin_client.delete(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 200
    assert await response.json() == {
        "error": False,
        "message": "consumer group removed",
        "request": request(path),
    }
    consumers = (await get_json(admin_client, "/v3/kafka/c1/consumer"))["consumers"]
    assert consumers == ["slowgroup", "testgroup"]
    await get_json(admin_client, f"{path}/lag", 404)
    metrics = await (await admin_client.get("/metrics")).text()
    assert 'group="testgroup2"' not in metrics
    assert 'lagwatch_group_status{kafka_cluster="c1",group="testgroup"} 1' in metrics


async def test_delete_of_one_topic_and_of_unknown_groups(admin_client: TestClient[Any, Any]) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    response = await admin_client.delete("/v3/kafka/c1/consumer/testgroup/topic/testtopic", headers=auth)
    assert response.status == 200
    assert (await response.json())["request"] == request("/v3/kafka/c1/consumer/testgroup/topic/testtopic")
    # Its only topic gone, the group goes too, as in Burrow's storage.
    assert "testgroup" not in (await get_json(admin_client, "/v3/kafka/c1/consumer"))["consumers"]
    for path in ("/v3/kafka/c1/consumer/ghost", "/v3/kafka/nope/consumer/testgroup2"):
        response = await admin_client.delete(path, headers=auth)
        assert response.status == 200
        assert (await response.json())["message"] == "consumer group removed"
    assert "testgroup2" in (await get_json(admin_client, "/v3/kafka/c1/consumer"))["consumers"]


# ------------------------------------------------------------------------------------------------------------
# Log level


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, its level restored after the test."""
    root = logging.getLogger()
    saved = root.level
    yield root
    root.setLevel(saved)


@pytest.mark.parametrize(
    ("level", "name"),
    [
        (logging.DEBUG, "debug"),
        (logging.INFO, "info"),
        (logging.WARNING, "warn"),
        (logging.CRITICAL, "fatal"),
    ],
)
async def test_get_log_level_is_the_root_loggers(
    client: TestClient[Any, Any], root_logger: logging.Logger, level: int, name: str
) -> None:
    root_logger.setLevel(level)
    assert await get_json(client, "/v3/admin/loglevel") == {
        "error": False,
        "message": "log level returned",
        "level": name,
        "request": request("/v3/admin/loglevel"),
    }


async def post_level(
    test_client: TestClient[Any, Any], data: str, headers: Mapping[str, str] | None = None
) -> tuple[int, Any]:
    auth = {"Authorization": f"Bearer {TOKEN}"} if headers is None else headers
    response = await test_client.post("/v3/admin/loglevel", data=data, headers=auth)
    return response.status, await response.json()


@pytest.mark.parametrize(
    ("sent", "level", "shown"),
    [
        ("debug", logging.DEBUG, "debug"),
        ("TRACE", logging.DEBUG, "debug"),
        ("Info", logging.INFO, "info"),
        ("warning", logging.WARNING, "warn"),
        ("WARN", logging.WARNING, "warn"),
        ("error", logging.ERROR, "error"),
        ("fatal", logging.CRITICAL, "fatal"),
    ],
)
async def test_post_log_level_sets_the_root_logger(
    admin_client: TestClient[Any, Any], root_logger: logging.Logger, sent: str, level: int, shown: str
) -> None:
    root_logger.setLevel(logging.INFO if level != logging.INFO else logging.ERROR)
    assert await post_level(admin_client, json.dumps({"level": sent})) == (
        200,
        {"error": False, "message": "set log level", "request": request("/v3/admin/loglevel")},
    )
    assert root_logger.level == level
    assert (await get_json(admin_client, "/v3/admin/loglevel"))["level"] == shown


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        ('{"level": "verbose"}', 404, "unknown log level"),
        ('{"level": "panic"}', 404, "unknown log level"),
        ('{"level": ""}', 404, "unknown log level"),
        ("{}", 404, "unknown log level"),
        ('{"level": null}', 404, "unknown log level"),
        ("null", 404, "unknown log level"),
        ("", 400, "could not decode message body"),
        ("{level: debug}", 400, "could not decode message body"),
        ('["debug"]', 400, "could not decode message body"),
        ('"debug"', 400, "could not decode message body"),
        ('{"level": 10}', 400, "could not decode message body"),
    ],
)
async def test_post_log_level_rejects_what_burrow_rejects(
    admin_client: TestClient[Any, Any], root_logger: logging.Logger, data: str, status: int, message: str
) -> None:
    root_logger.setLevel(logging.WARNING)
    assert await post_level(admin_client, data) == (
        status,
        {"error": True, "message": message, "request": request("/v3/admin/loglevel")},
    )
    assert root_logger.level == logging.WARNING


async def test_post_log_level_reads_the_key_in_any_case_as_go_does(
    admin_client: TestClient[Any, Any], root_logger: logging.Logger
) -> None:
    root_logger.setLevel(logging.INFO)
    status, _ = await post_level(admin_client, '{"Level": "info", "LEVEL": "error", "other": 1}')
    assert status == 200
    assert root_logger.level == logging.ERROR


async def test_post_log_level_is_off_without_an_admin_token(
    client: TestClient[Any, Any], root_logger: logging.Logger
) -> None:
    root_logger.setLevel(logging.WARNING)
    assert await post_level(client, '{"level": "debug"}') == (
        404,
        {"error": True, "message": "invalid request type", "result": {}},
    )
    assert root_logger.level == logging.WARNING


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Basic {TOKEN}"])
async def test_post_log_level_needs_the_bearer_token(
    admin_client: TestClient[Any, Any], root_logger: logging.Logger, header: str | None
) -> None:
    root_logger.setLevel(logging.WARNING)
    response = await admin_client.post(
        "/v3/admin/loglevel",
        data='{"level": "debug"}',
        headers={} if header is None else {"Authorization": header},
    )
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert (await response.json())["message"] == "missing or invalid admin token"
    assert root_logger.level == logging.WARNING


async def test_post_log_level_authenticates_with_the_token_under_basic_auth(
    clusters: dict[str, ClusterRuntime], root_logger: logging.Logger
) -> None:
    root_logger.setLevel(logging.WARNING)
    app = web_app(clusters, f"basic_auth_users:\n  alice: '{PASSWORD_HASH}'\n", admin_token=TOKEN)
    async with TestClient(TestServer(app)) as test_client:
        assert (await test_client.get("/v3/admin/loglevel")).status == 401
        assert (await post_level(test_client, '{"level": "debug"}', basic("alice", PASSWORD)))[0] == 401
        assert root_logger.level == logging.WARNING
        assert (await post_level(test_client, '{"level": "debug"}'))[0] == 200
        assert root_logger.level == logging.DEBUG
        response = await test_client.get("/v3/admin/loglevel", headers=basic("alice", PASSWORD))
        assert (await response.json())["level"] == "debug"


# ------------------------------------------------------------------------------------------------------------
# /v3/config


async def test_config_main(client: TestClient[Any, Any]) -> None:
    response = await client.get("/v3/config")
    assert response.status == 200
    assert await response.text() == (
        '{"error":false,"message":"main config returned",'
        f'"request":{{"url":"/v3/config","host":{json.dumps(HOST)}}},'
        '"general":{"pidfile":"","stdout-logfile":"","access-control-allow-origin":""},'
        '"logging":{"filename":"","max-size":100,"max-backups":10,"max-age":30,"use-local-time":false,'
        '"use-compression":false,"level":"info"},'
        '"zookeeper":{"servers":[],"timeout":0,"root-path":""},'
        '"httpserver":{"default":{"address":"127.0.0.1:0","tls":"","timeout":0}}}'
    )


async def test_config_logging_level_is_the_configured_one(
    clusters: dict[str, ClusterRuntime], root_logger: logging.Logger
) -> None:
    settings = Settings(
        log_level="warning",
        clusters={"c1": ClusterSettings(bootstrap_servers=("kafka1:9092",))},
        http=HttpSettings(listen="127.0.0.1:0"),
    )
    root_logger.setLevel(logging.DEBUG)
    async with TestClient(TestServer(build_app(clusters, settings))) as test_client:
        assert (await get_json(test_client, "/v3/config"))["logging"]["level"] == "warn"
        assert (await get_json(test_client, "/v3/admin/loglevel"))["level"] == "debug"


@pytest.mark.parametrize(
    ("coordinator", "modules"),
    [
        ("storage", ["default"]),
        ("evaluator", ["default"]),
        ("cluster", ["c1", "c2"]),
        ("consumer", ["c1", "c2"]),
        ("notifier", []),
    ],
)
async def test_config_module_lists(
    client: TestClient[Any, Any], coordinator: str, modules: list[str]
) -> None:
    path = f"/v3/config/{coordinator}"
    assert await get_json(client, path) == {
        "error": False,
        "message": "module list returned",
        "request": request(path),
        "coordinator": coordinator,
        "modules": modules,
    }


async def test_config_storage_and_evaluator_modules(clusters: dict[str, ClusterRuntime]) -> None:
    settings = Settings.model_validate(
        {
            "clusters": {"c1": {"bootstrap_servers": "kafka1:9092"}},
            "http": {"listen": "127.0.0.1:0"},
            "storage": {"intervals": 15, "min_distance": 1, "expire_group": 86400},
            "evaluator": {"allowed_lag": 5, "minimum_complete": 0.5},
            "filters": {"group_allow": "^team-", "group_deny": "-test$"},
        }
    )
    async with TestClient(TestServer(build_app(clusters, settings))) as test_client:
        assert await get_json(test_client, "/v3/config/storage/default") == {
            "error": False,
            "message": "storage module detail returned",
            "module": {
                "class-name": "inmemory",
                "intervals": 15,
                "min-distance": 1,
                "group-allowlist": "^team-",
                "expire-group": 86400,
                "group-denylist": "-test$",
            },
            "request": request("/v3/config/storage/default"),
        }
        assert await get_json(test_client, "/v3/config/evaluator/default") == {
            "error": False,
            "message": "evaluator module detail returned",
            "module": {
                "class-name": "caching",
                "expire-cache": 10,
                "minimum-complete": 0.5,
                "allowed-lag": 5,
            },
            "request": request("/v3/config/evaluator/default"),
        }


async def test_config_consumer_module_of_an_offsets_topic_cluster(client: TestClient[Any, Any]) -> None:
    assert await get_json(client, "/v3/config/consumer/c1") == {
        "error": False,
        "message": "consumer module detail returned",
        "module": {
            "class-name": "kafka",
            "cluster": "c1",
            "servers": ["kafka1:9092", "kafka2:9092"],
            "group-allowlist": "",
            "zookeeper-path": "",
            "zookeeper-timeout": 0,
            "client-profile": {
                "name": "default",
                "client-id": "lagwatch",
                "kafka-version": "",
                "tls": None,
                "sasl": None,
            },
            "offsets-topic": "__consumer_offsets",
            "start-latest": False,
            "group-denylist": "",
        },
        "request": request("/v3/config/consumer/c1"),
    }


async def test_config_of_an_admin_api_cluster_hides_every_secret() -> None:
    cluster = await make_c2()
    cluster.settings = ClusterSettings.model_validate(
        {
            "bootstrap_servers": "k:9093",
            "offsets_source": "admin-api",
            "offsets_topic": "__custom_offsets",
            "start_latest": True,
            "offset_refresh": 30,
            "security": {"protocol": "SASL_SSL", "sasl_username": "alice", "sasl_password": "sasl-pw"},
        }
    )
    app = build_app({"c2": cluster}, make_settings(admin_token=TOKEN))
    async with TestClient(TestServer(app)) as test_client:
        consumer = await get_json(test_client, "/v3/config/consumer/c2")
        assert {key: consumer["module"][key] for key in ("class-name", "offsets-topic", "start-latest")} == {
            "class-name": "kafka_admin_api",
            "offsets-topic": "",
            "start-latest": False,
        }
        assert consumer["module"]["client-profile"]["sasl"] == {
            "name": "default",
            "handshake-first": True,
            "username": "alice",
        }
        evaluator = await get_json(test_client, "/v3/config/evaluator/default")
        assert evaluator["module"]["expire-cache"] == 30
        bodies = [
            await (await test_client.get(path)).text()
            for path in ("/v3/config", "/v3/config/storage/default", "/v3/config/consumer/c2")
        ]
    for body in [*bodies, json.dumps(consumer), json.dumps(evaluator)]:
        assert "sasl-pw" not in body
        assert TOKEN not in body


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/v3/config/storage/local", "storage module not found"),
        ("/v3/config/evaluator/caching", "evaluator module not found"),
        ("/v3/config/consumer/nope", "consumer module not found"),
        ("/v3/config/notifier/default", "notifier module not found"),
        ("/v3/config/cluster/nope", "cluster module not found"),
    ],
)
async def test_config_unknown_modules_are_burrows_404(
    client: TestClient[Any, Any], path: str, message: str
) -> None:
    assert await get_json(client, path, 404) == {"error": True, "message": message, "request": request(path)}


async def test_config_unknown_coordinator_is_an_unknown_path(client: TestClient[Any, Any]) -> None:
    assert await get_json(client, "/v3/config/zookeeper", 404) == {
        "error": True,
        "message": "invalid request type",
        "result": {},
    }


# ------------------------------------------------------------------------------------------------------------
# Health


async def test_health_endpoints(client: TestClient[Any, Any]) -> None:
    for path, text in (("/-/healthy", "lagwatch is Healthy.\n"), ("/burrow/admin", "GOOD")):
        response = await client.get(path)
        assert (response.status, await response.text()) == (200, text)


async def test_ready_once_every_cluster_caught_up() -> None:
    c1 = await starting("c1", fill_c1)
    c2 = await make_runtime("c2", ("kafka9:9092",), fill_c2, evaluated=False)
    c2.head.health.up, c2.head.health.last_error = False, "KafkaConnectionError: Unable to bootstrap"
    async with TestClient(TestServer(build_app({"c1": c1, "c2": c2}, make_settings()))) as client:
        response = await client.get("/-/ready")
        assert response.status == 503
        assert await response.text() == (
            "lagwatch is not ready.\n"
            "cluster c1: still reading the committed offsets (12 records so far)\n"
            "cluster c2: cannot reach the cluster (KafkaConnectionError: Unable to bootstrap)\n"
        )
        response = await client.get("/burrow/admin/ready")
        assert (response.status, await response.text()) == (503, "STARTING")
        c1.offsets.progress.caught_up = True
        c2.head.health.up, c2.head.health.last_error = True, ""
        await c1.evaluate_now()
        await c2.evaluate_now()
        response = await client.get("/-/ready")
        assert (response.status, await response.text()) == (200, "lagwatch is Ready.\n")
        response = await client.get("/burrow/admin/ready")
        assert (response.status, await response.text()) == (200, "READY")
        # A cluster that was ready and became unreachable keeps lagwatch ready, and is named.
        unreachable(c2)
        response = await client.get("/-/ready")
        assert (response.status, await response.text()) == (
            200,
            "lagwatch is Ready.\ncluster c2: unreachable since 2023-11-14T22:12:50Z (KafkaConnectionError: "
            "Unable to bootstrap from [('k', 9092)]); statuses as of 2023-11-14T22:13:20Z\n",
        )


async def test_landing_page_links_metrics_and_the_api(client: TestClient[Any, Any]) -> None:
    response = await client.get("/")
    page = await response.text()
    assert response.content_type == "text/html"
    assert '<a href="metrics">' in page
    assert '<a href="v3/kafka">' in page
    assert f"lagwatch {__version__}" in page


# ------------------------------------------------------------------------------------------------------------
# /metrics


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_parse_and_carry_data_and_self_metrics(client: TestClient[Any, Any]) -> None:
    response = await client.get("/metrics", headers={"Accept-Encoding": "identity"})
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "Content-Encoding" not in response.headers
    text = await response.text()
    values = samples(text)
    c1 = ("kafka_cluster", "c1")

    def value(name: str, *labels: tuple[str, str]) -> float:
        return values[name, tuple(sorted(labels))]

    assert value("lagwatch_group_status", c1, ("group", "testgroup2")) == 3
    assert value("lagwatch_group_status", c1, ("group", "slowgroup")) == 2
    assert value("lagwatch_group_total_lag", c1, ("group", "testgroup")) == 2421
    assert (
        value(
            "lagwatch_partition_status",
            c1,
            ("group", "testgroup2"),
            ("topic", "testtopic"),
            ("partition", "0"),
        )
        == 4
    )
    assert (
        value("lagwatch_topic_partition_end_offset", c1, ("topic", "othertopic"), ("partition", "1")) == 1900
    )
    assert value("lagwatch_cluster_up", c1) == 1
    assert value("lagwatch_build_info", ("version", __version__)) == 1
    assert value("lagwatch_offsets_records_total", c1, ("kind", "offset_commit")) == 25
    assert value("lagwatch_offsets_records_total", c1, ("kind", "group_tombstone")) == 0
    assert value("lagwatch_offsets_records_total", ("kafka_cluster", "c2"), ("kind", "offset_commit")) == 0
    assert value("lagwatch_offsets_decode_errors_total", c1, ("key_type", "1")) == 2
    assert value("lagwatch_offsets_skipped_records_total", c1, ("key_type", "10")) == 3
    assert value("lagwatch_commits_stored_total", c1) == 25
    assert value("lagwatch_commits_dropped_total", c1, ("reason", "duplicate")) == 0
    assert value("lagwatch_exact_reads_total", c1) == 7
    assert value("lagwatch_exact_read_failures_total", c1) == 1
    # One for each lagging commit (testgroup's, testgroup2's, slowgroup's): no HEAD history to time them.
    assert value("lagwatch_exact_reads_pending", c1) == 3
    assert value("lagwatch_evaluation_failures_total", c1) == 0
    assert not [
        key
        for key in values
        if key[0].startswith("lagwatch_exact_read") and ("kafka_cluster", "c2") in key[1]
    ]
    assert any(name.startswith("process_") for name, _ in values)
    assert any(name == "python_info" for name, _ in values)
    # Every family is declared once: the self-metrics never collide with the renderer's families.
    declared = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
    assert len(declared) == len(set(declared))


async def test_metrics_follow_the_data_between_scrapes(
    client: TestClient[Any, Any], clusters: dict[str, ClusterRuntime]
) -> None:
    first = samples(await (await client.get("/metrics")).text())
    key = ("lagwatch_group_total_lag", (("group", "testgroup"), ("kafka_cluster", "c1")))
    assert first[key] == 2421
    # The group catches up: the scrapes after its round's render show it, the kept blocks notwithstanding.
    clusters["c1"].storage.apply(OffsetCommit("testgroup", "testtopic", 0, 4321, NOW_MS), 60, NOW_MS)
    await clusters["c1"].evaluate_now()
    await settled(client)
    second = samples(await (await client.get("/metrics")).text())
    assert second[key] == 0
    clusters["c1"].storage.set_topics({"othertopic": 2}, NOW_MS)
    await clusters["c1"].evaluate_now()
    await settled(client)
    third = await (await client.get("/metrics")).text()
    assert 'topic="testtopic"' not in third


async def test_metrics_are_gzipped_on_request_as_one_stream(client: TestClient[Any, Any]) -> None:
    plain = await (await client.get("/metrics", headers={"Accept-Encoding": "identity"})).read()
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        url = client.make_url("/metrics")
        async with session.get(url, headers={"Accept-Encoding": "br, gzip;q=0.8"}) as response:
            assert response.headers["Content-Encoding"] == "gzip"
            assert response.headers["Vary"] == "Accept-Encoding"
            raw = await response.read()
        # gzip.decompress reads every member; zlib reads the first only: one stream means both agree.
        assert raw[:2] == b"\x1f\x8b"
        single = zlib.decompressobj(31)
        assert single.decompress(raw) == gzip.decompress(raw)
        assert single.unused_data == b""
        async with session.get(url, headers={"Accept-Encoding": "gzip;q=0, deflate"}) as response:
            assert "Content-Encoding" not in response.headers
    unzipped = gzip.decompress(raw)
    marker = b"# HELP lagwatch_build_info"
    assert unzipped.split(marker)[0] == plain.split(marker)[0]
    assert len(unzipped) > 10_000


async def test_health_answers_while_metrics_render(
    clusters: dict[str, ClusterRuntime], monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    rendering = asyncio.Event()
    real_render = BlockRenderer.render

    def slow_render(*args: Any) -> Any:
        loop.call_soon_threadsafe(rendering.set)
        time.sleep(0.6)
        return real_render(*args)

    monkeypatch.setattr(BlockRenderer, "render", slow_render)
    async with TestClient(TestServer(build_app(clusters, make_settings()))) as test_client:
        scrape = asyncio.create_task(test_client.get("/metrics"))
        await asyncio.wait_for(rendering.wait(), 5)
        started = time.perf_counter()
        response = await test_client.get("/-/healthy")
        elapsed = time.perf_counter() - started
        assert response.status == 200
        assert elapsed < 0.1
        assert not scrape.done()
        assert (await scrape).status == 200


class RenderCounter:
    """Counts renders, which run in worker threads, and holds each one until the test lets it finish (a
    renderer made as slow as the test wants)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.started = 0
        self.finished = 0
        self.gate = threading.Event()
        """Set: renders run through; cleared: each waits until it is set again (at most 5 s)."""
        self.gate.set()
        self._loop = loop
        self._moved = asyncio.Event()

    def __call__(self, renderer: BlockRenderer, *args: Any) -> Any:
        self.started += 1
        self._loop.call_soon_threadsafe(self._moved.set)
        assert self.gate.wait(5)
        exposition = self.real(renderer, *args)
        self.finished += 1
        self._loop.call_soon_threadsafe(self._moved.set)
        return exposition

    real: Any = staticmethod(BlockRenderer.render)

    async def reach(self, started: int) -> None:
        """Until `started` renders have started."""
        async with asyncio.timeout(5):
            while self.started < started:
                self._moved.clear()
                await self._moved.wait()


@pytest.fixture
async def renders(monkeypatch: pytest.MonkeyPatch) -> RenderCounter:
    counter = RenderCounter(asyncio.get_running_loop())

    def render(*args: Any) -> Any:
        return counter(*args)

    monkeypatch.setattr(BlockRenderer, "render", render)
    return counter


async def settled(test_client: TestClient[Any, Any]) -> None:
    """Until no render runs or is wanted: the last one is what scrapes get."""
    state = test_client.server.app[metrics_endpoint._STATE]
    async with asyncio.timeout(5):
        while state.wanted.is_set() or state.render_lock.locked():  # noqa: ASYNC110 (two conditions)
            await asyncio.sleep(0.005)


async def scrape(test_client: TestClient[Any, Any], gzip: bool = True) -> dict[Any, float]:
    """One scrape, parsed; answered within 2 s: without waiting for a render held by `renders.gate`."""
    headers = {"Accept-Encoding": "gzip" if gzip else "identity"}
    async with asyncio.timeout(2):
        response = await test_client.get("/metrics", headers=headers)
        assert ("Content-Encoding" in response.headers) == gzip
        return samples(await response.text())


def shown(values: dict[Any, float]) -> dict[Any, float]:
    """The samples of the data families, and the round they show."""
    prefixes = ("lagwatch_group_", "lagwatch_partition_", "lagwatch_topic_", "lagwatch_evaluation_timestamp")
    return {key: value for key, value in values.items() if key[0].startswith(prefixes)}


TOTAL_LAG = ("lagwatch_group_total_lag", (("group", "testgroup"), ("kafka_cluster", "c1")))
EVALUATED = ("lagwatch_evaluation_timestamp_seconds", (("kafka_cluster", "c1"),))
CLUSTER_UP = ("lagwatch_cluster_up", (("kafka_cluster", "c1"),))


async def test_the_first_scrape_waits_for_the_render(
    clusters: dict[str, ClusterRuntime], renders: RenderCounter
) -> None:
    async with TestClient(TestServer(build_app(clusters, make_settings()))) as test_client:
        assert renders.started == 0
        renders.gate.clear()
        first = asyncio.create_task(test_client.get("/metrics"))
        await renders.reach(1)
        await asyncio.sleep(0.2)
        assert not first.done()
        renders.gate.set()
        assert samples(await (await first).text())[TOTAL_LAG] == 2421
        assert renders.finished == 1


async def test_a_scrape_during_a_render_gets_the_last_rendered_body_at_once_then_the_new_one(
    clusters: dict[str, ClusterRuntime], renders: RenderCounter
) -> None:
    runtime = clusters["c1"]
    async with TestClient(TestServer(build_app(clusters, make_settings()))) as test_client:
        first = await scrape(test_client)
        assert (first[TOTAL_LAG], first[EVALUATED], renders.finished) == (2421, NOW, 1)
        # A new round, 10 s later: rendered as soon as it is published, before any scrape asks.
        renders.gate.clear()
        runtime.storage.apply(OffsetCommit("testgroup", "testtopic", 0, 4000, NOW_MS), 60, NOW_MS)
        runtime.evaluation._clock = lambda: NOW + 10
        await runtime.evaluate_now()
        await renders.reach(2)
        # Its render is held: scrapes, with and without gzip, get the round before at once, saying so.
        during = await scrape(test_client)
        assert shown(await scrape(test_client, gzip=False)) == shown(during)
        assert (during[TOTAL_LAG], during[EVALUATED]) == (2421, NOW)
        assert (renders.started, renders.finished) == (2, 1)
        renders.gate.set()
        await settled(test_client)
        after = await scrape(test_client)
        assert (after[TOTAL_LAG], after[EVALUATED]) == (321, NOW + 10)
        # The data did not move since: a second Prometheus (an HA pair) costs no render.
        assert shown(await scrape(test_client, gzip=False)) == shown(after)
        await asyncio.sleep(0.1)
    assert (renders.started, renders.finished) == (2, 2)
    assert gc.isenabled()


async def test_health_is_as_of_the_scrape_while_a_render_runs(
    clusters: dict[str, ClusterRuntime], renders: RenderCounter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The brokers' HEAD ages grow with the clock and the cluster's reachability changes between rounds:
    every scrape writes them as they are, rendering nothing for them, even while a render runs."""
    runtime = clusters["c1"]
    runtime.head.health.brokers[1] = BrokerHealth(answers=1, answer_seconds=0.01, last_answer_s=NOW - 5)
    ticks = iter(range(10**6))
    monkeypatch.setattr(runtime, "_clock", lambda: NOW + next(ticks))
    age = ("lagwatch_broker_head_age_seconds", (("broker", "1"), ("kafka_cluster", "c1")))
    async with TestClient(TestServer(build_app(clusters, make_settings()))) as test_client:
        first = await scrape(test_client)
        second = await scrape(test_client)
        assert second[age] > first[age] >= 5
        assert renders.started == 1
        renders.gate.clear()
        runtime.storage.apply(OffsetCommit("testgroup", "testtopic", 0, 4000, NOW_MS), 60, NOW_MS)
        await runtime.evaluate_now()
        await renders.reach(2)
        runtime.head.health.up = False
        during = await scrape(test_client)
        assert during[age] > second[age]
        assert (during[CLUSTER_UP], during[TOTAL_LAG]) == (0, 2421)
        renders.gate.set()
        await settled(test_client)
        runtime.head.health.up = True
        after = await scrape(test_client)
        assert (after[CLUSTER_UP], after[TOTAL_LAG]) == (1, 321)
        assert after[age] > during[age]
    assert renders.started == 2


async def test_a_group_deleted_through_the_api_is_rendered_at_once(
    clusters: dict[str, ClusterRuntime], renders: RenderCounter
) -> None:
    status = ("lagwatch_group_status", (("group", "testgroup2"), ("kafka_cluster", "c1")))
    async with TestClient(TestServer(build_app(clusters, make_settings()))) as test_client:
        assert status in await scrape(test_client)
        assert clusters["c1"].delete_group("testgroup2")
        await renders.reach(2)
        await settled(test_client)
        assert status not in await scrape(test_client)
    assert renders.started == 2


@pytest.mark.parametrize("moved", [True, False])
async def test_the_first_scrape_after_a_pause_waits_for_the_data_that_moved_meanwhile(
    clusters: dict[str, ClusterRuntime],
    renders: RenderCounter,
    monkeypatch: pytest.MonkeyPatch,
    moved: bool,
) -> None:
    """Renders stop following the data `_PRERENDER_WHILE_S` after the last scrape: the next scrape renders
    rather than serve a body of a round that old, if there is a newer one."""
    monkeypatch.setattr(metrics_endpoint, "_PRERENDER_WHILE_S", 0.2)
    runtime = clusters["c1"]
    async with TestClient(TestServer(build_app(clusters, make_settings()))) as test_client:
        assert (await scrape(test_client))[TOTAL_LAG] == 2421
        await asyncio.sleep(0.3)
        if moved:
            runtime.storage.apply(OffsetCommit("testgroup", "testtopic", 0, 4000, NOW_MS), 60, NOW_MS)
            runtime.evaluation._clock = lambda: NOW + 600
            await runtime.evaluate_now()
        await asyncio.sleep(0.1)
        assert renders.started == 1
        renders.gate.clear()
        late = asyncio.create_task(test_client.get("/metrics"))
        await asyncio.sleep(0.2)
        assert late.done() is not moved
        renders.gate.set()
        shown = samples(await (await late).text())
        assert (shown[TOTAL_LAG], shown[EVALUATED]) == ((321, NOW + 600) if moved else (2421, NOW))
    assert renders.started == 1 + moved


@pytest.mark.parametrize("max_series", [1_000_000, 12])
async def test_the_cap_gauges_count_the_body_served(
    clusters: dict[str, ClusterRuntime],
    renders: RenderCounter,
    max_series: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings()
    settings = settings.model_copy(
        update={"metrics": settings.metrics.model_copy(update={"max_series": max_series})}
    )
    async with TestClient(TestServer(build_app(clusters, settings))) as test_client:
        text = await (await test_client.get("/metrics")).text()
        await test_client.get("/metrics")
    values = samples(text)
    warned = [r.getMessage() for r in caplog.records if "max_series cap" in r.getMessage()]
    dropped = int(values[("lagwatch_series_dropped", ())])
    assert warned == (
        [f"/metrics: the max_series cap (12) left {dropped} series out; see lagwatch_series_dropped"]
        if max_series == 12
        else []
    )
    data = [
        key for key in values if key[0].startswith(("lagwatch_group", "lagwatch_partition", "lagwatch_topic"))
    ]
    assert values[("lagwatch_series_exposed", ())] == len(data)
    assert values[("lagwatch_series_cap_exceeded", ())] == (max_series < 1_000_000)
    assert (values[("lagwatch_series_dropped", ())] > 0) == (max_series < 1_000_000)


# ------------------------------------------------------------------------------------------------------------
# Web configuration: basic auth, headers, rate limit


def web_app(clusters: Mapping[str, ClusterRuntime], yaml_text: str, **http: Any) -> Any:
    return build_app(clusters, make_settings(**http), parse_web_config(yaml_text, "/"))


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_basic_auth_guards_every_endpoint(clusters: dict[str, ClusterRuntime]) -> None:
    app = web_app(clusters, f"basic_auth_users:\n  alice: '{PASSWORD_HASH}'\n")
    async with TestClient(TestServer(app)) as test_client:
        for path in ("/metrics", "/v3/kafka", "/-/healthy", "/nowhere"):
            response = await test_client.get(path)
            assert response.status == 401
            assert response.headers["WWW-Authenticate"] == "Basic"
        for headers in (basic("alice", "wrong"), basic("mallory", PASSWORD), {"Authorization": "Basic !!"}):
            assert (await test_client.get("/v3/kafka", headers=headers)).status == 401
        for _ in range(2):
            assert (await test_client.get("/v3/kafka", headers=basic("alice", PASSWORD))).status == 200
        assert (await test_client.get("/nowhere", headers=basic("alice", PASSWORD))).status == 404


async def test_delete_authenticates_with_the_token_under_basic_auth(
    clusters: dict[str, ClusterRuntime],
) -> None:
    app = web_app(clusters, f"basic_auth_users:\n  alice: '{PASSWORD_HASH}'\n", admin_token=TOKEN)
    async with TestClient(TestServer(app)) as test_client:
        path = "/v3/kafka/c1/consumer/testgroup2"
        assert (await test_client.delete(path, headers={"Authorization": f"Bearer {TOKEN}"})).status == 200
        assert (await test_client.delete(path, headers=basic("alice", PASSWORD))).status == 401
        assert (await test_client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})).status == 401


async def test_configured_headers_are_on_every_response(clusters: dict[str, ClusterRuntime]) -> None:
    yaml_text = (
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n    X-Content-Type-Options: nosniff\n"
    )
    async with TestClient(TestServer(web_app(clusters, yaml_text))) as test_client:
        for path in ("/metrics", "/v3/kafka", "/nowhere"):
            response = await test_client.get(path)
            assert response.headers["X-Frame-Options"] == "deny"
            assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_rate_limit_answers_429_past_the_burst(clusters: dict[str, ClusterRuntime]) -> None:
    async with TestClient(
        TestServer(web_app(clusters, "rate_limit:\n  interval: 1h\n  burst: 2\n"))
    ) as test_client:
        codes = [(await test_client.get("/-/healthy")).status for _ in range(3)]
    assert codes == [200, 200, 429]


# ------------------------------------------------------------------------------------------------------------
# The server: binding, TLS, the real ClusterRuntime


async def test_server_binds_port_zero_and_stops(clusters: dict[str, ClusterRuntime]) -> None:
    server = HttpServer(clusters, make_settings())
    await server.start()
    try:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        async with aiohttp.ClientSession() as session, session.get(f"{server.url}/-/healthy") as response:
            assert response.status == 200
    finally:
        await server.stop()
    with pytest.raises(RuntimeError):
        _ = server.port


async def test_invalid_web_config_fails_start_with_a_config_error(
    clusters: dict[str, ClusterRuntime], tmp_path: Path
) -> None:
    config = tmp_path / "web.yml"
    config.write_text("basic_auth_users:\n  alice: plaintext\n")
    server = HttpServer(clusters, make_settings(web_config_file=str(config)))
    with pytest.raises(WebConfigError, match=r"^http\.web_config_file: basic_auth_users: .*alice"):
        await server.start()


def openssl_cert(directory: Path, name: str, san: str) -> tuple[Path, Path]:
    """A self-signed certificate and its key, made with the openssl command."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        [
            *(
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
            ),
            *("-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}"),
            *("-addext", f"subjectAltName={san}"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    directory = tmp_path_factory.mktemp("certs")
    openssl_cert(directory, "server", "IP:127.0.0.1,DNS:localhost")
    openssl_cert(directory, "client", "DNS:scraper.example")
    return directory


async def tls_server(clusters: Mapping[str, ClusterRuntime], directory: Path, yaml_text: str) -> HttpServer:
    config = directory / "web.yml"
    config.write_text(yaml_text)
    server = HttpServer(clusters, make_settings(web_config_file=str(config)))
    await server.start()
    return server


def client_context(directory: Path, with_client_cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(directory / "server.pem"))
    if with_client_cert:
        context.load_cert_chain(directory / "client.pem", directory / "client.key")
    return context


async def test_tls_serves_https_only(clusters: dict[str, ClusterRuntime], certs: Path) -> None:
    # Relative paths are relative to the web config file, as in the exporter toolkit.
    server = await tls_server(
        clusters, certs, "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"
    )
    try:
        assert server.url.startswith("https://")
        async with aiohttp.ClientSession() as session:
            context = client_context(certs, with_client_cert=False)
            async with session.get(f"{server.url}/v3/kafka", ssl=context) as response:
                assert response.status == 200
                assert (await response.json())["clusters"] == ["c1", "c2"]
            with pytest.raises(aiohttp.ClientError):
                async with session.get(f"http://127.0.0.1:{server.port}/v3/kafka") as response:
                    await response.read()
    finally:
        await server.stop()


@pytest.mark.parametrize(("sans", "status"), [("['scraper.example']", 200), ("['other.example']", 403)])
async def test_tls_client_certificates(
    clusters: dict[str, ClusterRuntime], certs: Path, sans: str, status: int
) -> None:
    server = await tls_server(
        clusters,
        certs,
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client.pem\n"
        f"  client_allowed_sans: {sans}\n",
    )
    try:
        async with aiohttp.ClientSession() as session:
            url = f"{server.url}/-/healthy"
            async with session.get(url, ssl=client_context(certs, with_client_cert=True)) as response:
                assert response.status == status
            with pytest.raises(aiohttp.ClientError):
                async with session.get(url, ssl=client_context(certs, with_client_cert=False)) as response:
                    await response.read()
    finally:
        await server.stop()


async def test_the_apps_cluster_runtime_is_a_cluster_handle() -> None:
    settings = make_settings()
    runtime = ClusterRuntime("c1", settings, settings.clusters["c1"], clock=lambda: NOW)
    runtime.storage.set_topics({"testtopic": 1}, NOW_MS)
    runtime.storage.add_head_offset("testtopic", 0, 4321, NOW_MS)
    runtime.storage.apply(OffsetCommit("g", "testtopic", 0, 4000, NOW_MS), 1, NOW_MS)
    # Neither the committed offsets nor the HEAD offsets are in: nothing is evaluated, nothing listed.
    await runtime.evaluate()
    async with TestClient(TestServer(build_app({"c1": runtime}, settings))) as test_client:
        response = await test_client.get("/-/ready")
        assert (response.status, await response.text()) == (
            503,
            "lagwatch is not ready.\ncluster c1: still reading the committed offsets (0 records so far)\n",
        )
        assert (await get_json(test_client, "/v3/kafka/c1/consumer"))["consumers"] == []
        await get_json(test_client, "/v3/kafka/c1/consumer/g/lag", 404)
        runtime.offsets.progress.caught_up = True
        runtime.head.health.rounds = 1
        await runtime.evaluate()
        assert (await test_client.get("/-/ready")).status == 200
        assert (await get_json(test_client, "/v3/kafka/c1/consumer"))["consumers"] == ["g"]
        lag = await get_json(test_client, "/v3/kafka/c1/consumer/g/lag")
        assert lag["status"]["totallag"] == 321
        values = samples(await (await test_client.get("/metrics")).text())
    assert values["lagwatch_cluster_up", (("kafka_cluster", "c1"),)] == 0
    assert values["lagwatch_offsets_caught_up", (("kafka_cluster", "c1"),)] == 1


async def test_a_runtime_filled_by_hand_serves_what_it_evaluated() -> None:
    def fill(storage: Storage) -> None:
        storage.set_topics({"testtopic": 1}, NOW_MS)
        storage.add_head_offset("testtopic", 0, 4321, NOW_MS)
        storage.apply(OffsetCommit("g", "testtopic", 0, 4000, NOW_MS), 1, NOW_MS)

    settings = read_side_settings()
    runtime = ClusterRuntime.filled("c1", settings, fill, clock=lambda: NOW)
    assert not runtime.ready
    assert runtime.statuses() == {}
    await runtime.evaluate_now()
    assert runtime.ready
    async with TestClient(TestServer(build_app({"c1": runtime}, settings))) as test_client:
        assert (await get_json(test_client, "/v3/kafka/c1/consumer"))["consumers"] == ["g"]
        detail = await get_json(test_client, "/v3/kafka/c1/consumer/g")
        # Stored as current, not as a replayed commit whose HEAD of the moment is unknown: its lag is known,
        # and a window whose every lag is known and above zero while the offset stands still is a STALL.
        assert [c["lag"] for c in detail["topics"]["testtopic"][0]["offsets"] if c] == [321]
        lag = await get_json(test_client, "/v3/kafka/c1/consumer/g/lag")
        assert (lag["status"]["status"], lag["status"]["totallag"]) == ("ERR", 321)
        assert lag["status"]["partitions"][0]["status"] == "STALL"


async def test_runbooks_page_has_a_section_for_every_alert(client: TestClient[Any, Any]) -> None:
    response = await client.get("/runbooks")
    page = await response.text()
    assert response.status == 200
    assert response.content_type == "text/html"
    for alert in ("LagwatchGroupErr", "LagwatchPartitionsStopped", "LagwatchClusterUnreachable"):
        assert f'<section id="{alert.lower()}">' in page
