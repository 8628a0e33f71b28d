"""Trust outside steady state, through the whole app against a real Kafka (issues #11 and #16): partial data
never raises an alarm, owners of classic groups are never lost, no blind spot at start-up, and a restarted
lagwatch keeps its statuses.

Each test runs a `ClusterRuntime` as `app.run` builds it, restricted by the filters to its own topic and
groups, and samples what the exposition would read (`statuses()`, `groups()`) while Kafka does its part.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from exporter.core.model import Status
from exporter.exposition.server import build_app
from exporter.runtime import ClusterRuntime
from exporter.settings import ClusterSettings, FilterSettings, LagSecondsSettings, Settings
from tests.integration.test_offsets_topic import classic_member
from tests.kafka_cluster import KafkaNode, Produce, create_topic, unique_name

CLUSTER = "it"
DEADLINE_S = 40.0


def _settings(bootstrap: str, prefix: str, state_dir: Path | None = None, **cluster: Any) -> Settings:
    options = {"offset_refresh": 0.5, "topic_refresh": 60.0, "request_timeout": 10.0, **cluster}
    return Settings(
        clusters={CLUSTER: ClusterSettings(bootstrap_servers=(bootstrap,), **options)},
        filters=FilterSettings(topic_allow=f"^{re.escape(prefix)}", group_allow=f"^{re.escape(prefix)}"),
        lag_seconds=LagSecondsSettings(state_dir=str(state_dir or ""), exact_reads=False),
    )


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[ClusterRuntime]:
    """A runtime with its sources running; on exit its state is saved as at shutdown."""
    runtime = ClusterRuntime(CLUSTER, settings, settings.clusters[CLUSTER])
    task = asyncio.create_task(runtime.run())
    try:
        yield runtime
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runtime.save_state()


async def eventually(check: Callable[[], object], what: str, within: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {within:.0f} s waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def topic_of(admin: AIOKafkaAdminClient, name: str, partitions: int = 1) -> AsyncIterator[str]:
    await create_topic(admin, name, partitions, 1)
    try:
        yield name
    finally:
        await admin.delete_topics([name])


@contextlib.asynccontextmanager
async def committer(bootstrap: str, group: str, topic: str) -> AsyncIterator[Callable[[int], Any]]:
    """`await commit(offset)` commits partition 0 of `topic` for `group`, a group without members."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])

    async def commit(offset: int) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            try:
                await consumer.commit({tp: offset})
                return
            except KafkaError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)

    try:
        yield commit
    finally:
        await consumer.stop()


# ------------------------------------------------------------------------------------------------------------
# 1. Partial data never raises an alarm


async def test_a_group_committing_before_the_head_is_known_is_never_warn_or_err(
    kafka_bootstrap: str, kafka_admin: AIOKafkaAdminClient, produce: Produce
) -> None:
    # A long offset_refresh: the topic is created and the group commits between two HEAD rounds, so every
    # commit until the second round is stored with an unknown lag, and the group is behind when the HEAD
    # becomes known. Burrow's rules, which skip unknown lags, call such a window WARN.
    prefix = unique_name("it-partial")
    group = f"{prefix}-g"
    seen: list[tuple[Status, int | None]] = []
    async with running(_settings(kafka_bootstrap, prefix, offset_refresh=4.0)) as runtime:
        await eventually(lambda: runtime.head.health.rounds >= 1, "the first HEAD round")
        async with topic_of(kafka_admin, f"{prefix}-t") as topic:
            await produce(topic, [1000])
            async with committer(kafka_bootstrap, group, topic) as commit:
                offset = 0
                known_rounds = 0
                last_round = runtime.head.health.rounds
                while known_rounds < 3:
                    offset += 10
                    await commit(offset)
                    for _ in range(10):
                        status = runtime.statuses().get(group)
                        if status is not None:
                            seen.append((status.status, status.partitions[0].current_lag))
                        await asyncio.sleep(0.02)
                    if runtime.head.health.rounds > last_round:
                        last_round = runtime.head.health.rounds
                        status = runtime.statuses().get(group)
                        if status is not None and status.partitions[0].current_lag is not None:
                            known_rounds += 1
                    assert offset < 1000, "the HEAD never became known"
    lags = [lag for _, lag in seen if lag is not None]
    assert lags, "the HEAD never became known"
    assert lags[0] > 0, f"the group was not behind when the HEAD became known: {seen[:3]}"
    assert {status for status, _ in seen} == {Status.OK}, seen


# ------------------------------------------------------------------------------------------------------------
# 3. Owners of classic groups are never lost


