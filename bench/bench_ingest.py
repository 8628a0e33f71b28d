"""Ingest throughput of committed offsets: `__consumer_offsets` bytes decoded and stored, on one core.

Builds N offset-commit records (key and value bytes, by the test encoder) as a busy cluster writes them:
10,000 groups x 10 partitions, group g consuming topic g mod 1,000, every group committing all its partitions
together once per round, values v4 (Kafka 4.x) and v3 (3.x) with leader epochs and mostly empty metadata. HEAD
offsets are known for every partition, so every append computes its lag. Then it times, in one thread:

- decode + Storage.apply: the figure the issue asks for (at least 100,000 commits/s);
- OffsetsTopicSource._apply_batch: the same as the source does it, a fetched batch of 5,000 records at a time
  as its consumer hands them over (`raw_records.Bare`: batch decode, batch apply, kind counters);

each into a fresh storage (a restart's replay: groups and windows are created) and again into the filled one
(steady state: appends that evict the oldest slot once windows are full). Rates are per CPU second of the
thread, so that other work on the machine does not skew them.

    .venv/bin/python bench/bench_ingest.py [N] [--kafka BOOTSTRAP]      (N defaults to 200,000)

With `--kafka`, the records are also written to a fresh topic of that Kafka and read back by a real
OffsetsTopicSource: the end-to-end rate, aiokafka's fetching and record parsing included.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))

import offsets_encoder as enc
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from exporter.core.decoder import decode
from exporter.core.model import OffsetCommit
from exporter.core.storage import Storage
from exporter.settings import ClusterSettings
from exporter.sources.offsets_topic import OffsetsTopicSource
from exporter.sources.raw_records import Bare

GROUPS = 10_000
PARTITIONS = 10
TOPICS = 1_000
NOW = 1_800_000_000_000
TARGET = 100_000

Pair = tuple[bytes, bytes]
Ingest = Callable[[Storage, list[Pair], int], None]
_BATCH = 5000
"""Records per fetched batch, as the source asks aiokafka for them."""


def _topic(t: int) -> str:
    return f"orders.events-{t:04d}.v1"


def _records(n: int, rng: random.Random) -> list[Pair]:
    groups = [f"svc-{g:05d}.order-consumer" for g in range(GROUPS)]
    pairs: list[Pair] = []
    round_ = 0
    while len(pairs) < n:
        for g, group in enumerate(groups):
            topic = _topic(g % TOPICS)
            version = 4 if rng.random() < 0.7 else 3
            metadata = "" if rng.random() < 0.9 else f"host-{g % 97}"
            for partition in range(PARTITIONS):
                key = enc.offset_commit_key(group, topic, partition)
                value = enc.offset_commit_value(
                    version,
                    offset=1_000_000 + 5_000 * round_ + rng.randrange(5_000),
                    metadata=metadata,
                    commit_timestamp=NOW - 3_600_000 + 5_000 * round_,
                    leader_epoch=rng.randrange(20),
                )
                pairs.append((key, value))
                if len(pairs) == n:
                    return pairs
        round_ += 1
    return pairs


def _storage() -> Storage:
    storage = Storage("bench")
    storage.set_topics({_topic(t): PARTITIONS for t in range(TOPICS)}, NOW)
    for t in range(TOPICS):
        for partition in range(PARTITIONS):
            storage.add_head_offset(_topic(t), partition, 10**9, NOW)
    return storage


def _decode_and_apply(storage: Storage, pairs: list[Pair], first_order: int) -> None:
    apply = storage.apply
    for order, (key, value) in enumerate(pairs, start=first_order):
        apply(decode(key, value), order, NOW)


def _fetched(pairs: list[Pair], first_order: int) -> list[Bare]:
    """The records as the source's consumer hands them over, offsets from `first_order`."""
    return [Bare(order, key, value) for order, (key, value) in enumerate(pairs, start=first_order)]


