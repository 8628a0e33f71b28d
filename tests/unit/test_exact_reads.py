"""Exact reads: the token bucket, the mapping of what a consumer finds to an answer, and the worker loop, with
a scripted consumer in place of aiokafka's (tests/integration/test_lag_seconds.py reads a real broker)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, OffsetOutOfRangeError
from aiokafka.structs import TopicPartition

from exporter.core.exact_answers import (
    Appended,
    BelowLogStart,
    ExactAnswer,
    NothingBefore,
    PartitionOffset,
    Untimed,
)
from exporter.core.head_history import Policy
from exporter.core.timelag import LagSeconds, TimeLag
from exporter.settings import ClusterSettings
from exporter.sources import exact_reads
from exporter.sources.exact_reads import ExactReader, RateLimit, read_record_time

READ = PartitionOffset("t", 0, 5)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    limit = RateLimit(4.0, burst=2, clock=clock)
    for _ in range(2):
        assert limit.delay() == 0.0
        limit.take()
    assert limit.delay() == pytest.approx(0.25)
    clock.now += 0.1
    assert limit.delay() == pytest.approx(0.15)
    clock.now += 0.15
    assert limit.delay() == 0.0
    limit.take()
    # Idle time refills no further than the burst.
    clock.now += 60.0
    for _ in range(2):
        limit.take()
    assert limit.delay() == pytest.approx(0.25)


def test_rate_limit_debt_is_repaid() -> None:
    clock = FakeClock()
    limit = RateLimit(2.0, burst=1, clock=clock)
    # Two callers woke for the same token: both spend it.
    limit.take()
    limit.take()
    assert limit.delay() == pytest.approx(1.0)


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_rate_limit_rejects_nonsense(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate must be > 0"):
        RateLimit(rate, burst)


# --- one read ---------------------------------------------------------------------------------------------


@dataclass
class Record:
    offset: int
    timestamp: int | None


@dataclass
class Step:
    """One getmany: the records it returns, then the position and end offsets it leaves behind."""

    records: list[Record] = field(default_factory=list)
    position: int = 5
    stable: int | None = None
    highwater: int | None = None
    error: Exception | None = None


class ScriptedConsumer:
    """Plays `steps` one getmany at a time, repeating the last; `beginning` answers beginning_offsets."""

    def __init__(self, steps: list[Step], beginning: int = 0) -> None:
        self.steps = steps
        self.beginning = beginning
        self.calls = 0
        self.assigned: list[TopicPartition] = []
        self.sought: int | None = None
        self.stopped = False
        self._step = Step()

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = partitions

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.sought = offset

    async def getmany(self, tp: TopicPartition, timeout_ms: int, max_records: int) -> dict[Any, Any]:
        assert max_records == 1
        self._step = self.steps[min(self.calls, len(self.steps) - 1)]
        self.calls += 1
        if self._step.error is not None:
            raise self._step.error
        return {tp: self._step.records} if self._step.records else {}

    def last_stable_offset(self, tp: TopicPartition) -> int | None:
        return self._step.stable

    def highwater(self, tp: TopicPartition) -> int | None:
        return self._step.highwater

    async def position(self, tp: TopicPartition) -> int:
        return self._step.position

    async def beginning_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(partitions, self.beginning)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True


async def read(
    steps: list[Step], offset: int = 5, beginning: int = 0
) -> tuple[ExactAnswer, ScriptedConsumer]:
    consumer = ScriptedConsumer(steps, beginning)
    answer = await read_record_time(consumer, PartitionOffset("t", 0, offset))  # type: ignore[arg-type]
    assert consumer.assigned == [TopicPartition("t", 0)]
    assert consumer.sought == offset
    return answer, consumer


async def test_a_record_gives_its_timestamp_in_seconds() -> None:
    answer, _ = await read([Step([Record(7, 1_763_000_000_123)])])
    assert answer == Appended(1_763_000_000.123)


@pytest.mark.parametrize("timestamp", [-1, None])
async def test_a_record_without_timestamp_is_untimed(timestamp: int | None) -> None:
    answer, _ = await read([Step([Record(5, timestamp)])])
    assert answer == Untimed()


async def test_nothing_until_the_last_stable_offset() -> None:
    # No end known yet (no fetch answered), then one beyond the position (a fetch in flight), then reached.
    answer, consumer = await read(
        [Step(stable=None), Step(position=6, stable=9, highwater=9), Step(position=9, stable=9, highwater=10)]
    )
    assert answer == NothingBefore(9)
    assert consumer.calls == 3


async def test_without_a_last_stable_offset_the_high_watermark_ends_the_read() -> None:
    answer, _ = await read([Step(position=8, stable=-1, highwater=8)])
    assert answer == NothingBefore(8)


async def test_records_after_skipped_markers_are_found() -> None:
    answer, consumer = await read([Step(position=7, stable=12), Step([Record(9, 2_000)], position=10)])
    assert answer == Appended(2.0)
    assert consumer.calls == 2


async def test_below_the_log_start() -> None:
    answer, _ = await read([Step(error=OffsetOutOfRangeError({}))], offset=2, beginning=4)
    assert answer == BelowLogStart(4)


async def test_out_of_range_above_the_log_start_is_a_failure() -> None:
    with pytest.raises(OffsetOutOfRangeError):
        await read([Step(error=OffsetOutOfRangeError({}))], offset=6, beginning=4)


# --- the reader -------------------------------------------------------------------------------------------


class Broker:
    """What the scripted consumers of one test read: an answer (or an error) per offset."""

    def __init__(self) -> None:
        self.answers: dict[int, Step] = {}
        self.started = 0
        self.reads: list[tuple[int, float]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.refuse_start = False
        self.log_start = 0


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Broker:
    broker = Broker()

    class Consumer(ScriptedConsumer):
        def __init__(self, connection: dict[str, Any], **kwargs: Any) -> None:
            assert connection["bootstrap_servers"]
            assert kwargs["isolation_level"] == "read_committed"
            assert kwargs["group_id"] is None
            assert kwargs["auto_offset_reset"] == "none"
            super().__init__([], broker.log_start)

        async def start(self) -> None:
            if broker.refuse_start:
                raise KafkaConnectionError("refused")
            broker.started += 1

        def seek(self, tp: TopicPartition, offset: int) -> None:
            super().seek(tp, offset)
            self.steps = [broker.answers[offset]]
            broker.reads.append((offset, time.monotonic()))

        async def getmany(self, tp: TopicPartition, timeout_ms: int, max_records: int) -> dict[Any, Any]:
            broker.in_flight += 1
            broker.most_in_flight = max(broker.most_in_flight, broker.in_flight)
            try:
                await asyncio.sleep(0.02)
                return await super().getmany(tp, timeout_ms, max_records)
            finally:
                broker.in_flight -= 1

    monkeypatch.setattr(exact_reads, "BackoffConsumer", Consumer)
    return broker


def timelag_wanting(offsets: list[int]) -> TimeLag:
    """A TimeLag without history that has been asked for the lag at `offsets` of t/0: each wants a read."""
    timelag = TimeLag(Policy.for_refresh(10.0))
    for offset in offsets:
        assert timelag.lag("t", 0, offset, 100, 1_000.0).source == "pending_exact_read"
    return timelag


@pytest.fixture
async def reader_task() -> Any:
    tasks: list[asyncio.Task[None]] = []

    def start(reader: ExactReader) -> None:
        tasks.append(asyncio.create_task(reader.run()))

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


CLUSTER = ClusterSettings(bootstrap_servers=("k:9092",), request_timeout=2.0)


async def until(check: Any, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_reads_are_answered_into_the_timelag(broker: Broker, reader_task: Any) -> None:
    broker.answers = {
        10: Step([Record(10, 500_000)]),
        20: Step(error=OffsetOutOfRangeError({})),
        30: Step(position=31, stable=31),
    }
    broker.log_start = 25
    timelag = timelag_wanting([10, 20, 30])
    reader = ExactReader("c", CLUSTER, timelag, concurrency=2, rate=100.0)
    reader_task(reader)
    reader.wake()
    await until(lambda: reader.reads == 3)
    # Most recently wanted first.
    assert [offset for offset, _ in broker.reads] == [30, 20, 10]
    assert timelag.lag("t", 0, 10, 100, 1_000.0).seconds == pytest.approx(500.0)
    assert timelag.lag("t", 0, 20, 100, 1_000.0) == LagSeconds(None, "below_log_start")
    assert timelag.lag("t", 0, 30, 100, 1_000.0).source == "pending_exact_read"  # records arrived after 31
    assert timelag.lag("t", 0, 30, 31, 1_000.0).source == "exact"
    assert broker.started == 2
    assert reader.failures == 0


async def test_reads_respect_the_rate_and_the_concurrency(broker: Broker, reader_task: Any) -> None:
    broker.answers = {offset: Step([Record(offset, 1_000)]) for offset in range(8)}
    timelag = timelag_wanting(list(range(8)))
    reader = ExactReader("c", CLUSTER, timelag, concurrency=2, rate=10.0)
    reader_task(reader)
    started = time.monotonic()
    reader.wake()
    await until(lambda: reader.reads == 8)
    # A burst of 2, then 10 per second: the 8th read starts 0.6 s after the first.
    times = sorted(at for _, at in broker.reads)
    assert times[-1] - started >= 0.55
    assert broker.most_in_flight <= 2


async def test_a_failed_read_is_answered_none_and_asked_again(broker: Broker, reader_task: Any) -> None:
    broker.answers = {10: Step(error=KafkaConnectionError("gone"))}
    timelag = timelag_wanting([10])
    reader = ExactReader("c", CLUSTER, timelag, concurrency=1, rate=100.0)
    reader_task(reader)
    reader.wake()
    await until(lambda: reader.failures == 1)
    # Not in flight any more: the next evaluation asks again, and the consumer is a fresh one.
    assert timelag.pending_reads == 0
    broker.answers = {10: Step([Record(10, 900_000)])}
    assert timelag.lag("t", 0, 10, 100, 1_000.0).source == "pending_exact_read"
    reader.wake()
    await until(lambda: reader.reads == 1)
    assert timelag.lag("t", 0, 10, 100, 1_000.0).seconds == pytest.approx(100.0)
    assert broker.started == 2


async def test_an_unreachable_cluster_fails_the_read_and_logs_once(
    broker: Broker, reader_task: Any, caplog: pytest.LogCaptureFixture
) -> None:
    broker.refuse_start = True
    timelag = timelag_wanting([1, 2])
    reader = ExactReader("c", CLUSTER, timelag, concurrency=1, rate=100.0)
    reader_task(reader)
    reader.wake()
    await until(lambda: reader.failures == 2)
    warnings = [r.getMessage() for r in caplog.records if r.name == "exporter.sources.exact_reads"]
    assert warnings == [
        "cluster c: exact read failed (cannot connect: KafkaConnectionError: refused); retried while needed"
    ]


async def test_failures_back_off_before_the_next_attempt(broker: Broker, reader_task: Any) -> None:
    broker.refuse_start = True
    timelag = timelag_wanting([1, 2, 3, 4, 5])
    reader = ExactReader("c", CLUSTER, timelag, concurrency=1, rate=1000.0)
    reader_task(reader)
    reader.wake()
    started = time.monotonic()
    await until(lambda: reader.failures == 3)
    # 0.5 s after the first failure, 1 s after the second: without backoff, three would take milliseconds.
    assert time.monotonic() - started >= 1.5
    await asyncio.sleep(0.3)
    assert reader.failures == 3
