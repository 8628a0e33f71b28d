"""Replay of `__consumer_offsets` at start-up against a real broker, beside the broker's raw read rate.

A restart of lagwatch reads the whole offsets topic before its statuses rest on current data, so replay speed
is time without trustworthy statuses. This fills a real broker with `loadgen.py` (G groups x P partitions x C
commits, written by the broker itself from OffsetCommit requests), then alternates, `--runs` times each:

- raw read: one aiokafka consumer assigned every partition of `__consumer_offsets`, read_committed, from the
  earliest offset to the end, counting records without decoding them (what the broker and client can deliver);
- lagwatch replay: the real `OffsetsTopicSource` into a fresh `Storage` until it reports caught up (fetching,
  decoding, storing: what a restart does before statuses can be computed).

Prints medians of records per second (wall) and the CPU seconds of this process for both, their ratio, and the
commits the replayed storage holds, and the verdict against issue #17's target (250,000 records/s end to end).
On a shared machine the wall figure is what the process was given: each run also prints how long it waited for
a CPU while runnable (run queue, /proc/self/task/*/schedstat) and the rate without that wait, with a core to
itself, beside the load average.
`--profile N` then profiles one replay and prints its N most expensive functions (own time) and the own time
by part (decode, storage, fetch, offsets source, the rest), to show where the time goes.

    scripts/kafka-local start --base-port 19092
    .venv/bin/python bench/bench_replay.py --bootstrap 127.0.0.1:19092 --groups 10000 --commits 12
    .venv/bin/python bench/bench_replay.py --bootstrap 127.0.0.1:19092 --no-load --profile 25
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition
from lagwatch_process import cpu_wait_seconds, load_average

from exporter.core.storage import Storage
from exporter.settings import ClusterSettings
from exporter.sources.offsets_topic import OffsetsTopicSource

_OFFSETS_TOPIC = "__consumer_offsets"
_TIMEOUT_S = 900.0
_TARGET = 250_000
"""Records per second of wall time, end to end (issue #17: a third of the raw read rate it measured)."""


class Run:
    def __init__(self, records: int, wall: float, cpu: float, waited: float) -> None:
        self.records = records
        self.wall = wall
        self.cpu = cpu
        self.waited = waited
        """Seconds of `wall` this process was runnable but waiting for a CPU."""

    @property
    def rate(self) -> float:
        return self.records / self.wall

    @property
    def cpu_rate(self) -> float:
        """Records per CPU second of this process: what the code costs, whatever else the machine runs."""
        return self.records / self.cpu

    @property
    def unstarved_rate(self) -> float:
        """Records per second of the wall time less the run-queue wait: the rate with a core to itself."""
        return self.records / max(self.wall - self.waited, 1e-9)


class _Clock:
    """Wall, CPU and run-queue wait of this process from its start."""

    def __init__(self) -> None:
        self.wall, self.cpu, self.waited = (
            time.perf_counter(),
            time.process_time(),
            cpu_wait_seconds(os.getpid()),
        )

    def run(self, records: int) -> Run:
        return Run(
            records,
            time.perf_counter() - self.wall,
            time.process_time() - self.cpu,
            cpu_wait_seconds(os.getpid()) - self.waited,
        )


async def _offsets_partitions(bootstrap: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([_OFFSETS_TOPIC])
        return len(described["partitions"])
    finally:
        await admin.close()


async def raw_read(bootstrap: str) -> Run:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(_OFFSETS_TOPIC, p) for p in range(await _offsets_partitions(bootstrap))]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp, end in ends.items() if end > 0}
        records = 0
        clock = _Clock()
        deadline = time.monotonic() + _TIMEOUT_S
        while remaining:
            if time.monotonic() > deadline:
                raise TimeoutError(f"raw read did not reach the end of {len(remaining)} partitions")
            batches = await consumer.getmany(timeout_ms=500, max_records=50_000)
            for batch in batches.values():
                records += len(batch)
            # read_committed may stop short of the end on control records: the position is what counts.
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return clock.run(records)
    finally:
        await consumer.stop()


async def replay(bootstrap: str, storages: list[Storage] | None = None) -> Run:
    storage = Storage("bench")
    source = OffsetsTopicSource(
        "bench", ClusterSettings(bootstrap_servers=tuple(bootstrap.split(","))), storage
    )
    gc.collect()
    clock = _Clock()
    task = asyncio.create_task(source.run())
    try:
        deadline = time.monotonic() + _TIMEOUT_S
        while not source.progress.caught_up:
            if time.monotonic() > deadline or task.done():
                raise RuntimeError(f"the source did not catch up: {source.progress}")
            await asyncio.sleep(0.01)
        run = clock.run(sum(source.progress.records.values()))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    if storages is not None:
        storages.append(storage)
    return run


