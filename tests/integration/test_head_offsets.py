"""HeadPoller against a real broker: exact HEAD offsets, topic ids, deleted topics, added partitions, an
outage, and prompt cancellation. The last tests script the client instead, for what one broker cannot show:
a partition without a leader, a partition its leader refuses, and a topic listed with an error."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions

from exporter.core.filters import NameFilter
from exporter.core.retention import TopicRetention
from exporter.core.storage import Storage
from exporter.settings import ClusterSettings
from exporter.sources import cluster as cluster_module
from exporter.sources.cluster import HeadPoller
from exporter.sources.kafka_client import Topology
from tests.kafka_cluster import KafkaNode, KafkaTool, NewTopicFactory, Produce

_LOGGER = "exporter.sources.cluster"
_INTERVALS = 3


class _Storage(Storage):
    """The real storage, also remembering the last topic id map it was handed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("test", intervals=_INTERVALS, **kwargs)
        self.topic_ids: dict[str, str] = {}

    def set_topic_ids(self, ids: Mapping[str, str], now_ms: int) -> None:
        super().set_topic_ids(ids, now_ms)
        self.topic_ids = dict(ids)


@dataclass
class _Running:
    poller: HeadPoller
    storage: _Storage
    task: asyncio.Task[None]


def _settings(bootstrap: str, request_timeout: float = 5.0) -> ClusterSettings:
    return ClusterSettings(
        bootstrap_servers=(bootstrap,), offset_refresh=0.3, topic_refresh=0.8, request_timeout=request_timeout
    )


@contextlib.asynccontextmanager
async def _poller(settings: ClusterSettings, storage: _Storage | None = None) -> AsyncIterator[_Running]:
    storage = storage or _Storage()
    poller = HeadPoller("test", settings, storage)
    task = asyncio.create_task(poller.run())
    try:
        yield _Running(poller, storage, task)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _eventually(condition: Callable[[], object], what: str, within_s: float = 20.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within_s} s: {what}")
        await asyncio.sleep(0.05)


async def _rounds(poller: HeadPoller, count: int) -> None:
    target = poller.health.rounds + count
    await _eventually(lambda: poller.health.rounds >= target, f"{count} more rounds")


async def _cancel_time(task: asyncio.Task[None]) -> float:
    started = time.monotonic()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    return time.monotonic() - started


@pytest.fixture
async def running(kafka_bootstrap: str) -> AsyncIterator[_Running]:
    async with _poller(_settings(kafka_bootstrap)) as running:
        await _eventually(lambda: running.poller.health.up, "the poller reaches the broker")
        yield running


# ------------------------------------------------------------------------------------------------------------
# Against the broker


async def test_head_offsets_are_exactly_the_produced_counts(
    running: _Running, new_topic: NewTopicFactory, produce: Produce
) -> None:
    storage = running.storage
    topic = await new_topic(3)
    await produce(topic, [3, 5, 7])
    await _eventually(lambda: storage.head_offsets(topic) == (3, 5, 7), "HEAD offsets 3, 5, 7")

    await produce(topic, {0: 2, 2: 1})
    await _eventually(lambda: storage.head_offsets(topic) == (5, 5, 8), "HEAD offsets 5, 5, 8")

    before_ms = int(time.time() * 1000)
    await _rounds(running.poller, _INTERVALS)
    history = storage.head_history(topic, 0)
    assert [offset for offset, _ in history] == [5] * _INTERVALS
    observed = [observed_ms for _, observed_ms in history]
    assert observed == sorted(set(observed))
    assert before_ms <= observed[0] <= observed[-1] <= int(time.time() * 1000)


async def test_topic_ids_are_those_kafka_reports(
    running: _Running, kafka_bootstrap: str, new_topic: NewTopicFactory, kafka_tool: KafkaTool
) -> None:
    topic = await new_topic(1)
    described = await kafka_tool(
        "topics", "--bootstrap-server", kafka_bootstrap, "--describe", "--topic", topic
    )
    assert described.returncode == 0, described.stderr
    match = re.search(r"TopicId: (\S+)", described.stdout)
    assert match is not None, described.stdout
    await _eventually(lambda: running.storage.topic_ids.get(match[1]) == topic, f"topic id {match[1]}")


