"""Storage at 1,000,000 group-partitions: RSS per group-partition, apply rate while filling, a snapshot pass.

Run: `.venv/bin/python bench/bench_scale.py` (2-4 minutes on one core; `--groups 10000` for a quick look).
Pure: no Kafka, no event loop. It fills one real `Storage` the way the offsets source does at start-up: the
metadata and a HEAD round first, then `--intervals` rounds of offset commits through `Storage.apply_batch`,
in batches of decoded records (`CommitFields`, as `decoder.decode_batch` gives them), each record with the
next `__consumer_offsets` order, every commit 60 s after the previous one of its partition, so that every
window ends full. `--groups` groups x `--partitions` partitions, group g consuming topic g mod `--topics`.
(The end-to-end replay from a real broker is bench_replay.py's.)

Figures printed:
- RSS above the empty process (interpreter, lagwatch imported, nothing stored), per group-partition, after the
  records were dropped and the collector ran; the target of issue #17 is at most 512 bytes;
- apply: offset commits per second, the batches built outside the timed calls; "fill" is
  the first rounds (groups and windows being created, as a replay starts), "full" the last round (every
  commit an append that evicts the oldest slot); wall and CPU seconds, as the machine may be shared;
- a snapshot pass: `group_snapshot` of every group (what an evaluation round reads), and `group_version` of
  every group (what the evaluator's cache checks each round).
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from collections.abc import Callable

from exporter.core.model import CommitFields
from exporter.core.storage import Storage

NOW = 1_700_000_000_000
MiB = 1024 * 1024
_CHUNK = 100_000
"""Records built per chunk: enough to time, few enough not to weigh on the RSS figure."""


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _topic(topic: int) -> str:
    return f"topic-{topic:05d}"


def _group(group: int) -> str:
    return f"consumer-group-{group:07d}"


class _Clock:
    """Wall and CPU seconds of the timed parts only."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    def time(self, work: Callable[..., None], *args: object) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        work(*args)
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu


def _rate(records: int, clock: _Clock) -> str:
    return (
        f"{records / clock.wall:10,.0f}/s wall, {records / clock.cpu:10,.0f}/s CPU "
        f"({records:,} records in {clock.wall:.1f} s wall, {clock.cpu:.1f} s CPU)"
    )


def _apply(storage: Storage, records: list[CommitFields], first: int) -> None:
    storage.apply_batch(records, range(first, first + len(records)), NOW)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--intervals", type=int, default=10)
    args = parser.parse_args()
    group_partitions = args.groups * args.partitions

    gc.collect()
    empty = _rss()
    # The names count: the storage keeps each one once, as the decoder made it for the first record.
    groups = [_group(g) for g in range(args.groups)]
    topics = [_topic(t) for t in range(args.topics)]
    storage = Storage("bench", intervals=args.intervals)
    storage.set_topics(dict.fromkeys(topics, args.partitions), NOW)
    for topic in topics:
        for partition in range(args.partitions):
            storage.add_head_offset(topic, partition, 10**9, NOW)

    order = 0
    fill, full = _Clock(), _Clock()
    for r in range(args.intervals):
        at = NOW - 60_000 * (args.intervals - r)
        for start in range(0, args.groups, _CHUNK // args.partitions):
            chunk = [
                (groups[g], topics[g % args.topics], p, 1000 * r + p, at, -1, "")
                for g in range(start, min(args.groups, start + _CHUNK // args.partitions))
                for p in range(args.partitions)
            ]
            (full if r == args.intervals - 1 else fill).time(_apply, storage, chunk, order)
            order += len(chunk)
        del chunk
    gc.collect()
    grown = _rss() - empty
    stats = storage.stats()
    assert stats.group_partitions == group_partitions
    assert stats.commits_stored == order
    snapshot = storage.group_snapshot(groups[-1], NOW)
    assert snapshot is not None
    assert all(None not in p.window for p in snapshot.partitions)

    print(
        f"storage: {args.groups:,} groups x {args.partitions} partitions "
        f"({group_partitions:,} group-partitions), {args.topics:,} topics, intervals {args.intervals}"
    )
    print(f"RSS:     {grown / MiB:,.0f} MiB above the empty process ({empty / MiB:,.0f} MiB)")
    print(f"         {grown / group_partitions:,.0f} bytes per group-partition (target: at most 512)")
    print(f"apply, fill:  {_rate(order - group_partitions, fill)}")
    print(f"apply, full:  {_rate(group_partitions, full)}")

    clock = _Clock()

    def snapshots() -> None:
        for name in groups:
            storage.group_snapshot(name, NOW)

    clock.time(snapshots)
    print(
        f"group_snapshot of every group: {clock.wall:.2f} s wall, {clock.cpu:.2f} s CPU "
        f"({group_partitions / clock.cpu:,.0f} partitions/s CPU)"
    )
    clock = _Clock()

    def versions() -> None:
        for name in groups:
            storage.group_version(name)

    clock.time(versions)
    print(f"group_version of every group: {clock.wall * 1000:.0f} ms wall, {clock.cpu * 1000:.0f} ms CPU")


if __name__ == "__main__":
    main()
