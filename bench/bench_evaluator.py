"""Time `evaluate_group` over 100,000 group-partitions: 10,000 groups x 10 partitions, full 10-commit windows.

Run: `.venv/bin/python bench/bench_evaluator.py`. Snapshots are built up front; only evaluation is timed. CPU
seconds are printed beside the wall time: on a shared machine they are the figure to compare. Two mixes:
"realistic" (40% caught up, 30% lagging with a zero lag somewhere in the window, 20% WARN, 10% STOP) and
"worst" (every partition WARN: every rule runs over the whole window).

Each mix runs twice. "collector paused" is how the app evaluates (`Evaluation` and `bench_round.py`): the
cycle collector off (`gc_pause.gc_paused`), the young generations collected between batches of 500 groups; it
leaves out the app's taking of a round's values out of the collector's lists (`bench_round_memory.py
--evaluation` has it). "collector on" is the figure of earlier sessions: the collector on throughout, whose
full collections (counted, with their CPU) walk the 100,000 snapshots this script holds up front and the
statuses made so far: the app runs none while it evaluates (one every `full_collection_every`, after a
round)."""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable

from exporter.core.model import Commit, GroupSnapshot, GroupStatus, PartitionSnapshot, Status
from exporter.core.verdicts import evaluate_group
from exporter.gc_pause import gc_paused

GROUPS = 10_000
PARTITIONS = 10
INTERVALS = 10
ROUNDS = 5
BATCH = 500
NOW_S = 1_700_000_600
T0_MS = (NOW_S - 600) * 1000


def _window(lags: list[int]) -> tuple[Commit, ...]:
    return tuple(
        Commit(offset=1000 + 100 * i, order=i, timestamp_ms=T0_MS + 60_000 * i, lag=lag)
        for i, lag in enumerate(lags)
    )


def _caught_up(_: random.Random) -> PartitionSnapshot:
    return _partition(_window([0] * INTERVALS), current_lag=0)


def _lag_with_zero(rng: random.Random) -> PartitionSnapshot:
    lags = [rng.randint(0, 5) for _ in range(INTERVALS)]
    lags[rng.randrange(INTERVALS)] = 0
    return _partition(_window(lags), current_lag=rng.randint(1, 50))


def _warn(rng: random.Random) -> PartitionSnapshot:
    lags = sorted(rng.randint(1, 500) for _ in range(INTERVALS))
    return _partition(_window(lags), current_lag=lags[-1] + 10)


def _stop(rng: random.Random) -> PartitionSnapshot:
    lags = [rng.randint(1, 500) for _ in range(INTERVALS)]
    old = tuple(
        Commit(offset=c.offset, order=c.order, timestamp_ms=c.timestamp_ms - 1_200_000, lag=c.lag)
        for c in _window(lags)
    )
    return _partition(old, current_lag=900)


def _partition(window: tuple[Commit, ...], current_lag: int) -> PartitionSnapshot:
    head = window[-1].offset + current_lag
    return PartitionSnapshot.of(
        topic="",
        partition=0,
        window=window,
        broker_offsets=tuple(range(head - INTERVALS + 1, head + 1))
        if current_lag >= INTERVALS
        else (head,) * 10,
        current_lag=current_lag,
    )


Maker = Callable[[random.Random], PartitionSnapshot]
REALISTIC: list[tuple[Maker, int]] = [(_caught_up, 40), (_lag_with_zero, 30), (_warn, 20), (_stop, 10)]
WORST: list[tuple[Maker, int]] = [(_warn, 1)]


def build(mix: list[tuple[Maker, int]], seed: int = 1) -> list[GroupSnapshot]:
    rng = random.Random(seed)
    makers = [maker for maker, _ in mix]
    weights = [weight for _, weight in mix]
    snapshots = []
    for g in range(GROUPS):
        parts = []
        for p in range(PARTITIONS):
            made = rng.choices(makers, weights)[0](rng)
            parts.append(
                PartitionSnapshot.of(
                    topic=f"topic-{g % 50}",
                    partition=p,
                    window=made.window,
                    broker_offsets=made.broker_offsets,
                    current_lag=made.current_lag,
                    owner="/10.0.0.1",
                    client_id="client",
                )
            )
        snapshots.append(
            GroupSnapshot(cluster="bench", group=f"group-{g}", partitions=tuple(parts), last_commit_ms=0)
        )
    return snapshots


class _FullCollections:
    """The collector's full collections while counting: how many, and their CPU seconds."""

    def __init__(self) -> None:
        self.count = 0
        self.cpu = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.process_time()
        else:
            self.count += 1
            self.cpu += time.process_time() - self._started


def _evaluate(snapshots: list[GroupSnapshot], paused: bool) -> list[GroupStatus]:
    if not paused:
        return [evaluate_group(snapshot, NOW_S) for snapshot in snapshots]
    results: list[GroupStatus] = []
    with gc_paused():
        for start in range(0, len(snapshots), BATCH):
            results += [evaluate_group(snapshot, NOW_S) for snapshot in snapshots[start : start + BATCH]]
            gc.collect(1)
    return results


def run(name: str, snapshots: list[GroupSnapshot]) -> None:
    total = GROUPS * PARTITIONS
    for paused in (True, False):
        timings = []
        cpu = []
        partition_counts: Counter[Status] = Counter()
        results: list[GroupStatus] = []
        full = _FullCollections()
        gc.callbacks.append(full)
        try:
            for _ in range(ROUNDS):
                results = []  # free the previous round first, so every round starts from the same heap
                start, start_cpu = time.perf_counter(), time.process_time()
                results = _evaluate(snapshots, paused)
                timings.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
        finally:
            gc.callbacks.remove(full)
        for result in results:
            partition_counts.update(p.status for p in result.partitions)
        best, median = min(timings), statistics.median(timings)
        mix = ", ".join(f"{status.name} {count}" for status, count in sorted(partition_counts.items()))
        how = "collector paused (as the app runs it)" if paused else "collector on"
        print(f"{name}, {how}: {total:,} group-partitions ({mix})")
        print(
            f"  best of {ROUNDS}: {best:.3f} s ({best / total * 1e6:.2f} us/partition), "
            f"median {median:.3f} s; CPU best {min(cpu):.3f} s, median {statistics.median(cpu):.3f} s; "
            f"full collections {full.count / ROUNDS:.1f} a pass, {full.cpu / ROUNDS:.3f} CPU-s"
        )


def main() -> None:
    run("realistic", build(REALISTIC))
    run("worst (all WARN)", build(WORST))


if __name__ == "__main__":
    main()
