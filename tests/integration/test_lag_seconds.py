"""Lag in seconds through the whole app against a real Kafka: `ClusterRuntime` with its HEAD poller,
offsets-topic source, exact reader and state file, read through `lag_seconds()` as the exposition gets it.

Time is the test's: the runtime's clock is the wall clock, or an instant the test froze it at, so "30 s
behind" takes no 30 s. HEAD observations and evaluations use that clock; records that must be older than the
HEAD history get explicit timestamps. Each test lets its runtime see only its own topic and groups.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete
from aiokafka.errors import KafkaError

from exporter import evaluation
from exporter.core.head_history import Policy, interpolate
from exporter.core.model import OffsetCommit, Status
from exporter.core.retention import Headroom
from exporter.core.timelag import LagSeconds
from exporter.runtime import ClusterRuntime
from exporter.settings import ClusterSettings, FilterSettings, LagSecondsSettings, Settings
from exporter.state_file import load
from tests.kafka_cluster import NewTopicFactory, Produce, unique_name

REFRESH = 0.5
"""offset_refresh, in seconds of both clocks: the bound on an interpolation's error."""
DEADLINE_S = 30.0
CLUSTER = "it"


class Clock:
    """The wall clock, or a frozen instant the test chose."""

    def __init__(self) -> None:
        self.frozen: float | None = None

    def __call__(self) -> float:
        return time.time() if self.frozen is None else self.frozen

    def freeze(self, at: float) -> None:
        self.frozen = at


def settings(bootstrap: str, topic: str, groups: str, state_dir: Path | None, exact_reads: bool) -> Settings:
    return Settings(
        clusters={
            CLUSTER: ClusterSettings(
                bootstrap_servers=(bootstrap,),
                offset_refresh=REFRESH,
                topic_refresh=1.0,
                request_timeout=10.0,
            )
        },
        filters=FilterSettings(topic_allow=f"^{re.escape(topic)}$", group_allow=f"^{re.escape(groups)}"),
        lag_seconds=LagSecondsSettings(
            state_dir=str(state_dir or ""), exact_reads=exact_reads, exact_reads_per_second=50.0
        ),
    )


@contextlib.asynccontextmanager
async def running(
    bootstrap: str,
    topic: str,
    groups: str,
    clock: Clock,
    *,
    state_dir: Path | None = None,
    exact_reads: bool = True,
) -> AsyncIterator[ClusterRuntime]:
    """A runtime as `app.run` builds it, sources running; on exit its state is saved as at shutdown."""
    runtime = ClusterRuntime(
        CLUSTER, settings(bootstrap, topic, groups, state_dir, exact_reads), _cluster(bootstrap), clock
    )
    task = asyncio.create_task(runtime.run())
    try:
        await eventually(lambda: runtime.head.health.up, "the HEAD poller reaches Kafka")
        yield runtime
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runtime.save_state()


def _cluster(bootstrap: str) -> ClusterSettings:
    return ClusterSettings(
        bootstrap_servers=(bootstrap,), offset_refresh=REFRESH, topic_refresh=1.0, request_timeout=10.0
    )