async def test_a_classic_group_started_right_after_its_topic_was_created_gets_its_owners(
    kafka_bootstrap: str, kafka_admin: AIOKafkaAdminClient
) -> None:
    # The group joins, and writes its only assignment, before lagwatch's next metadata refresh (an hour
    # away here) lists the topic; the consumer commits nothing, so no commit flags the topic as new either.
    prefix = unique_name("it-owners")
    group = f"{prefix}-g"
    async with running(_settings(kafka_bootstrap, prefix, topic_refresh=3600.0)) as runtime:
        await eventually(lambda: runtime.head.health.rounds >= 1, "the first HEAD round")
        async with (
            topic_of(kafka_admin, f"{prefix}-t", partitions=3) as topic,
            classic_member(kafka_bootstrap, group, [topic], "owner-client", 3),
        ):
            joined = time.monotonic()

            def owners() -> list[tuple[int, str]]:
                status = runtime.statuses().get(group)
                return [] if status is None else [(p.partition, p.client_id) for p in status.partitions]

            await eventually(
                lambda: owners() == [(0, "owner-client"), (1, "owner-client"), (2, "owner-client")],
                f"the owners of {group} (last: {owners()})",
                within=10.0,
            )
            # Within one offset_refresh of the assignment being read, give or take a round.
            assert time.monotonic() - joined < 3 * 0.5 + 1.0


# ------------------------------------------------------------------------------------------------------------
# 2. No blind spot at start-up


async def test_from_the_first_instant_every_listed_group_has_a_status(
    kafka_bootstrap: str, kafka_admin: AIOKafkaAdminClient, produce: Produce
) -> None:
    # The default offset_refresh of 10 s: Burrow's statuses are there 0.3 s after a start; lagwatch's must
    # be there long before its second HEAD round, and no endpoint may list a group it has no status for.
    prefix = unique_name("it-startup")
    group = f"{prefix}-g"
    async with topic_of(kafka_admin, f"{prefix}-t") as topic:
        await produce(topic, [100])
        async with committer(kafka_bootstrap, group, topic) as commit:
            # 3 s apart: the window spans 6 s, longer than lagwatch may take to its first statuses (5 s,
            # asserted below), so the group is OK there; back-to-back commits would make it STOP by Burrow's
            # rule as soon as a start took longer than their few milliseconds.
            for offset in (10, 20, 30):
                if offset > 10:
                    await asyncio.sleep(3.0)
                await commit(offset)
        settings = _settings(kafka_bootstrap, prefix, offset_refresh=10.0)
        runtime = ClusterRuntime(CLUSTER, settings, settings.clusters[CLUSTER])
        async with TestClient(TestServer(build_app({CLUSTER: runtime}, settings))) as client:

            async def listed_with_statuses() -> list[str]:
                """The groups listed, each of which must have a status at the same instant."""
                response = await client.get(f"/v3/kafka/{CLUSTER}/consumer")
                listed: list[str] = (await response.json())["consumers"]
                for name in listed:
                    response = await client.get(f"/v3/kafka/{CLUSTER}/consumer/{name}/lag")
                    assert response.status == 200, f"{name} is listed without a status"
                return listed

            started = time.monotonic()
            task = asyncio.create_task(runtime.run())
            try:
                while (await client.get("/-/ready")).status != 200:
                    assert time.monotonic() - started < 8.0, "not ready before the second HEAD round"
                    await listed_with_statuses()
                    await asyncio.sleep(0.01)
                ready_after = time.monotonic() - started
                # Normally listed at once; later only when another test's open transaction in the same
                # __consumer_offsets partition hides the commits from a read_committed reader for a while.
                while await listed_with_statuses() != [group]:
                    assert time.monotonic() - started < DEADLINE_S, "the group was never listed"
                    await asyncio.sleep(0.01)
                body = await (await client.get(f"/v3/kafka/{CLUSTER}/consumer/{group}/lag")).json()
                assert (body["status"]["status"], body["status"]["totallag"]) == ("OK", 70)
                assert ready_after < 5.0
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


# ------------------------------------------------------------------------------------------------------------
# Issue 16 section 4: restarts keep statuses


async def test_a_warn_group_is_warn_at_the_first_evaluation_after_a_restart(
    kafka_bootstrap: str, kafka_admin: AIOKafkaAdminClient, produce: Produce, tmp_path: Path
) -> None:
    # The group falls further behind with every commit (lag 50, 100, ..., 300): WARN. Replayed against
    # today's HEAD (600) its lags would read 550, 500, ..., 300, falling: OK for a whole window.
    prefix = unique_name("it-restart")
    group = f"{prefix}-g"
    settings = _settings(kafka_bootstrap, prefix, state_dir=tmp_path)
    async with topic_of(kafka_admin, f"{prefix}-t") as topic:
        async with running(settings) as first:
            await eventually(lambda: first.head.health.rounds >= 1, "the first HEAD round")
            async with committer(kafka_bootstrap, group, topic) as commit:
                for step in range(1, 7):
                    await produce(topic, [100])
                    # Two HEAD rounds see the new HEAD before the commit is made.
                    await asyncio.sleep(1.2)
                    await commit(50 * step)
                    await asyncio.sleep(0.3)

            def warn_at_300(runtime: ClusterRuntime) -> bool:
                status = runtime.statuses().get(group)
                return (
                    status is not None
                    and status.status == Status.WARN
                    and status.partitions[0].end is not None
                    and status.partitions[0].end.offset == 300
                )

            await eventually(lambda: warn_at_300(first), f"{group} WARN on the running lagwatch")
        async with running(settings) as second:
            await eventually(lambda: second.statuses().get(group) is not None, "the first evaluation")
            status = second.statuses()[group]
            partition = status.partitions[0]
            assert status.status == Status.WARN, status
            assert partition.start is not None
            assert partition.end is not None
            assert (partition.start.lag, partition.end.lag, partition.current_lag) == (50, 300, 300)