async def test_the_cluster_id_is_the_one_kafka_reports(
    running: _Running, kafka_bootstrap: str, kafka_tool: KafkaTool
) -> None:
    reported = await kafka_tool(
        "org.apache.kafka.tools.ClusterTool", "cluster-id", "--bootstrap-server", kafka_bootstrap
    )
    assert reported.returncode == 0, reported.stderr
    match = re.search(r"Cluster ID: (\S+)", reported.stdout)
    assert match is not None, reported.stdout
    await _eventually(lambda: running.poller.health.cluster_id == match[1], f"cluster id {match[1]}")


async def test_a_deleted_topic_leaves_the_store(
    running: _Running, kafka_admin: AIOKafkaAdminClient, new_topic: NewTopicFactory, produce: Produce
) -> None:
    kept, deleted = await new_topic(1), await new_topic(2)
    await produce(kept, [1])
    await produce(deleted, [2, 3])
    await _eventually(
        lambda: running.storage.head_offsets(deleted) == (2, 3), "the topic to delete is polled"
    )

    await kafka_admin.delete_topics([deleted])
    await _eventually(lambda: deleted not in running.storage.topics(), "the deleted topic leaves the store")
    await _rounds(running.poller, 2)
    assert running.storage.head_offsets(deleted) is None
    assert running.storage.head_offsets(kept) == (1,)


async def test_added_partitions_appear(
    running: _Running, kafka_admin: AIOKafkaAdminClient, new_topic: NewTopicFactory, produce: Produce
) -> None:
    storage = running.storage
    topic = await new_topic(1)
    await produce(topic, [2])
    await _eventually(lambda: storage.head_offsets(topic) == (2,), "HEAD offset 2")

    await kafka_admin.create_partitions({topic: NewPartitions(3)})
    await _eventually(lambda: storage.partition_count(topic) == 3, "three partitions")
    await produce(topic, {2: 4})
    await _eventually(lambda: storage.head_offsets(topic) == (2, 0, 4), "HEAD offsets 2, 0, 4")


async def test_an_outage_marks_the_cluster_down_once_and_it_recovers_by_itself(
    running: _Running,
    kafka_node: KafkaNode,
    new_topic: NewTopicFactory,
    produce: Produce,
    caplog: pytest.LogCaptureFixture,
) -> None:
    poller, storage = running.poller, running.storage
    topic = await new_topic(2)
    await produce(topic, [4, 1])
    await _eventually(lambda: storage.head_offsets(topic) == (4, 1), "HEAD offsets 4, 1")
    caplog.set_level(logging.INFO, logger=_LOGGER)

    await kafka_node.stop()
    await _eventually(lambda: not poller.health.up, "the cluster is marked down")
    failures = poller.health.failures
    await _eventually(lambda: poller.health.failures >= failures + 4, "four more failed attempts")
    assert not running.task.done()
    assert not poller.health.up
    assert poller.health.last_error
    assert storage.head_offsets(topic) == (4, 1)

    await kafka_node.start()
    await produce(topic, {1: 2})
    await _eventually(lambda: storage.head_offsets(topic) == (4, 3), "HEAD offsets 4, 3 after the restart")
    # A leader's late answer can store a HEAD before the round that marks the cluster up has ended.
    await _eventually(lambda: poller.health.up, "the cluster marked up again")
    assert poller.health.last_error == ""
    ours = [
        (r.levelno, r.getMessage()) for r in caplog.records if r.name == _LOGGER and r.levelno >= logging.INFO
    ]
    assert [level for level, _ in ours] == [logging.WARNING, logging.INFO], ours
    assert ours[0][1].startswith("cluster test: unreachable (")
    assert ours[1][1] == "cluster test: connected, HEAD offsets are being refreshed"


async def test_cancel_is_prompt_while_kafka_is_up(running: _Running) -> None:
    await _rounds(running.poller, 1)
    assert await _cancel_time(running.task) < 2.0


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers, so every request waits for its timeout."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("port_fixture", ["closed_port", "silent_port"])
async def test_cancel_is_prompt_while_kafka_is_away(
    port_fixture: str, request: pytest.FixtureRequest
) -> None:
    port = request.getfixturevalue(port_fixture)
    async with _poller(_settings(f"127.0.0.1:{port}", request_timeout=30.0)) as running:
        await asyncio.sleep(0.7)
        assert not running.task.done()
        assert not running.poller.health.up
        assert await _cancel_time(running.task) < 2.0


