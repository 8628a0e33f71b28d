"""The offsets-topic source against a real Kafka 4.x, next to a real HEAD poller on the same storage.

Groups commit known offsets (aiokafka for classic groups, Kafka's own console consumer for the new protocol);
the stored windows must hold exactly those commits, in `__consumer_offsets` order, with the commit timestamps
that Kafka's own `OffsetsMessageFormatter` reports. Deletions through Kafka's admin tool, a restart from the
earliest offset, transactions, `start_latest` and malformed records are covered too. Kafka refuses writes to
`__consumer_offsets`, so malformed records go to a topic of the test's own, named as the offsets topic.

The helpers at the top are shared with test_admin_api.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from exporter.core.model import DecodeError, GroupSnapshot, OffsetCommit, SkippedRecord
from exporter.core.storage import Storage
from exporter.settings import ClusterSettings
from exporter.sources.cluster import HeadPoller
from exporter.sources.offsets_topic import OffsetsTopicSource
from exporter.sources.progress import SourceProgress
from tests.kafka_cluster import (
    KAFKA_LOCAL,
    KafkaNode,
    KafkaTool,
    NewTopicFactory,
    Produce,
    create_topic,
    unique_name,
)
from tests.unit.offsets_encoder import encode, group_key, offset_commit_key

INTERVALS = 5
FAST = {"offset_refresh": 0.3, "topic_refresh": 0.5}
DEADLINE_S = 30.0
CONSUMER_GROUP_COMMAND = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"
OFFSETS_FORMATTER = "org.apache.kafka.tools.consumer.OffsetsMessageFormatter"

Slot = tuple[int, int, int]
"""A stored commit as (offset, order, commit timestamp ms): what a restart must reproduce."""
KafkaCommit = tuple[str, int, int, int]
"""A commit as Kafka's formatter prints it: (topic, partition, offset, commit timestamp ms)."""


class Source(Protocol):
    progress: SourceProgress

    async def run(self) -> None: ...


@dataclass
class Lagwatch:
    storage: Storage
    source: Source
    head: HeadPoller