def _through_source(pairs: list[Pair]) -> Ingest:
    """The source's step per fetched batch (the rest of the source is the Kafka consumer), over records built
    before the clock starts, for the fresh pass (orders from 0) and the filled one (orders from N)."""
    fetched = {0: _fetched(pairs, 0), len(pairs): _fetched(pairs, len(pairs))}

    def ingest(storage: Storage, pairs: list[Pair], first_order: int) -> None:
        source = OffsetsTopicSource("bench", ClusterSettings(bootstrap_servers="127.0.0.1:9092"), storage)
        records = fetched[first_order]
        for start in range(0, len(records), _BATCH):
            source._apply_batch(records[start : start + _BATCH], 0, NOW)
        assert source.progress.records[OffsetCommit] == len(pairs)

    return ingest


def _timed(label: str, run: Callable[[], None], count: int) -> float:
    """Commits per CPU second of this thread: the machine may be busy with other work, and the question is
    what one core sustains. Wall-clock time is printed beside it."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.thread_time()
    run()
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    rate = count / cpu
    print(f"{label:<48} {rate:>9,.0f} commits/s  ({count:,} in {cpu:.2f} s CPU, {wall:.2f} s wall)")
    return rate


def _fresh_then_filled(label: str, ingest: Ingest, pairs: list[Pair]) -> tuple[float, float]:
    storage = _storage()
    n = len(pairs)
    fresh = _timed(f"{label}, fresh storage", lambda: ingest(storage, pairs, 0), n)
    filled = _timed(f"{label}, filled storage", lambda: ingest(storage, pairs, n), n)
    assert storage.stats().commits_stored == 2 * n, storage.stats()
    return fresh, filled


async def _end_to_end(bootstrap: str, pairs: list[Pair]) -> None:
    """The records written to a topic of their own, then read by a real OffsetsTopicSource pointed at it as
    its offsets topic, from the start until caught up: aiokafka's fetching and record parsing included."""
    topic = f"lagwatch-bench-ingest-{time.time_ns()}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, max_batch_size=1 << 20)
        await producer.start()
        try:
            for key, value in pairs:
                await producer.send(topic, value=value, key=key, partition=0)
            await producer.flush()
        finally:
            await producer.stop()
        storage = _storage()
        cluster = ClusterSettings(bootstrap_servers=bootstrap, offsets_topic=topic)
        source = OffsetsTopicSource("bench", cluster, storage)
        gc.collect()
        wall, cpu = time.perf_counter(), time.thread_time()
        task = asyncio.create_task(source.run())
        deadline = time.monotonic() + 600
        while not source.progress.caught_up:
            if time.monotonic() > deadline or task.done():
                raise RuntimeError(f"the source did not catch up: {source.progress}")
            await asyncio.sleep(0.005)
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        n = source.progress.records[OffsetCommit]
        assert n == len(pairs), source.progress
        print(
            f"{'Kafka -> OffsetsTopicSource -> Storage':<48} {n / cpu:>9,.0f} commits/s  "
            f"({n:,} in {cpu:.2f} s CPU, {wall:.2f} s wall, connecting included)"
        )
    finally:
        await admin.delete_topics([topic])
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("n", nargs="?", type=int, default=200_000, help="offset commits (default 200,000)")
    parser.add_argument("--kafka", metavar="BOOTSTRAP", help="also read them back from this Kafka")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, one thread; {args.n:,} offset commits (v4/v3 values)")
    pairs = _records(args.n, random.Random(42))
    rates = [
        *_fresh_then_filled("decode + Storage.apply", _decode_and_apply, pairs),
        *_fresh_then_filled("OffsetsTopicSource._apply_batch", _through_source(pairs), pairs),
    ]
    verdict = "meets" if min(rates) >= TARGET else "MISSES"
    print(f"slowest {min(rates):,.0f} commits/s: {verdict} the target of {TARGET:,}/s")
    if args.kafka:
        asyncio.run(_end_to_end(args.kafka, pairs))


if __name__ == "__main__":
    main()