# ------------------------------------------------------------------------------------------------------------
# Against a scripted client


@dataclass
class _Script:
    """What the fake cluster answers: a topology per metadata request (the last one repeats), HEAD offsets,
    and partitions whose leader answers with an error code."""

    topologies: list[Topology]
    heads: dict[tuple[str, int], int]
    refused: dict[tuple[str, int], int] = field(default_factory=dict)
    metadata_requests: int = 0
    offset_requests: list[tuple[int, list[tuple[str, list[int]]]]] = field(default_factory=list)
    """ListOffsets for the latest offsets (HEAD); those for the earliest go to `start_requests`."""
    start_requests: list[tuple[int, list[tuple[str, list[int]]]]] = field(default_factory=list)
    configs: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)
    """DescribeConfigs answers by topic: (error code, entries). With none, no broker is listed to ask."""
    config_requests: list[list[str]] = field(default_factory=list)


@dataclass
class _Configs:
    resources: list[tuple[int, str, int, str, list[tuple[str, str]]]]


@dataclass
class _Broker:
    nodeId: int  # noqa: N815 (aiokafka's name)


@dataclass
class _Offsets:
    topics: list[tuple[str, list[tuple[int, int, int, int]]]]


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> _Script:
    script = _Script([], {})

    class _Cluster:
        def brokers(self) -> list[Any]:
            # Without scripted configs, no broker to ask for DescribeConfigs: retention settings stay unknown.
            return [_Broker(1)] if script.configs else []

    class _Client:
        def __init__(self, **_kwargs: Any) -> None:
            self.cluster = _Cluster()

        async def bootstrap(self) -> None:
            pass

        async def close(self) -> None:
            pass

        async def send(self, leader: int, request: Any) -> _Offsets | _Configs:
            if request.API_KEY == 32:
                asked = [name for _type, name, _names in request.prepare({32: (1, 2)}).resources]
                script.config_requests.append(asked)
                answers = [(name, *script.configs[name]) for name in asked]
                return _Configs(
                    [(code, "", 2, name, list(entries.items())) for name, code, entries in answers]
                )
            prepared = request.prepare({2: (1, 3)})
            asked = [(topic, [p for p, _ in partitions]) for topic, partitions in prepared.topics]
            earliest = any(ts == -2 for _, partitions in prepared.topics for _, ts in partitions)
            (script.start_requests if earliest else script.offset_requests).append((leader, asked))
            return _Offsets(
                [
                    (
                        topic,
                        [
                            (
                                p,
                                script.refused.get((topic, p), 0),
                                -1,
                                0 if earliest else script.heads[topic, p],
                            )
                            for p in ps
                        ],
                    )
                    for topic, ps in asked
                ]
            )

    async def fetch_topology(_client: Any, **_kwargs: Any) -> Topology:
        script.metadata_requests += 1
        return script.topologies[min(script.metadata_requests, len(script.topologies)) - 1]

    monkeypatch.setattr(cluster_module, "BackoffClient", _Client)
    monkeypatch.setattr(cluster_module, "fetch_topology", fetch_topology)
    return script


def _scripted_settings(topic_refresh: float = 3600.0) -> ClusterSettings:
    # By default topic_refresh is long: every metadata request after the first is one the poller forced.
    return ClusterSettings(
        bootstrap_servers=("scripted:9092",), offset_refresh=0.05, topic_refresh=topic_refresh
    )


async def test_a_leaderless_partition_is_skipped_and_metadata_refreshed_until_it_has_one(
    script: _Script,
) -> None:
    script.topologies = [Topology({"t": (1, -1)}), Topology({"t": (1, -1)}), Topology({"t": (1, 2)})]
    script.heads = {("t", 0): 5, ("t", 1): 7}
    async with _poller(_scripted_settings()) as running:
        await _eventually(lambda: running.storage.head_offsets("t") == (5, 7), "HEAD offsets 5, 7")
        assert running.poller.health.up
        assert script.offset_requests[:2] == [(1, [("t", [0])]), (1, [("t", [0])])]
        assert (1, [("t", [0])]) in script.offset_requests[2:]
        assert (2, [("t", [1])]) in script.offset_requests[2:]
        await _rounds(running.poller, 3)
    assert script.metadata_requests == 3