@asynccontextmanager
async def lagwatch(
    bootstrap: str,
    source: Callable[[str, ClusterSettings, Storage], Source] = OffsetsTopicSource,
    **settings: Any,
) -> AsyncIterator[Lagwatch]:
    """One cluster of lagwatch as the app builds it: a storage fed by a HEAD poller and `source`."""
    cluster = ClusterSettings(bootstrap_servers=bootstrap, **{**FAST, **settings})
    storage = Storage("it", intervals=INTERVALS)
    running = Lagwatch(storage, source("it", cluster, storage), HeadPoller("it", cluster, storage))
    tasks = [asyncio.create_task(running.head.run()), asyncio.create_task(running.source.run())]
    try:
        yield running
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def eventually(check: Callable[[], object], what: str, within: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {within:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


def _now_ms() -> int:
    return int(time.time() * 1000)


def windows(storage: Storage, group: str) -> dict[tuple[str, int], list[Slot]]:
    """Every stored commit of the group by partition, oldest first; {} for an unknown group."""
    snapshot = storage.group_snapshot(group, _now_ms())
    if snapshot is None:
        return {}
    return {
        (p.topic, p.partition): [(c.offset, c.order, c.timestamp_ms) for c in p.window if c is not None]
        for p in snapshot.partitions
    }


def newest_offsets(storage: Storage, group: str) -> dict[tuple[str, int], int]:
    """The current committed offset of every partition that has one."""
    return {tp: slots[-1][0] for tp, slots in windows(storage, group).items() if slots}


def owners(storage: Storage, group: str) -> dict[tuple[str, int], tuple[str, str]]:
    snapshot = storage.group_snapshot(group, _now_ms())
    if snapshot is None:
        return {}
    return {(p.topic, p.partition): (p.owner, p.client_id) for p in snapshot.partitions}


def snapshot(storage: Storage, group: str) -> GroupSnapshot:
    found = storage.group_snapshot(group, _now_ms())
    assert found is not None, f"group {group} is not stored"
    return found


@asynccontextmanager
async def classic_member(
    bootstrap: str, group: str, topics: Sequence[str], client_id: str, partitions: int
) -> AsyncIterator[AIOKafkaConsumer]:
    """An aiokafka consumer subscribed to `topics` in `group`, yielded once it owns all `partitions`; it
    leaves the group when the block ends."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, client_id=client_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.subscribe(list(topics))
        deadline = time.monotonic() + DEADLINE_S
        while len(consumer.assignment()) < partitions:
            assert time.monotonic() < deadline, f"{client_id} got no assignment in {group}"
            await consumer.getmany(timeout_ms=100)
        yield consumer
    finally:
        await consumer.stop()


async def commit(consumer: AIOKafkaConsumer, topic: str, partition: int, offset: int) -> tuple[int, int]:
    """Commit one offset; returns the wall-clock interval of the call in ms, which holds the broker's
    commit timestamp (same machine, same clock)."""
    before = time.time()
    await consumer.commit({TopicPartition(topic, partition): offset})
    return int(before * 1000), int(time.time() * 1000)


async def commit_alone(bootstrap: str, group: str, topic: str, partition: int, offset: int) -> None:
    """Commit as a group without members (assign(), no subscription: protocol type "" in Kafka); retried
    while a restarted coordinator loads its partitions."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, partition)])
        deadline = time.monotonic() + DEADLINE_S
        while True:
            try:
                await commit(consumer, topic, partition, offset)
                return
            except KafkaError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
    finally:
        await consumer.stop()


@asynccontextmanager
async def kip848_member(
    bootstrap: str, topic: str, group: str, client_id: str, messages: int
) -> AsyncIterator[None]:
    """Kafka's console consumer in `group` with the new protocol (`group.protocol=consumer`), yielded once it
    printed `messages` records; at the end of the block SIGTERM makes it commit, leave the group and exit."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(KAFKA_LOCAL),
        "tool",
        CONSOLE_CONSUMER,
        *("--bootstrap-server", bootstrap, "--topic", topic, "--group", group, "--from-beginning"),
        *("--consumer-property", "group.protocol=consumer"),
        *("--consumer-property", f"client.id={client_id}"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        for _ in range(messages):
            assert await asyncio.wait_for(process.stdout.readline(), DEADLINE_S), "console consumer ended"
        yield
    finally:
        if process.returncode is None:
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), DEADLINE_S)
        except TimeoutError:
            process.kill()
            await process.wait()


def offsets_partition(group: str, partitions: int) -> int:
    """The `__consumer_offsets` partition of a group: Kafka's abs(String.hashCode) mod the partition count."""
    code = 0
    for unit in re.findall(b"..", group.encode("utf-16-be"), re.DOTALL):
        code = (31 * code + int.from_bytes(unit, "big")) & 0xFFFFFFFF
    signed = code - (1 << 32) if code >= 1 << 31 else code
    return (0 if signed == -(1 << 31) else abs(signed)) % partitions


async def kafka_commits(
    kafka_tool: KafkaTool, bootstrap: str, storage: Storage, group: str
) -> list[KafkaCommit]:
    """The group's offset commits in log order, as Kafka's own formatter of `__consumer_offsets` prints
    them."""
    count = storage.partition_count("__consumer_offsets")
    assert count, "the HEAD poller has not seen __consumer_offsets"
    printed = await kafka_tool(
        CONSOLE_CONSUMER,
        *("--bootstrap-server", bootstrap, "--topic", "__consumer_offsets"),
        *("--partition", str(offsets_partition(group, count)), "--offset", "earliest"),
        # The tool exits once no record came for this long: on a busy machine its first fetch alone can take
        # more than a second or two, and an early exit reads as "no commits".
        *("--formatter", OFFSETS_FORMATTER, "--timeout-ms", "8000"),
    )
    found: list[KafkaCommit] = []
    text, position, decoder = printed.stdout, 0, json.JSONDecoder()
    while (start := text.find("{", position)) >= 0:
        record, position = decoder.raw_decode(text, start)
        key, value = record["key"]["data"], record.get("value")
        if record["key"]["type"] in (0, 1) and key["group"] == group and isinstance(value, dict):
            data = value["data"]
            found.append((key["topic"], key["partition"], data["offset"], data["commitTimestamp"]))
    return found


# -----------------------------------------------------------------------------------------------------------


async def test_classic_group_windows_hold_its_commits_in_log_order_with_kafka_timestamps_and_owners(
    kafka_bootstrap: str,
    kafka_client_host: str,
    kafka_tool: KafkaTool,
    new_topic: NewTopicFactory,
    produce: Produce,
) -> None:
    topic = await new_topic(2)
    await produce(topic, [6, 6])
    group = unique_name("it-classic")
    plan = [(0, 1), (0, 2), (1, 2), (0, 3), (0, 4), (1, 5), (0, 5), (0, 6)]
    async with lagwatch(kafka_bootstrap) as lw:
        await eventually(lambda: lw.storage.head_offsets(topic) == (6, 6), "HEAD offsets")
        async with classic_member(kafka_bootstrap, group, [topic], "it-client-1", 2) as consumer:
            await eventually(
                lambda: (
                    all(o for o, _ in owners(lw.storage, group).values())
                    and len(owners(lw.storage, group)) == 2
                ),
                "the member's assignment",
            )
            first = snapshot(lw.storage, group).partitions
            assert [(p.partition, p.owner, p.client_id) for p in first] == [
                (0, kafka_client_host, "it-client-1"),
                (1, kafka_client_host, "it-client-1"),
            ]
            assert all(p.member_id.startswith("it-client-1-") for p in first)
            intervals = [await commit(consumer, topic, p, offset) for p, offset in plan]
            await eventually(
                lambda: newest_offsets(lw.storage, group) == {(topic, 0): 6, (topic, 1): 5}, "the commits"
            )
        stored = snapshot(lw.storage, group)
        await eventually(lambda: set(owners(lw.storage, group).values()) == {("", "")}, "owners cleared")
        assert lw.source.progress.caught_up
        logged = await kafka_commits(kafka_tool, kafka_bootstrap, lw.storage, group)

    p0, p1 = stored.partitions
    assert [c.offset if c else None for c in p0.window] == [2, 3, 4, 5, 6]
    assert [c.offset if c else None for c in p1.window] == [None, None, None, 2, 5]
    # Lag when stored: HEAD 6 minus the offset, since the HEAD was known before every commit.
    assert [c.lag for c in p0.window if c] == [4, 3, 2, 1, 0]
    assert [c.lag for c in p1.window if c] == [4, 1]
    assert (p0.current_lag, p1.current_lag) == (0, 1)

    # Kafka logged exactly the planned commits, and the windows keep the newest of them with its timestamps.
    assert [(t, p, offset) for t, p, offset, _ in logged] == [(topic, p, offset) for p, offset in plan]
    for (_, _, _, ts), (before, after) in zip(logged, intervals, strict=True):
        assert before <= ts <= after
    by_partition = {p: [(offset, ts) for _, q, offset, ts in logged if q == p] for p in (0, 1)}
    assert [(c.offset, c.timestamp_ms) for c in p0.window if c] == by_partition[0][-5:]
    assert [(c.offset, c.timestamp_ms) for c in p1.window if c] == by_partition[1]
    assert stored.last_commit_ms == logged[-1][3]

    # Orders are positions in __consumer_offsets: across partitions they replay the commit sequence.
    orders = sorted((c.order, p.partition, c.offset) for p in stored.partitions for c in p.window if c)
    assert [(p, offset) for _, p, offset in orders] == plan[1:]


async def test_new_protocol_group_commits_and_owners_come_from_its_kip848_records(
    kafka_bootstrap: str,
    kafka_client_host: str,
    kafka_tool: KafkaTool,
    new_topic: NewTopicFactory,
    produce: Produce,
) -> None:
    topic = await new_topic(2)
    await produce(topic, [2, 3])
    group = unique_name("it-kip848")
    member = (kafka_client_host, "it-kip848-client")
    async with lagwatch(kafka_bootstrap) as lw:
        progress = lw.source.progress
        await eventually(lambda: progress.caught_up and lw.storage.head_offsets(topic) == (2, 3), "the start")
        started = int(time.time() * 1000)
        async with kip848_member(kafka_bootstrap, topic, group, member[1], messages=5):
            # Owners come from ConsumerGroupMember and ConsumerGroupAssignment records, whose topic ids the
            # HEAD poller's metadata resolves.
            await eventually(
                lambda: owners(lw.storage, group) == {(topic, 0): member, (topic, 1): member}, "owners"
            )
        ended = int(time.time() * 1000)
        # Closing, it commits what it consumed and leaves: ConsumerGroupMemberLeft clears the owners.
        await eventually(
            lambda: (
                newest_offsets(lw.storage, group) == {(topic, 0): 2, (topic, 1): 3}
                and set(owners(lw.storage, group).values()) == {("", "")}
            ),
            "the final commits and the member leaving",
        )
        stored = snapshot(lw.storage, group)
        logged = await kafka_commits(kafka_tool, kafka_bootstrap, lw.storage, group)

    assert {(t, p, offset) for t, p, offset, _ in logged} == {(topic, 0, 2), (topic, 1, 3)}
    for partition in stored.partitions:
        commits = [(offset, ts) for _, p, offset, ts in logged if p == partition.partition]
        assert [(c.offset, c.timestamp_ms) for c in partition.window if c] == commits[-INTERVALS:]
        assert all(started <= ts <= ended for _, ts in commits)
        assert partition.member_id == ""


async def test_deleting_offsets_and_groups_through_kafka_removes_them_for_good(
    kafka_bootstrap: str, kafka_tool: KafkaTool, new_topic: NewTopicFactory
) -> None:
    kept_topic, dropped_topic = await new_topic(1), await new_topic(1)
    deleted, kept = unique_name("it-deleted"), unique_name("it-kept")
    async with lagwatch(kafka_bootstrap) as lw:
        await eventually(lambda: lw.storage.partition_count(dropped_topic) == 1, "metadata")
        async with classic_member(
            kafka_bootstrap, deleted, [kept_topic, dropped_topic], "it-del", 2
        ) as member:
            await commit(member, kept_topic, 0, 3)
            await commit(member, dropped_topic, 0, 4)
        async with classic_member(kafka_bootstrap, kept, [kept_topic], "it-kept", 1) as member:
            await commit(member, kept_topic, 0, 5)
        both = {(kept_topic, 0): 3, (dropped_topic, 0): 4}
        await eventually(lambda: newest_offsets(lw.storage, deleted) == both, "the commits")
        await eventually(lambda: newest_offsets(lw.storage, kept) == {(kept_topic, 0): 5}, "the commits")
        kept_windows = windows(lw.storage, kept)

        command = ("--bootstrap-server", kafka_bootstrap, "--group", deleted)
        done = await kafka_tool(
            CONSUMER_GROUP_COMMAND, *command, "--delete-offsets", "--topic", dropped_topic
        )
        assert done.returncode == 0, done.stderr
        await eventually(
            lambda: newest_offsets(lw.storage, deleted) == {(kept_topic, 0): 3}, "offset tombstones"
        )
        assert [p.topic for p in snapshot(lw.storage, deleted).partitions] == [kept_topic]

        done = await kafka_tool(CONSUMER_GROUP_COMMAND, *command, "--delete")
        assert done.returncode == 0, done.stderr
        await eventually(lambda: deleted not in lw.storage.groups(), "the group tombstone")
        assert lw.storage.group_snapshot(deleted, _now_ms()) is None

    async with lagwatch(kafka_bootstrap) as restarted:
        await eventually(lambda: restarted.source.progress.caught_up, "the replay")
        assert deleted not in restarted.storage.groups()
        assert windows(restarted.storage, kept) == kept_windows


async def test_a_restart_rebuilds_the_same_windows_and_owners_from_the_offsets_topic(
    kafka_bootstrap: str, kafka_client_host: str, new_topic: NewTopicFactory, produce: Produce
) -> None:
    topic = await new_topic(3)
    await produce(topic, [20, 20, 20])
    subscribed, assigned = unique_name("it-restart"), unique_name("it-restart-assign")
    async with lagwatch(kafka_bootstrap) as first:
        await eventually(lambda: first.storage.head_offsets(topic) == (20, 20, 20), "HEAD offsets")
        async with classic_member(kafka_bootstrap, subscribed, [topic], "it-restart", 3) as member:
            for offset in range(1, 9):
                await commit(member, topic, 0, offset)
            await commit(member, topic, 1, 7)
            await commit(member, topic, 1, 9)
            for offset in (11, 12, 15):
                await commit_alone(kafka_bootstrap, assigned, topic, 2, offset)
            expected = {(topic, 0): 8, (topic, 1): 9}
            await eventually(lambda: newest_offsets(first.storage, subscribed) == expected, "the commits")
            await eventually(
                lambda: newest_offsets(first.storage, assigned) == {(topic, 2): 15}, "the commits"
            )
            before = {
                g: (windows(first.storage, g), owners(first.storage, g)) for g in (subscribed, assigned)
            }

            async with lagwatch(kafka_bootstrap) as second:
                await eventually(
                    lambda: (
                        second.source.progress.caught_up
                        and second.storage.head_offsets(topic) == (20, 20, 20)
                    ),
                    "the replay",
                )
                after = {g: (windows(second.storage, g), owners(second.storage, g)) for g in before}

    assert after == before
    slots, owned = before[subscribed]
    assert [offset for offset, _, _ in slots[(topic, 0)]] == [4, 5, 6, 7, 8]
    assert [offset for offset, _, _ in slots[(topic, 1)]] == [7, 9]
    assert slots[(topic, 2)] == []
    assert set(owned.values()) == {(kafka_client_host, "it-restart")}
    assert [offset for offset, _, _ in before[assigned][0][(topic, 2)]] == [11, 12, 15]


async def test_read_committed_keeps_aborted_transactional_commits_out(
    kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    topic = await new_topic(1)
    group = unique_name("it-txn")
    tp = TopicPartition(topic, 0)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=unique_name("it-txn"))
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_offsets_to_transaction({tp: 3}, group)
        await producer.begin_transaction()
        await producer.send_offsets_to_transaction({tp: 9}, group)
        await producer.abort_transaction()
        # The group's partition of __consumer_offsets now ends with a control record (the abort marker):
        # the initial read must still finish.
        async with lagwatch(kafka_bootstrap) as lw:
            await eventually(lambda: lw.source.progress.caught_up, "the replay")
            await eventually(lambda: newest_offsets(lw.storage, group) == {(topic, 0): 3}, "the commit")
            async with producer.transaction():
                await producer.send_offsets_to_transaction({tp: 4}, group)
            await eventually(lambda: newest_offsets(lw.storage, group) == {(topic, 0): 4}, "the commit")
            assert [slot[0] for slot in windows(lw.storage, group)[(topic, 0)]] == [3, 4]
    finally:
        await producer.stop()


async def test_malformed_records_are_counted_logged_once_per_type_and_skipped(
    kafka_bootstrap: str,
    new_topic: NewTopicFactory,
    produce: Produce,
    caplog: pytest.LogCaptureFixture,
) -> None:
    offsets_topic, topic = await new_topic(1), await new_topic(1)
    await produce(topic, [10])
    now = int(time.time() * 1000)
    good = [encode(OffsetCommit("g", topic, 0, offset, now), version) for offset, version in ((5, 3), (7, 4))]
    records: list[tuple[bytes, bytes | None]] = [
        good[0],
        (b"\x00", b"\x00\x03"),  # not even a record type
        (offset_commit_key("g", topic, 0), b"\x00\x03\x00"),  # truncated value
        (offset_commit_key("g", topic, 0), b"\x00\x63" + bytes(30)),  # unknown value version
        (group_key("g"), b"\x00\x03\xff\xff"),  # broken group metadata
        (b"\x00\x63" + bytes(4), b""),  # a record type from the future
        good[1],
    ]
    await _produce_raw(kafka_bootstrap, offsets_topic, records)

    caplog.set_level(logging.WARNING, logger="exporter.sources.offsets_topic")
    async with lagwatch(kafka_bootstrap, offsets_topic=offsets_topic) as lw:
        progress = lw.source.progress
        await eventually(lambda: progress.caught_up and lw.storage.head_offsets(topic) == (10,), "the read")
        await eventually(lambda: newest_offsets(lw.storage, "g") == {(topic, 0): 7}, "the second commit")
        assert dict(progress.records) == {OffsetCommit: 2, DecodeError: 4, SkippedRecord: 1}
        assert dict(progress.decode_errors) == {"unknown": 1, "1": 2, "2": 1}
        assert dict(progress.skipped_types) == {99: 1}
        # Orders are the records' offsets in the topic read, the log order.
        assert windows(lw.storage, "g")[(topic, 0)] == [(5, 0, now), (7, 6, now)]
    malformed = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert len(malformed) == 3
    assert all(f"{offsets_topic}-0 offset" in message for message in malformed)

    # start_latest skips the history: only what is written afterwards is read.
    async with lagwatch(kafka_bootstrap, offsets_topic=offsets_topic, start_latest=True) as latest:
        await eventually(lambda: latest.source.progress.caught_up, "the start")
        later = OffsetCommit("g", topic, 0, 9, now + 1)
        await _produce_raw(kafka_bootstrap, offsets_topic, [encode(later, 3)])
        await eventually(lambda: newest_offsets(latest.storage, "g") == {(topic, 0): 9}, "the new commit")
        assert windows(latest.storage, "g")[(topic, 0)] == [(9, 7, now + 1)]
        assert dict(latest.source.progress.records) == {OffsetCommit: 1}


async def test_an_offsets_topic_created_after_the_start_is_ready_at_once_and_read_from_its_start(
    kafka_bootstrap: str, kafka_admin: AIOKafkaAdminClient, new_topic: NewTopicFactory
) -> None:
    topic, offsets_topic = await new_topic(1), unique_name("it-later-offsets")
    now = int(time.time() * 1000)
    async with lagwatch(kafka_bootstrap, offsets_topic=offsets_topic, start_latest=True) as lw:
        # Nothing existed to catch up on: a cluster where no group ever committed must not stay unready.
        await eventually(lambda: lw.source.progress.caught_up, "readiness")
        await create_topic(kafka_admin, offsets_topic, 1, 1)
        try:
            await _produce_raw(
                kafka_bootstrap, offsets_topic, [encode(OffsetCommit("g", topic, 0, 4, now), 4)]
            )
            await eventually(lambda: newest_offsets(lw.storage, "g") == {(topic, 0): 4}, "the first commit")
        finally:
            await kafka_admin.delete_topics([offsets_topic])


async def _produce_raw(bootstrap: str, topic: str, records: Sequence[tuple[bytes, bytes | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, key=key, value=value, partition=0)
    finally:
        await producer.stop()


async def test_the_source_rides_out_a_broker_restart_without_replaying_the_topic(
    kafka_bootstrap: str, kafka_node: KafkaNode, new_topic: NewTopicFactory
) -> None:
    topic = await new_topic(1)
    group = unique_name("it-broker-restart")
    async with lagwatch(kafka_bootstrap) as lw:
        progress = lw.source.progress
        await eventually(lambda: progress.caught_up and lw.storage.partition_count(topic) == 1, "the start")
        await commit_alone(kafka_bootstrap, group, topic, 0, 1)
        await eventually(lambda: newest_offsets(lw.storage, group) == {(topic, 0): 1}, "the first commit")
        read = progress.records[OffsetCommit]

        await kafka_node.stop()
        await kafka_node.start()
        await commit_alone(kafka_bootstrap, group, topic, 0, 2)
        await eventually(lambda: newest_offsets(lw.storage, group) == {(topic, 0): 2}, "the second commit")
        assert [slot[0] for slot in windows(lw.storage, group)[(topic, 0)]] == [1, 2]
        assert progress.records[OffsetCommit] == read + 1
