"""The admin-API source: parity with the offsets-topic source against a real Kafka, and its handling of
broker errors against a scripted client (a real broker will not produce a loading coordinator on demand).

Parity: the same groups (classic, assign-only and new-protocol), read by both sources into two storages, give
the same current committed offsets, also after Kafka's admin tool deleted a group and a group's offsets for a
topic.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaError
from aiokafka.protocol.admin import DescribeGroupsRequest, DescribeGroupsRequest_v0, ListGroupsRequest
from aiokafka.protocol.commit import OffsetFetchRequest, OffsetFetchRequest_v3
from aiokafka.protocol.metadata import MetadataRequest
from test_offsets_topic import (
    CONSUMER_GROUP_COMMAND,
    classic_member,
    commit,
    commit_alone,
    eventually,
    kip848_member,
    lagwatch,
    newest_offsets,
    owners,
    snapshot,
    windows,
)

from exporter.core.model import GroupMetadata, OffsetCommit, OffsetTombstone, TopicPartitions
from exporter.core.storage import Storage
from exporter.settings import ClusterSettings
from exporter.sources.admin_api import AdminApiSource
from tests.kafka_cluster import KafkaTool, NewTopicFactory, Produce, unique_name
from tests.unit.offsets_encoder import consumer_protocol_assignment

NOW_S = 1_800_000_000.0
COORDINATOR_LOAD_IN_PROGRESS = 14
NOT_COORDINATOR = 16
GROUP_AUTHORIZATION_FAILED = 30


async def test_both_sources_report_the_same_committed_offsets(
    kafka_bootstrap: str,
    kafka_client_host: str,
    kafka_tool: KafkaTool,
    new_topic: NewTopicFactory,
    produce: Produce,
) -> None:
    shared, other = await new_topic(2), await new_topic(1)
    await produce(shared, [5, 5])
    await produce(other, [2])
    classic, loner, kip848 = unique_name("it-classic"), unique_name("it-loner"), unique_name("it-kip848")
    expected = {
        classic: {(shared, 0): 3, (shared, 1): 4, (other, 0): 1},
        loner: {(shared, 0): 5},
        kip848: {(other, 0): 2},
    }
    started = int(time.time() * 1000)
    async with lagwatch(kafka_bootstrap) as topic_source, lagwatch(kafka_bootstrap, AdminApiSource) as admin:
        await eventually(lambda: admin.storage.head_offsets(other) == (2,), "metadata")
        async with classic_member(kafka_bootstrap, classic, [shared, other], "it-admin-1", 3) as member:
            for topic, partition, offset in ((shared, 0, 3), (shared, 1, 4), (other, 0, 1)):
                await commit(member, topic, partition, offset)
            await commit_alone(kafka_bootstrap, loner, shared, 0, 5)
            async with kip848_member(kafka_bootstrap, other, kip848, "it-admin-kip848", messages=2):
                pass
            await _settled(topic_source.storage, expected)
            await _settled(admin.storage, expected)
            # Membership of classic groups comes from DescribeGroups.
            owner = (kafka_client_host, "it-admin-1")
            await eventually(lambda: set(owners(admin.storage, classic).values()) == {owner}, "owners")
            assert owners(admin.storage, classic) == owners(topic_source.storage, classic)
        assert admin.source.progress.caught_up

        # The observation time stands in for the commit timestamp.
        polled = [c for p in snapshot(admin.storage, classic).partitions for c in p.window if c]
        assert all(started <= c.timestamp_ms == c.observed_ms <= time.time() * 1000 for c in polled)

        tool = ("--bootstrap-server", kafka_bootstrap)
        deleted = await asyncio.gather(
            kafka_tool(
                CONSUMER_GROUP_COMMAND, *tool, "--group", classic, "--delete-offsets", "--topic", other
            ),
            kafka_tool(CONSUMER_GROUP_COMMAND, *tool, "--group", loner, "--delete"),
        )
        assert [done.returncode for done in deleted] == [0, 0], [done.stderr for done in deleted]
        expected[loner] = {}
        expected[classic] = {(shared, 0): 3, (shared, 1): 4}
        await _settled(topic_source.storage, expected)
        await _settled(admin.storage, expected)
        assert loner not in admin.storage.groups()
        assert loner not in topic_source.storage.groups()


async def _settled(storage: Storage, expected: dict[str, dict[tuple[str, int], int]]) -> None:
    """Wait until the storage's current committed offsets are `expected`, group by group."""
    await eventually(lambda: {g: newest_offsets(storage, g) for g in expected} == expected, str(expected))


# -----------------------------------------------------------------------------------------------------------
# Scripted broker answers.


@dataclass
class FakeKafka:
    """Answers the admin source's requests from `groups` (group -> protocol type), `offsets` (group ->
    {(topic, partition): offset} or an error code) and `members` (group -> DescribeGroups members)."""

    groups: dict[str, str] = field(default_factory=dict)
    offsets: dict[str, dict[tuple[str, int], int] | int] = field(default_factory=dict)
    members: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    list_error: int = 0
    lookups: list[str] = field(default_factory=list)
    cluster: Any = field(
        default_factory=lambda: SimpleNamespace(
            brokers=lambda: [SimpleNamespace(nodeId=1)], update_metadata=lambda response: None
        )
    )

    def get_random_node(self) -> int:
        return 1

    async def coordinator_lookup(self, coordinator_type: int, group: str) -> int:
        self.lookups.append(group)
        return 1

    async def send(self, node_id: int, request: Any) -> Any:
        if isinstance(request, MetadataRequest):
            return SimpleNamespace()
        if isinstance(request, ListGroupsRequest):
            return SimpleNamespace(error_code=self.list_error, groups=list(self.groups.items()))
        if isinstance(request, OffsetFetchRequest):
            answer = self.offsets[request.build(OffsetFetchRequest_v3).consumer_group]
            if isinstance(answer, int):
                return SimpleNamespace(error_code=answer, topics=[])
            topics: dict[str, list[tuple[int, int, str, int]]] = {}
            for (topic, partition), offset in sorted(answer.items()):
                topics.setdefault(topic, []).append((partition, offset, "", 0))
            return SimpleNamespace(error_code=0, topics=list(topics.items()))
        if isinstance(request, DescribeGroupsRequest):
            (group,) = request.build(DescribeGroupsRequest_v0).groups
            members = self.members.get(group, [])
            return SimpleNamespace(groups=[(0, group, "Stable", "consumer", "range", members)])
        raise AssertionError(f"unexpected request {request!r}")


