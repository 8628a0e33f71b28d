"""Accuracy of lag in seconds against a real broker: lagwatch's HEAD poller feeds a `TimeLag` while a producer
writes bursts, steady traffic and idle periods to a LogAppendTime topic, whose record timestamps are the
broker's true append times. Then every offset's interpolated append time is compared with its record's.

Run: .venv/bin/python bench/bench_lag_seconds_broker.py --bootstrap HOST:PORT [--minutes M] [--refresh S]
(scripts/kafka-local start prints a bootstrap address). The topic is created and deleted by the script.

Two query mixes, as in bench_timelag_accuracy.py: "by offset" takes every offset the run wrote (bursts weigh
by their records); "by lag" takes the offset a consumer would have committed at instants uniform over the
run (idle periods weigh by their duration).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
import uuid
from bisect import bisect_right

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from exporter.core.filters import NameFilter
from exporter.core.head_history import HeadHistory, Policy, interpolate
from exporter.core.storage import Storage
from exporter.core.timelag import TimeLag
from exporter.settings import ClusterSettings
from exporter.sources.cluster import HeadPoller


async def _workload(bootstrap: str, topic: str, seconds: float, rng: random.Random) -> int:
    """Idle periods, steady traffic and bursts until `seconds` have passed; returns the records written."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=2)
    await producer.start()
    written = 0
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            kind = rng.choice(("idle", "steady", "burst"))
            if kind == "idle":
                await asyncio.sleep(rng.uniform(3, 20))
                continue
            rate, length = (
                (rng.uniform(5, 50), rng.uniform(5, 20))
                if kind == "steady"
                else (rng.uniform(500, 2000), rng.uniform(1, 3))
            )
            started = time.monotonic()
            sent: list[asyncio.Future[object]] = []
            while (elapsed := time.monotonic() - started) < length:
                due = int(elapsed * rate) + 1 - len(sent)
                sent += [await producer.send(topic, b"x", partition=0) for _ in range(max(due, 0))]
                await asyncio.sleep(0.002 if kind == "burst" else rng.expovariate(rate))
            await asyncio.gather(*sent)
            written += len(sent)
    finally:
        await producer.stop()
    return written


async def _append_times(bootstrap: str, topic: str) -> list[float]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        times: list[float] = []
        while len(times) < end:
            for record in (await consumer.getmany(tp, timeout_ms=500, max_records=10_000)).get(tp, []):
                times.append(record.timestamp / 1000)
        return times
    finally:
        await consumer.stop()


def _report(label: str, errors: list[float], asked: int, refresh: float) -> None:
    if not errors:
        print(f"  {label}: {asked} queries, none interpolated")
        return
    absolute = sorted(abs(e) for e in errors)

    def pick(q: float) -> float:
        return absolute[min(len(absolute) - 1, int(q * len(absolute)))]

    print(
        f"  {label:10} {asked:7d} queries, {len(errors) / asked:6.1%} interpolated; |error| "
        f"median {pick(0.5):.3f} s ({pick(0.5) / refresh:.2f}x) p90 {pick(0.9):.3f} s p99 {pick(0.99):.3f} s "
        f"({pick(0.99) / refresh:.2f}x) max {absolute[-1]:.3f} s ({absolute[-1] / refresh:.2f}x); "
        f"signed median {statistics.median(errors):+.3f} s"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--refresh", type=float, default=1.0, help="offset_refresh in seconds")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not args.bootstrap:
        parser.error("--bootstrap (or KAFKA_BOOTSTRAP_SERVERS) is required")

    topic = f"bench-lagsec-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=args.bootstrap)
    await admin.start()
    await admin.create_topics(
        [NewTopic(topic, 1, 1, topic_configs={"message.timestamp.type": "LogAppendTime"})]
    )
    try:
        timelag = TimeLag(Policy.for_refresh(args.refresh, span_s=args.minutes * 60 + 120))
        cluster = ClusterSettings(
            bootstrap_servers=(args.bootstrap,), offset_refresh=args.refresh, topic_refresh=5
        )
        storage = Storage("bench", topic_filter=NameFilter(f"^{topic}$", None))
        poller = HeadPoller("bench", cluster, storage, observer=timelag)
        polling = asyncio.create_task(poller.run())
        await poller.next_round(0)
        started = time.time()
        written = await _workload(args.bootstrap, topic, args.minutes * 60, random.Random(args.seed))
        await asyncio.sleep(3 * args.refresh)
        finished = time.time()
        polling.cancel()
        await asyncio.gather(polling, return_exceptions=True)
        truth = await _append_times(args.bootstrap, topic)
    finally:
        await admin.delete_topics([topic])
        await admin.close()

    history = timelag.histories[(topic, 0)]
    print(
        f"{written} records in {args.minutes:g} min on a LogAppendTime topic, HEAD every {args.refresh:g} s, "
        f"{len(history)} history points, {poller.health.rounds} rounds"
    )
    by_offset = [e for o, t in enumerate(truth) if (e := _error(history, o, t)) is not None]
    _report("by offset", by_offset, len(truth), args.refresh)
    rng = random.Random(args.seed)
    instants = sorted(rng.uniform(started, finished) for _ in range(20_000))
    # The offset a caught-up consumer would have committed at instant t: every record appended by then.
    committed = [bisect_right(truth, t) for t in instants]
    lagging = [c for c in committed if c < len(truth)]
    by_lag = [e for c in lagging if (e := _error(history, c, truth[c])) is not None]
    _report("by lag", by_lag, len(lagging), args.refresh)


def _error(history: HeadHistory, offset: int, appended: float) -> float | None:
    estimate = interpolate(history, offset)
    return None if estimate is None else estimate - appended


if __name__ == "__main__":
    asyncio.run(main())