# ------------------------------------------------------------------------------------------------------------
# 4. Kafka away: said everywhere, once, calmly


async def test_a_cluster_that_cannot_be_reached_is_named_once_with_one_clean_cause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = _settings(f"127.0.0.1:{port}", "it-away", offset_refresh=0.5, request_timeout=2.0)
    caplog.set_level(logging.INFO, logger="exporter")
    async with running(settings) as runtime:
        await asyncio.sleep(8.0)
        # aiokafka's own lines are silenced by the app (app._configure_logging), not by the sources.
        warnings = [
            r.getMessage()
            for r in caplog.records
            if r.levelno >= logging.WARNING and r.name.startswith("exporter")
        ]
        # One line for the whole outage, however many attempts the backoff made: the HEAD poller's (the other
        # sources keep a connection failure, which it reports, to DEBUG).
        assert runtime.head.health.failures >= 4
        assert len(warnings) == 1, warnings
        for text in warnings:
            assert "KafkaConnectionError: KafkaConnectionError" not in text, text
        state = runtime.state()
    assert not state.ready
    assert not state.reachable
    assert state.waiting_for == f"cannot reach the cluster ({state.cause})"
    assert state.cause.startswith("KafkaConnectionError: "), state.cause
    assert f"127.0.0.1:{port}" in state.cause


# ------------------------------------------------------------------------------------------------------------
# Issue 16 section 3: outages of lagwatch's own view never page


async def test_a_flapping_cluster_never_turns_a_group_stop_on_commits_lagwatch_has_not_read(
    kafka_bootstrap: str, kafka_admin: AIOKafkaAdminClient, produce: Produce, kafka_node: KafkaNode
) -> None:
    # A group behind its HEAD commits every 0.3 s, so its window spans about 3 s: any gap in the commits
    # lagwatch has read longer than that is STOP. The broker goes down and up twice; after each restart the
    # HEAD poller is back before lagwatch's consumer of __consumer_offsets has caught up (it reconnects with
    # its own backoff), while the group commits again at once. A STOP is false when the group had committed
    # more than two seconds before (a HEAD round, a fetch and slack) and lagwatch's status does not hold it.
    prefix = unique_name("it-flap")
    group = f"{prefix}-g"
    acked: list[tuple[float, int]] = []
    false_stops: list[tuple[float, int, int]] = []
    stops = 0
    async with topic_of(kafka_admin, f"{prefix}-t") as topic:
        await produce(topic, [100_000])
        settings = _settings(kafka_bootstrap, prefix, offset_refresh=0.5)
        async with running(settings) as runtime, committer(kafka_bootstrap, group, topic) as commit:
            done = asyncio.Event()

            async def keep_committing() -> None:
                offset = 0
                while not done.is_set():
                    offset += 1
                    try:
                        await asyncio.wait_for(commit(offset), 2.0)
                        acked.append((time.time(), offset))
                    except (KafkaError, TimeoutError):
                        offset -= 1
                    await asyncio.sleep(0.3)

            async def watch() -> None:
                nonlocal stops
                while not done.is_set():
                    status = runtime.statuses().get(group)
                    if status is not None and status.partitions[0].status == Status.STOP:
                        stops += 1
                        end = status.partitions[0].end
                        seen = -1 if end is None else end.offset
                        before = [o for t, o in acked if t < time.time() - 2.0]
                        if before and before[-1] > seen:
                            false_stops.append((time.time(), seen, before[-1]))
                    await asyncio.sleep(0.02)

            tasks = [asyncio.create_task(keep_committing()), asyncio.create_task(watch())]
            try:
                await eventually(lambda: runtime.ready and len(acked) > 12, "a full window of commits")
                for _ in range(2):
                    await kafka_node.stop()
                    await asyncio.sleep(2.0)
                    await kafka_node.start()
                    await eventually(
                        lambda: (
                            (status := runtime.statuses().get(group)) is not None
                            and status.partitions[0].end is not None
                            and acked[-1][1] - status.partitions[0].end.offset <= 3
                        ),
                        "lagwatch reads the group's new commits",
                        within=60.0,
                    )
                    await asyncio.sleep(3.0)
            finally:
                done.set()
                await asyncio.gather(*tasks, return_exceptions=True)
    assert false_stops == [], f"{len(false_stops)} false STOP samples of {stops}: {false_stops[:5]}"