def _source(storage: Storage, clock: list[float]) -> AdminApiSource:
    cluster = ClusterSettings(bootstrap_servers="127.0.0.1:1", offset_refresh=1.0)
    return AdminApiSource("fake", cluster, storage, clock=lambda: clock[0])


def _member(
    member_id: str, client_id: str, host: str, assigned: Sequence[TopicPartitions]
) -> tuple[Any, ...]:
    return (member_id, client_id, host, b"", consumer_protocol_assignment(assigned))


async def test_each_poll_is_one_observed_commit_per_partition_with_classic_owners() -> None:
    storage, clock = Storage("fake", intervals=3), [NOW_S]
    kafka = FakeKafka(
        groups={"g": "consumer", "loner": ""},
        offsets={"g": {("t", 0): 5, ("t", 1): 7}, "loner": {("u", 0): 1}},
        members={"g": [_member("m-1", "client-1", "/10.0.0.1", [TopicPartitions("t", (0, 1))])]},
    )
    source = _source(storage, clock)
    await source.poll(kafka)
    clock[0] += 10
    kafka.offsets["g"] = {("t", 0): 6, ("t", 1): 7}
    await source.poll(kafka)

    assert windows(storage, "g") == {
        ("t", 0): [(5, 1, 1_800_000_000_000), (6, 5, 1_800_000_010_000)],
        ("t", 1): [(7, 2, 1_800_000_000_000), (7, 6, 1_800_000_010_000)],
    }
    assert owners(storage, "g") == {("t", 0): ("/10.0.0.1", "client-1"), ("t", 1): ("/10.0.0.1", "client-1")}
    # No DescribeGroups for a group of another protocol type; its offsets are polled all the same.
    assert windows(storage, "loner") == {("u", 0): [(1, 4, 1_800_000_000_000), (1, 8, 1_800_000_010_000)]}
    assert kafka.lookups == ["g", "loner"]
    assert source.progress.caught_up
    assert dict(source.progress.records) == {OffsetCommit: 6, GroupMetadata: 2}


async def test_offsets_and_groups_that_are_gone_are_removed() -> None:
    storage, clock = Storage("fake"), [NOW_S]
    kafka = FakeKafka(
        groups={"g": "", "h": ""}, offsets={"g": {("t", 0): 5, ("u", 0): 1}, "h": {("t", 0): 2}}
    )
    source = _source(storage, clock)
    await source.poll(kafka)
    kafka.offsets["g"] = {("t", 0): 6}
    del kafka.groups["h"]
    await source.poll(kafka)
    assert newest_offsets(storage, "g") == {("t", 0): 6}
    assert storage.groups() == ["g"]
    assert dict(source.progress.records) == {OffsetCommit: 4, OffsetTombstone: 1}


@pytest.mark.parametrize("error", [COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR])
async def test_a_group_level_error_keeps_the_windows_and_looks_the_coordinator_up_again(error: int) -> None:
    storage, clock = Storage("fake"), [NOW_S]
    kafka = FakeKafka(groups={"g": ""}, offsets={"g": {("t", 0): 5, ("t", 1): 7}})
    source = _source(storage, clock)
    await source.poll(kafka)
    kept = windows(storage, "g")
    # aiokafka's admin client returns {} for this answer: read as "no offsets", every window would go.
    kafka.offsets["g"] = error
    await source.poll(kafka)
    assert windows(storage, "g") == kept
    assert sum(source.progress.poll_errors.values()) == 1
    kafka.offsets["g"] = {("t", 0): 6, ("t", 1): 7}
    await source.poll(kafka)
    assert newest_offsets(storage, "g") == {("t", 0): 6, ("t", 1): 7}
    assert kafka.lookups == ["g", "g"]


async def test_readiness_waits_for_retriable_errors_but_not_for_refusals() -> None:
    storage, clock = Storage("fake"), [NOW_S]
    kafka = FakeKafka(
        groups={"g": "", "secret": ""},
        offsets={"g": COORDINATOR_LOAD_IN_PROGRESS, "secret": GROUP_AUTHORIZATION_FAILED},
    )
    source = _source(storage, clock)
    await source.poll(kafka)
    assert not source.progress.caught_up
    kafka.offsets["g"] = {("t", 0): 1}
    await source.poll(kafka)
    assert source.progress.caught_up
    assert dict(source.progress.poll_errors) == {
        "GroupLoadInProgressError": 1,
        "GroupAuthorizationFailedError": 2,
    }


async def test_a_failed_group_listing_deletes_nothing() -> None:
    storage, clock = Storage("fake"), [NOW_S]
    kafka = FakeKafka(groups={"g": ""}, offsets={"g": {("t", 0): 5}})
    source = _source(storage, clock)
    await source.poll(kafka)
    kafka.list_error = COORDINATOR_LOAD_IN_PROGRESS
    kafka.groups.clear()
    with pytest.raises(KafkaError):
        await source.poll(kafka)
    assert newest_offsets(storage, "g") == {("t", 0): 5}