async def eventually(check: Callable[[], object], what: str, within: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {within:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


async def rounds(runtime: ClusterRuntime, count: int) -> None:
    """Wait for `count` more HEAD rounds, each followed by an evaluation."""
    target = runtime.head.health.rounds + count
    await eventually(lambda: runtime.head.health.rounds >= target, f"{count} more HEAD rounds")


def lag_of(runtime: ClusterRuntime, group: str, partition: int = 0) -> LagSeconds | None:
    figures = runtime.lag_seconds().get(group)
    return None if figures is None else figures[partition]


async def settled(
    runtime: ClusterRuntime, group: str, source: str, partition: int = 0, within: float = DEADLINE_S
) -> LagSeconds:
    """The group's lag in seconds once its source is `source`."""
    await eventually(
        lambda: (found := lag_of(runtime, group, partition)) is not None and found.source == source,
        f"{group}: source {source} (last: {lag_of(runtime, group, partition)})",
        within,
    )
    found = lag_of(runtime, group, partition)
    assert found is not None
    return found


async def commit_alone(bootstrap: str, group: str, topic: str, partition: int, offset: int) -> None:
    """Commit as a group without members, as a consumer that stopped would have left it."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        deadline = time.monotonic() + DEADLINE_S
        while True:
            try:
                await consumer.commit({tp: offset})
                return
            except KafkaError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
    finally:
        await consumer.stop()


async def produce_at(
    bootstrap: str, topic: str, timestamps_s: list[float], keys: list[bytes] | None = None
) -> None:
    """One record per timestamp to partition 0, in order, each with that create time."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    try:
        for i, at in enumerate(timestamps_s):
            key = None if keys is None else keys[i]
            await (await producer.send(topic, b"v", key=key, partition=0, timestamp_ms=round(at * 1000)))
    finally:
        await producer.stop()


@pytest.fixture
def prefix() -> str:
    """Prefix of the test's group names, which its runtime's group filter admits."""
    return unique_name("it-lagsec")


# ------------------------------------------------------------------------------------------------------------
# Interpolation on the HEAD history


async def test_behind_caught_up_and_stopped(
    kafka_bootstrap: str, new_topic: NewTopicFactory, produce: Produce, prefix: str
) -> None:
    topic = await new_topic(1)
    behind, caught_up = f"{prefix}-behind", f"{prefix}-caught-up"
    clock = Clock()
    async with running(kafka_bootstrap, topic, prefix, clock) as runtime:
        await rounds(runtime, 2)
        before = clock()
        await produce(topic, [5])
        after = clock()
        await rounds(runtime, 2)
        await commit_alone(kafka_bootstrap, behind, topic, 0, 2)
        await commit_alone(kafka_bootstrap, caught_up, topic, 0, 5)
        assert (await settled(runtime, caught_up, "caught_up")).seconds == 0.0
        await settled(runtime, behind, "interpolated")

        # 30 s later, with the records appended in [before, after]: the estimate lies in the bracket of HEAD
        # observations around the append, whose width is one refresh.
        now = after + 30.0
        clock.freeze(now)
        await rounds(runtime, 2)
        found = lag_of(runtime, behind)
        assert found is not None
        assert found.source == "interpolated"
        assert found.seconds is not None
        assert now - after - REFRESH <= found.seconds <= now - before + REFRESH
        history = runtime.timelag.histories[(topic, 0)] if runtime.timelag else None
        assert history is not None
        assert found.seconds == pytest.approx(now - (interpolate(history, 2) or 0.0), abs=1e-9)
        assert lag_of(runtime, caught_up) == LagSeconds(0.0, "caught_up")

        # Stopped: once the log has been idle for a minute the figure is confirmed by an exact read (the
        # producer's create time), and from then on it grows exactly with the clock.
        clock.freeze(now + 60.0)
        exact = await settled(runtime, behind, "exact")
        assert exact.seconds is not None
        # Create times are whole milliseconds.
        assert now + 60.0 - after <= exact.seconds <= now + 60.0 - before + 0.001
        clock.freeze(now + 180.0)
        await rounds(runtime, 2)
        later = lag_of(runtime, behind)
        assert later is not None
        assert later.source == "exact"
        assert later.seconds == pytest.approx(exact.seconds + 120.0, abs=1e-6)
        assert lag_of(runtime, caught_up) == LagSeconds(0.0, "caught_up")


# ------------------------------------------------------------------------------------------------------------
# Exact reads


async def test_offsets_older_than_the_history_are_read_and_deleted_ones_say_so(
    kafka_bootstrap: str, kafka_admin: AIOKafkaAdminClient, new_topic: NewTopicFactory, prefix: str
) -> None:
    topic = await new_topic(1)
    start = float(int(time.time()))  # whole seconds: create times are whole milliseconds
    # Ten records from two hours ago, one per minute: no HEAD history can cover them.
    stamps = [start - 7200 + 60 * i for i in range(10)]
    await produce_at(kafka_bootstrap, topic, stamps)
    deleted = await kafka_admin.delete_records({TopicPartition(topic, 0): RecordsToDelete(4)})
    assert deleted == {TopicPartition(topic, 0): 4}
    old, lost = f"{prefix}-old", f"{prefix}-lost"
    await commit_alone(kafka_bootstrap, old, topic, 0, 6)
    await commit_alone(kafka_bootstrap, lost, topic, 0, 2)
    clock = Clock()
    clock.freeze(start + 5)
    async with running(kafka_bootstrap, topic, prefix, clock) as runtime:
        found = await settled(runtime, old, "exact")
        assert found.seconds == pytest.approx(start + 5 - stamps[6], abs=1e-6)
        assert await settled(runtime, lost, "below_log_start") == LagSeconds(None, "below_log_start")
        assert runtime.exact_reads is not None
        assert runtime.exact_reads.failures == 0


async def test_without_exact_reads_old_offsets_have_no_figure(
    kafka_bootstrap: str, new_topic: NewTopicFactory, prefix: str
) -> None:
    topic = await new_topic(1)
    start = time.time()
    await produce_at(kafka_bootstrap, topic, [start - 600, start - 500])
    group = f"{prefix}-old"
    await commit_alone(kafka_bootstrap, group, topic, 0, 1)
    async with running(kafka_bootstrap, topic, prefix, Clock(), exact_reads=False) as runtime:
        assert await settled(runtime, group, "no_history") == LagSeconds(None, "no_history")
        assert runtime.exact_reads is None


async def test_transaction_markers_do_not_make_caught_up_consumers_look_behind(
    kafka_bootstrap: str, new_topic: NewTopicFactory, prefix: str
) -> None:
    topic = await new_topic(1)
    clock = Clock()
    async with running(kafka_bootstrap, topic, prefix, clock) as runtime:
        await rounds(runtime, 2)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=unique_name("it-txn"))
        await producer.start()
        try:
            # Offsets 0-2 committed, 3 its marker; 4-5 aborted, 6 the abort marker: the HEAD is 7.
            async with producer.transaction():
                for _ in range(3):
                    await producer.send(topic, b"c", partition=0)
            await producer.begin_transaction()
            for _ in range(2):
                await producer.send(topic, b"a", partition=0)
            await producer.abort_transaction()
        finally:
            await producer.stop()
        after = clock()
        await eventually(lambda: runtime.storage.head_offsets(topic) == (7,), "HEAD offset 7")
        on_marker, on_aborted, at_head = f"{prefix}-marker", f"{prefix}-aborted", f"{prefix}-head"
        await commit_alone(kafka_bootstrap, on_marker, topic, 0, 3)
        await commit_alone(kafka_bootstrap, on_aborted, topic, 0, 4)
        await commit_alone(kafka_bootstrap, at_head, topic, 0, 7)
        await settled(runtime, on_marker, "interpolated")
        await settled(runtime, on_aborted, "interpolated")

        # A minute of idle log later the interpolated figures are confirmed: nothing a read_committed consumer
        # would read lies between the committed offsets and the HEAD.
        clock.freeze(after + 61.0)
        for group in (on_marker, on_aborted):
            assert await settled(runtime, group, "exact") == LagSeconds(0.0, "exact")
        assert lag_of(runtime, at_head) == LagSeconds(0.0, "caught_up")
        statuses = runtime.statuses()
        assert statuses[on_marker].partitions[0].current_lag == 4
        assert statuses[on_aborted].partitions[0].current_lag == 3
        # Still 0 a day later: the answer is cached, the log has not moved.
        clock.freeze(after + 86_400.0)
        await rounds(runtime, 2)
        assert lag_of(runtime, on_marker) == LagSeconds(0.0, "exact")


@pytest.fixture
async def compacted_topic(kafka_admin: AIOKafkaAdminClient) -> AsyncIterator[str]:
    """A one-partition topic the log cleaner compacts as soon as a segment rolls."""
    name = unique_name("it-compacted")
    configs = {
        "cleanup.policy": "compact",
        "segment.ms": "100",
        "min.cleanable.dirty.ratio": "0.0001",
        "min.compaction.lag.ms": "0",
        "delete.retention.ms": "0",
    }
    response = await kafka_admin.create_topics([NewTopic(name, 1, 1, topic_configs=configs)])
    assert [code for _, code, *_ in response.topic_errors] == [0]
    for _ in range(100):
        (described,) = await kafka_admin.describe_topics([name])
        if described["error_code"] == 0 and [p["leader"] >= 0 for p in described["partitions"]] == [True]:
            break
        await asyncio.sleep(0.1)
    yield name
    await kafka_admin.delete_topics([name])


async def offsets_in(bootstrap: str, topic: str) -> list[int]:
    """The offsets a read of the whole partition returns."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        found: list[int] = []
        while await consumer.position(tp) < end:
            found += [r.offset for r in (await consumer.getmany(tp, timeout_ms=200)).get(tp, [])]
        return found
    finally:
        await consumer.stop()


async def test_a_compacted_away_offset_is_answered_by_the_next_record(
    kafka_bootstrap: str, compacted_topic: str, prefix: str
) -> None:
    topic = compacted_topic
    start = float(int(time.time()))
    # Keys k0-k4 twice (offsets 0-9, one a minute an hour ago), then two records that roll the segment.
    stamps = [start - 3600 + 60 * i for i in range(10)]
    keys = [b"k%d" % (i % 5) for i in range(10)]
    await produce_at(kafka_bootstrap, topic, stamps, keys)
    await asyncio.sleep(0.2)
    await produce_at(kafka_bootstrap, topic, [start - 60], [b"roll"])
    await asyncio.sleep(0.2)
    await produce_at(kafka_bootstrap, topic, [start - 30], [b"roll2"])
    # The broker's cleaner looks every log.cleaner.backoff.ms (15 s by default).
    deadline = time.monotonic() + 60
    while (present := await offsets_in(kafka_bootstrap, topic))[0] != 5:
        assert time.monotonic() < deadline, f"not compacted: {present}"
        await asyncio.sleep(1)
    assert present[:5] == [5, 6, 7, 8, 9]
    group = f"{prefix}-compacted"
    await commit_alone(kafka_bootstrap, group, topic, 0, 2)
    clock = Clock()
    clock.freeze(start + 5)
    async with running(kafka_bootstrap, topic, prefix, clock) as runtime:
        found = await settled(runtime, group, "exact")
        # The group's next record is offset 5, the first left: its age, not the age of the gone offset 2.
        assert found.seconds == pytest.approx(start + 5 - stamps[5], abs=1e-6)


# ------------------------------------------------------------------------------------------------------------
# Restart


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


async def test_the_head_history_survives_a_restart(
    kafka_bootstrap: str, new_topic: NewTopicFactory, produce: Produce, prefix: str, state_dir: Path
) -> None:
    topic = await new_topic(1)
    group = f"{prefix}-restart"
    clock = Clock()
    async with running(kafka_bootstrap, topic, prefix, clock, state_dir=state_dir) as first:
        await rounds(first, 2)
        await produce(topic, [4])
        await rounds(first, 2)
        await commit_alone(kafka_bootstrap, group, topic, 0, 1)
        before = await settled(first, group, "interpolated")
        assert first.timelag is not None
        # A topic deleted while lagwatch is down: its history is restored, then dropped by the first metadata.
        first.timelag.observe("it-gone-topic", 0, 7, clock())
        moment = clock()
        assert before.seconds is not None
    saved = state_dir / f"heads-{CLUSTER}.bin"
    assert saved.stat().st_mode & 0o777 == 0o600
    points = first.timelag.histories[(topic, 0)].points()

    clock.freeze(moment + 20.0)
    # Exact reads off: only the restored history can answer, and it does before any source ran.
    second = ClusterRuntime(
        CLUSTER,
        settings(kafka_bootstrap, topic, prefix, state_dir, exact_reads=False),
        _cluster(kafka_bootstrap),
        clock,
    )
    assert second.timelag is not None
    assert second.timelag.histories[(topic, 0)].points() == points
    answered = second.timelag.lag(topic, 0, 1, 4, clock())
    assert answered.source == "interpolated"
    assert answered.seconds == pytest.approx(
        moment + 20.0 - (interpolate(first.timelag.histories[(topic, 0)], 1) or 0)
    )

    task = asyncio.create_task(second.run())
    try:
        await eventually(lambda: lag_of(second, group) is not None, "the group's first figure")
        assert lag_of(second, group) == answered
        assert ("it-gone-topic", 0) not in second.timelag.histories
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


# ------------------------------------------------------------------------------------------------------------
# Without a broker: the app's wiring driven by hand, as the sources would drive it


class Driven:
    """A runtime whose storage and HEAD history the test feeds directly, at times of its choosing."""

    def __init__(self, tmp_path: Path, **lag_seconds: object) -> None:
        self.clock = Clock()
        self.clock.freeze(1_763_000_000.0)
        cluster = ClusterSettings(bootstrap_servers=("127.0.0.1:1",), offset_refresh=10.0)
        options = {"state_dir": str(tmp_path), **lag_seconds}
        self.runtime = ClusterRuntime(
            CLUSTER,
            Settings(clusters={CLUSTER: cluster}, lag_seconds=LagSecondsSettings.model_validate(options)),
            cluster,
            self.clock,
        )
        self.runtime.storage.set_topics({"t": 2}, self.ms)
        # As after start-up: the replay of the committed offsets and a HEAD round are in, so evaluate()
        # evaluates, and commits get their lag against the newest HEAD.
        self.runtime.offsets.progress.caught_up = True
        self.runtime.head.health.rounds = 1
        self.runtime.storage.set_replay_heads(None)
        self.order = 0

    @property
    def ms(self) -> int:
        return int(self.clock() * 1000)

    async def head(self, offset: int, partition: int = 0) -> None:
        """A HEAD round at the current time, as the poller makes it, then the evaluation it triggers."""
        self.runtime.storage.add_head_offset("t", partition, offset, self.ms)
        assert self.runtime.timelag is not None
        self.runtime.timelag.observe("t", partition, offset, self.clock())
        await self.runtime.evaluate()

    def commit(self, group: str, offset: int, partition: int = 0) -> None:
        self.order += 1
        self.runtime.storage.apply(OffsetCommit(group, "t", partition, offset, self.ms), self.order, self.ms)

    def tick(self, seconds: float) -> None:
        self.clock.freeze(self.clock() + seconds)


async def test_figures_per_partition_follow_the_statuses(tmp_path: Path) -> None:
    driven = Driven(tmp_path)
    await driven.head(0)
    driven.tick(10)
    # 100 records in (0, 10]: offset 49, the 50th, is placed at 50/101 of the bracket.
    await driven.head(100)
    driven.commit("behind", 49)
    driven.commit("current", 100)
    driven.tick(10)
    await driven.head(100)
    lags = driven.runtime.lag_seconds()
    # Partition 1 of t has no HEAD and no commit: None (never committed), in the order of the statuses.
    assert lags["current"] == (LagSeconds(0.0, "caught_up"), None)
    behind = lags["behind"][0]
    assert behind is not None
    assert behind.source == "interpolated"
    assert behind.seconds == pytest.approx(20 - 10 * 50 / 101)
    assert [p.partition for p in driven.runtime.statuses()["behind"].partitions] == [0, 1]

    driven.commit("unknown", 3, partition=1)
    driven.tick(10)
    await driven.head(100)
    assert driven.runtime.lag_seconds()["unknown"] == (None, LagSeconds(None, "head_unknown"))
    # The stopped group's figure moved with the clock although nothing else changed.
    assert driven.runtime.lag_seconds()["behind"][0] == LagSeconds(
        pytest.approx(30 - 10 * 50 / 101), "interpolated"
    )
    view = driven.runtime.view()
    assert view.lag_seconds == driven.runtime.lag_seconds()


async def test_disabled_lag_seconds_builds_nothing(tmp_path: Path) -> None:
    driven_settings = Settings(
        clusters={CLUSTER: _cluster("127.0.0.1:1")}, lag_seconds=LagSecondsSettings(enabled=False)
    )
    runtime = ClusterRuntime(CLUSTER, driven_settings, _cluster("127.0.0.1:1"), Clock())
    assert (runtime.timelag, runtime.exact_reads, runtime.state_file) == (None, None, None)
    await runtime.evaluate()
    assert runtime.lag_seconds() == {}
    assert runtime.view().lag_seconds == {}


async def test_a_state_dir_that_cannot_be_written_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the directory should be")
    driven = Driven(blocked, exact_reads=False)
    await driven.head(7)
    caplog.set_level(logging.INFO, logger="exporter.state_file")
    caplog.clear()  # the restore at start could not read the file either
    await driven.runtime.save_state()
    await driven.runtime.save_state()
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "exporter.state_file" and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 1
    assert warnings[0].startswith(
        f"cluster {CLUSTER}: cannot save the HEAD history to {blocked}/heads-it.bin"
    )
    blocked.unlink()
    await driven.runtime.save_state()
    assert (blocked / "heads-it.bin").is_file()
    assert (
        caplog.records[-1].getMessage()
        == f"cluster {CLUSTER}: HEAD history saved to {blocked}/heads-it.bin again"
    )
    assert (blocked.stat().st_mode & 0o777, (blocked / "heads-it.bin").stat().st_mode & 0o777) == (
        0o700,
        0o600,
    )


async def test_a_history_saved_on_another_kafka_cluster_is_discarded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def on(cluster_id: str) -> Driven:
        driven = Driven(tmp_path, exact_reads=False)
        driven.runtime.head.health.cluster_id = cluster_id
        driven.runtime.head.health.rounds = 1
        return driven

    first = on("kafka-a")
    await first.head(100)
    first.tick(10)
    await first.head(200)
    await first.runtime.save_state()
    saved = load((tmp_path / "heads-it.bin").read_bytes(), CLUSTER, Policy())
    assert (saved.cluster_id, sorted(os.listdir(tmp_path))) == ("kafka-a", ["heads-it.bin"])

    same = on("kafka-a")
    await same.runtime.evaluate()
    assert same.runtime.timelag is not None
    assert [key for key, _ in same.runtime.timelag.histories.items()] == [("t", 0)]

    caplog.set_level(logging.WARNING, logger="exporter.evaluation")
    other = on("kafka-b")
    await other.runtime.evaluate()
    assert other.runtime.timelag is not None
    assert dict(other.runtime.timelag.histories) == {}
    assert [r.getMessage() for r in caplog.records if r.name == "exporter.evaluation"] == [
        f"cluster {CLUSTER}: the saved HEAD history belongs to Kafka cluster kafka-a, not kafka-b: discarded"
    ]


async def test_an_admin_deletion_publishes_the_group_with_its_figures_at_once(tmp_path: Path) -> None:
    driven = Driven(tmp_path, exact_reads=False)
    runtime = driven.runtime
    runtime.storage.set_topics({"t": 2, "u": 1}, driven.ms)
    runtime.storage.set_start_offset("t", 0, 10)
    driven.commit("g", 40)
    driven.order += 1
    runtime.storage.apply(OffsetCommit("g", "u", 0, 5, driven.ms), driven.order, driven.ms)
    await driven.head(100)
    driven.tick(10)
    await driven.head(100)
    lags = runtime.lag_seconds()["g"]
    assert [p.topic for p in runtime.statuses()["g"].partitions] == ["t", "t", "u"]
    assert runtime.delete_group("g", "u")
    # The re-evaluated status is published with figures of exactly its partitions, computed at once.
    assert [p.topic for p in runtime.statuses()["g"].partitions] == ["t", "t"]
    assert runtime.lag_seconds()["g"] == lags[:2]
    assert runtime.headroom()["g"] == (Headroom(0, 30, None), None)
    assert runtime.view().lag_seconds == runtime.lag_seconds()
    assert runtime.delete_group("g", "t")
    assert (dict(runtime.statuses()), dict(runtime.lag_seconds()), dict(runtime.headroom())) == ({}, {}, {})
    assert runtime.status("g").status is Status.NOTFOUND


@pytest.mark.parametrize("during", ["statuses", "figures"])
async def test_a_round_running_during_an_admin_deletion_keeps_its_result(
    tmp_path: Path, during: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A round yields to the event loop once it held it for a slice of time; 1,200 small groups may take less
    # than one on a fast machine. With no time slice it yields after every batch of groups, in both passes.
    monkeypatch.setattr(evaluation, "SLICE_S", 0.0)
    driven = Driven(tmp_path, exact_reads=False)
    runtime = driven.runtime
    for index in range(1200):
        driven.commit(f"g{index:04d}", 40)
    await driven.head(100)
    driven.tick(10)
    for index in range(1200):
        driven.commit(f"g{index:04d}", 50)
    evaluated = dict(runtime.evaluation.cache.statuses())
    round_task = asyncio.create_task(driven.head(100))
    await asyncio.sleep(0)
    if during == "figures":
        while runtime.evaluation.cache.statuses() == evaluated:  # noqa: ASYNC110 (until the statuses pass has ended)
            await asyncio.sleep(0)
    assert not round_task.done()
    # Without the deletion g0100 would be published, whether the round evaluated it before this point
    # (figures) or has yet to (statuses).
    assert runtime.delete_group("g0100")
    assert "g0100" not in runtime.statuses()
    await round_task
    assert runtime.published.clock == driven.clock()
    assert len(runtime.statuses()) == len(runtime.lag_seconds()) == len(runtime.headroom()) == 1199
    assert "g0100" not in runtime.statuses()
    end = runtime.statuses()["g0101"].partitions[0].end
    assert end is not None
    assert end.offset == 50