async def test_a_partition_its_leader_refuses_is_skipped_and_metadata_refreshed(script: _Script) -> None:
    script.topologies = [Topology({"t": (1, 1)})]
    script.heads = {("t", 0): 5, ("t", 1): 7}
    script.refused = {("t", 1): 6}  # NOT_LEADER_OR_FOLLOWER
    async with _poller(_scripted_settings()) as running:
        await _eventually(lambda: script.metadata_requests >= 3, "metadata refreshed each round")
        assert running.storage.head_offsets("t") == (5, None)
        script.refused.clear()
        await _eventually(lambda: running.storage.head_offsets("t") == (5, 7), "HEAD offsets 5, 7")
        settled = script.metadata_requests
        await _rounds(running.poller, 3)
        assert script.metadata_requests == settled


async def test_a_topic_listed_with_an_error_is_kept_but_not_polled(script: _Script) -> None:
    script.topologies = [
        Topology({"a": (1,), "b": (1, 1)}),
        Topology({"a": (1,)}, failed=frozenset({"b"})),
    ]
    script.heads = {("a", 0): 3, ("b", 0): 1, ("b", 1): 2}
    storage = _Storage()
    async with _poller(_scripted_settings(topic_refresh=0.1), storage):
        await _eventually(lambda: script.metadata_requests >= 4, "four metadata requests")
    assert storage.topics() == ["a", "b"]
    assert storage.partition_count("b") == 2
    assert storage.head_offsets("b") == (1, 2)
    assert script.offset_requests[0] == (1, [("a", [0]), ("b", [0, 1])])
    assert script.offset_requests[-1] == (1, [("a", [0])])


async def test_topics_the_filter_rejects_are_neither_stored_nor_polled(script: _Script) -> None:
    script.topologies = [
        Topology({"kept": (1,), "skipped": (1,)}, topic_ids={"id-k": "kept", "id-s": "skipped"})
    ]
    script.heads = {("kept", 0): 4, ("skipped", 0): 9}
    storage = _Storage(topic_filter=NameFilter(None, "^skipped$"))
    async with _poller(_scripted_settings(), storage) as running:
        await _eventually(lambda: storage.head_offsets("kept") == (4,), "HEAD offset 4")
        await _rounds(running.poller, 2)
    assert storage.topics() == ["kept"]
    assert all(asked == [("kept", [0])] for _leader, asked in script.offset_requests)
    # Log starts: the same partitions in a second request per leader, each time.
    assert script.start_requests == script.offset_requests[: len(script.start_requests)]
    assert len(script.start_requests) >= len(script.offset_requests) - 1
    assert storage.start_offsets("kept") == (0,)
    assert storage.topic_ids == {"id-k": "kept", "id-s": "skipped"}


async def test_retention_settings_come_with_each_metadata_refresh_and_a_refusal_is_logged_once(
    script: _Script, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=_LOGGER)
    script.topologies = [Topology({"kept": (1,), "secret": (1,)})]
    script.heads = {("kept", 0): 4, ("secret", 0): 9}
    script.configs = {
        "kept": (0, {"cleanup.policy": "delete", "retention.ms": "3600000", "retention.bytes": "-1"}),
        "secret": (29, {}),  # TOPIC_AUTHORIZATION_FAILED: no DescribeConfigs permission
    }
    storage = _Storage()
    async with _poller(_scripted_settings(topic_refresh=0.1), storage):
        await _eventually(lambda: len(script.config_requests) >= 3, "three metadata refreshes")
    assert storage.topic_retention("kept") == TopicRetention(True, False, 3_600_000, None)
    assert storage.topic_retention("secret") is None
    # One batched request per refresh, with every topic.
    assert all(sorted(asked) == ["kept", "secret"] for asked in script.config_requests)
    warnings = [r.getMessage() for r in caplog.records if r.name == _LOGGER and r.levelno == logging.WARNING]
    assert warnings == [
        "cluster test: DescribeConfigs refused for 1 topic(s) (TopicAuthorizationFailedError): no retention "
        "headroom in seconds for them"
    ]