async def _timed(measure: Callable[[], Awaitable[Run]], name: str) -> Run:
    result = await measure()
    print(
        f"  {name}: {result.records:,} records, {result.rate:,.0f}/s wall, {result.cpu_rate:,.0f}/s CPU; "
        f"waited {result.waited:.1f} of {result.wall:.1f} s for a CPU, {result.unstarved_rate:,.0f}/s "
        f"without the wait; load average {load_average()}",
        flush=True,
    )
    return result


async def _main(args: argparse.Namespace) -> int:
    if not args.no_load:
        layout = loadgen.Layout(
            f"replay-{time.time_ns() // 10**9}",
            args.groups,
            args.partitions,
            args.topics,
            args.commits,
            10,
            25,
        )
        committer = await loadgen.populate(args.bootstrap, layout)
        await committer.close()
    raws: list[Run] = []
    replays: list[Run] = []
    for _ in range(args.runs):
        raws.append(await _timed(lambda: raw_read(args.bootstrap), "raw read"))
        replays.append(await _timed(lambda: replay(args.bootstrap), "lagwatch replay"))
    print(f"records in {_OFFSETS_TOPIC}: {replays[-1].records:,}; medians of {args.runs} runs each:")
    for name, runs in (("raw read (no decoding)", raws), ("lagwatch replay", replays)):
        print(
            f"  {name:<24} {statistics.median(r.rate for r in runs):>10,.0f} records/s wall "
            f"{statistics.median(r.cpu_rate for r in runs):>10,.0f} records/CPU-s "
            f"{statistics.median(r.unstarved_rate for r in runs):>10,.0f} records/s less the run-queue wait"
        )
    wall_ratio = statistics.median(r.rate for r in replays) / statistics.median(r.rate for r in raws)
    cpu_ratio = statistics.median(r.cpu_rate for r in replays) / statistics.median(r.cpu_rate for r in raws)
    print(f"  lagwatch replay / raw read: {wall_ratio:.0%} (wall), {cpu_ratio:.0%} (CPU)")
    replay_rate = statistics.median(r.rate for r in replays)
    verdict = "meets" if replay_rate >= _TARGET else "MISSES"
    print(f"  replay {replay_rate:,.0f} records/s wall: {verdict} the target of {_TARGET:,}/s")
    unstarved = statistics.median(r.unstarved_rate for r in replays)
    verdict = "would meet" if unstarved >= _TARGET else "would miss"
    print(f"  with a core to itself (less the run-queue wait) {unstarved:,.0f} records/s: {verdict} it")
    kept: list[Storage] = []
    await replay(args.bootstrap, kept)
    print(
        f"storage after a replay: {kept[0].stats().commits_stored:,} commits stored; "
        f"max RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB"
    )
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        await replay(args.bootstrap)
        profiler.disable()
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(args.profile)
        _print_parts(stats)
    return 0


_PARTS = (
    (
        "decode",
        tuple(
            f"/exporter/core/{module}.py"
            for module in ("decoder", "wire", "offset_schemas", "group_schemas", "fast_commits")
        ),
    ),
    (
        "storage",
        tuple(
            f"/exporter/core/{module}.py"
            for module in ("storage", "windows", "groups", "topics", "membership", "filters")
        ),
    ),
    # Before the offsets source: raw_records is the source's side of aiokafka's fetching.
    ("fetch (aiokafka, raw_records)", ("/aiokafka/", "/exporter/sources/raw_records.py")),
    ("offsets source", ("/exporter/sources/",)),
)


def _part(filename: str) -> str:
    return next(
        (name for name, markers in _PARTS if any(m in filename for m in markers)), "asyncio and the rest"
    )


def _print_parts(stats: pstats.Stats) -> None:
    """Own time by part of the replay. A built-in function (struct's unpack_from, bytes.decode, len...) or a
    generated one (a dataclass's __init__) counts for the part that called it, so that decode is everything
    decoding costs."""
    parts: dict[str, float] = {}
    entries = stats.stats  # type: ignore[attr-defined]
    for (filename, _, _), (_, _, own, _, callers) in entries.items():
        if filename not in ("~", "<string>"):
            parts[_part(filename)] = parts.get(_part(filename), 0.0) + own
            continue
        for (caller_file, _, _), (_, _, from_caller, _) in callers.items():
            parts[_part(caller_file)] = parts.get(_part(caller_file), 0.0) + from_caller
    total = sum(parts.values())
    print("own time by part (under the profiler, which inflates many small calls):")
    for name, seconds in sorted(parts.items(), key=lambda item: -item[1]):
        print(f"  {name:<30} {seconds:>7.2f} s  {seconds / total:>4.0%}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--topics", type=int, default=1_000)
    parser.add_argument("--commits", type=int, default=12)
    parser.add_argument("--runs", type=int, default=3, help="runs of each read, alternated")
    parser.add_argument("--no-load", action="store_true", help="read what the broker already holds")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="profile a replay: top N")
    args = parser.parse_args()
    if not args.bootstrap:
        parser.error("--bootstrap (or KAFKA_BOOTSTRAP_SERVERS) is required")
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
