"""Storage at scale: memory of 1,000,000 group-partitions with full windows, apply() and snapshot rates.

Run: `.venv/bin/python bench/bench_storage.py` (about a minute; `--groups 10000` for a quick look). One
process, one thread, so every rate is for one core. The layout: `--groups` groups x `--partitions` partitions,
group g consuming topic g mod `--topics`, HEAD offsets known for every partition, `--intervals` commits per
group-partition so every window is full.

Figures printed:
- memory: resident-set growth from filling the windows through `apply()` (records are built on the fly and
  dropped, so only the storage stays), and bytes per group-partition;
- apply: OffsetCommit records per second into full windows (the steady state: every commit an append that
  evicts the oldest slot), into a fresh storage (startup replay: groups and windows being created), and
  decoded from `__consumer_offsets` bytes by `exporter.core.decoder` and then applied;
- group_snapshot: groups and partitions materialised per second;
- the evaluator cache's refresh bookkeeping: `group_version` over every group.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import struct
import time
from collections.abc import Callable, Iterator

from exporter.core.decoder import decode
from exporter.core.model import OffsetCommit
from exporter.core.storage import Storage

NOW = 1_700_000_000_000
MiB = 1024 * 1024


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _topic(group: int, topics: int) -> str:
    return f"topic-{group % topics:05d}"


def _group(group: int) -> str:
    return f"consumer-group-{group:07d}"


def _storage(args: argparse.Namespace) -> Storage:
    storage = Storage("bench", intervals=args.intervals)
    storage.set_topics({_topic(t, args.topics): args.partitions for t in range(args.topics)}, NOW)
    for t in range(args.topics):
        for partition in range(args.partitions):
            storage.add_head_offset(_topic(t, args.topics), partition, 10**9, NOW)
    return storage


def _commits(args: argparse.Namespace, groups: range, rounds: range) -> Iterator[OffsetCommit]:
    for r in rounds:
        for g in groups:
            group, topic = _group(g), _topic(g, args.topics)
            for partition in range(args.partitions):
                yield OffsetCommit(group, topic, partition, 1000 * r + partition, NOW - 600_000 + 60_000 * r)


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:12,.0f}/s  ({count:,} in {seconds:.2f} s)"


def _timed(work: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    done = work()
    return done, time.perf_counter() - started


def _apply_all(storage: Storage, records: list[OffsetCommit], first_order: int) -> Callable[[], int]:
    def run() -> int:
        apply = storage.apply
        for order, record in enumerate(records, start=first_order):
            apply(record, order, NOW)
        return len(records)

    return run


def _offset_commit_bytes(record: OffsetCommit) -> tuple[bytes, bytes]:
    """Key type 1 and value version 3, as Kafka 2.1 to 4.0 write them."""
    group, topic = record.group.encode(), record.topic.encode()
    key = struct.pack(
        f">hh{len(group)}sh{len(topic)}si", 1, len(group), group, len(topic), topic, record.partition
    )
    value = struct.pack(">hqihq", 3, record.offset, 0, 0, record.timestamp_ms)
    return key, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--intervals", type=int, default=10)
    parser.add_argument("--sample", type=int, default=500_000, help="records per timed apply run")
    args = parser.parse_args()
    group_partitions = args.groups * args.partitions

    gc.collect()
    before = _rss()
    storage = _storage(args)
    order = 0

    def fill() -> int:
        nonlocal order
        apply = storage.apply
        for record in _commits(args, range(args.groups), range(args.intervals)):
            apply(record, order, NOW)
            order += 1
        return order

    filled, seconds = _timed(fill)
    gc.collect()
    grown = _rss() - before
    stats = storage.stats()
    assert stats.group_partitions == group_partitions
    assert stats.commits_stored == filled
    print(f"storage: {args.groups:,} groups x {args.partitions} partitions, intervals {args.intervals}")
    print(f"memory:  {grown / MiB:,.0f} MiB RSS growth for {group_partitions:,} full group-partitions")
    print(f"         {grown / group_partitions:,.0f} bytes per group-partition")
    print(f"         {_rss() / MiB:,.0f} MiB process RSS (interpreter and modules included)")
    print(f"fill:    {_rate(filled, seconds)} (record construction included)")

    sample_groups = range(min(args.groups, max(1, args.sample // args.partitions)))
    steady = list(_commits(args, sample_groups, range(args.intervals, args.intervals + 1)))
    done, seconds = _timed(_apply_all(storage, steady, order))
    order += done
    print(f"apply, full windows:      {_rate(done, seconds)}")

    fresh = _storage(args)
    cold = list(_commits(args, sample_groups, range(1)))
    done, seconds = _timed(_apply_all(fresh, cold, 0))
    print(f"apply, new groups:        {_rate(done, seconds)}")
    del fresh, cold

    encoded = [
        _offset_commit_bytes(r)
        for r in _commits(args, sample_groups, range(args.intervals + 1, args.intervals + 2))
    ]

    def decode_and_apply() -> int:
        nonlocal order
        apply = storage.apply
        for key, value in encoded:
            apply(decode(key, value), order, NOW)
            order += 1
        return len(encoded)

    stored_before = storage.stats().commits_stored
    done, seconds = _timed(decode_and_apply)
    assert storage.stats().commits_stored - stored_before == done
    print(f"decode + apply (v3):      {_rate(done, seconds)}")

    names = storage.groups()
    snapshot_sample = names[: min(len(names), 20_000)]

    def snapshots() -> int:
        for name in snapshot_sample:
            storage.group_snapshot(name, NOW)
        return len(snapshot_sample)

    done, seconds = _timed(snapshots)
    print(f"group_snapshot:           {_rate(done, seconds)} groups")
    print(f"                          {done * args.partitions / seconds:12,.0f}/s partitions")

    def versions() -> int:
        for name in names:
            storage.group_version(name)
        return len(names)

    done, seconds = _timed(versions)
    print(f"group_version, all groups: {seconds * 1000:.0f} ms for {done:,}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS:                 {peak:,.0f} MiB (with the benchmark's own record lists)")


if __name__ == "__main__":
    main()
