"""One evaluation round as the app runs it, after a HEAD refresh that moved every partition: snapshots from
the real storage, Burrow's rules, the group roll-up, then the retention headroom of every partition
(`core.round.evaluation_round`, lag in seconds off), in batches with the collector paused.

Run: `.venv/bin/python bench/bench_round.py`. 10,000 groups x 10 partitions, full windows of 10 commits.
Prints the wall and CPU time of a round (CPU time is the figure to compare on a busy machine) and the longest
batch (the longest the event loop would wait), with and without the collector pause the app uses, so the
figure for "100,000 group-partitions evaluated" includes everything a round does, not only the rules."""

from __future__ import annotations

import gc
import statistics
import time

from exporter.core.evaluator import EvaluationCache
from exporter.core.model import OffsetCommit
from exporter.core.round import evaluation_round
from exporter.core.storage import Storage
from exporter.gc_pause import gc_paused

GROUPS = 10_000
PARTITIONS = 10
INTERVALS = 10
BATCH = 500
ROUNDS = 4
NOW_MS = 1_700_000_600_000


def _storage() -> Storage:
    storage = Storage("bench", intervals=INTERVALS)
    storage.set_topics({f"t{g}": PARTITIONS for g in range(GROUPS)}, NOW_MS)
    order = 0
    for i in range(INTERVALS):
        at = NOW_MS - (INTERVALS - i) * 10_000
        for g in range(GROUPS):
            for p in range(PARTITIONS):
                storage.add_head_offset(f"t{g}", p, 1050 + 100 * i, at)
                order += 1
                storage.apply(OffsetCommit(f"g{g}", f"t{g}", p, 1000 + 100 * i, at), order, NOW_MS)
    return storage


def _round(storage: Storage, cache: EvaluationCache, now_ms: int, paused: bool) -> tuple[float, float, float]:
    for g in range(GROUPS):
        for p in range(PARTITIONS):
            storage.add_head_offset(f"t{g}", p, now_ms // 1000, now_ms)
    cpu = time.process_time()
    started = last = time.perf_counter()
    worst = 0.0
    steps = evaluation_round(
        cache, storage, None, now_ms / 1000, now_ms / 1000, timer=time.perf_counter, batch=BATCH
    )
    if paused:
        with gc_paused():
            for _ in steps:
                gc.collect(1)
                worst = max(worst, time.perf_counter() - last)
                last = time.perf_counter()
    else:
        for _ in steps:
            worst = max(worst, time.perf_counter() - last)
            last = time.perf_counter()
    return time.perf_counter() - started, worst, time.process_time() - cpu


def main() -> None:
    storage = _storage()
    cache = EvaluationCache()
    print(f"{GROUPS:,} groups x {PARTITIONS} partitions, intervals {INTERVALS}, batches of {BATCH} groups")
    for paused in (False, True):
        start = NOW_MS + 100_000 * paused
        results = [_round(storage, cache, start + 10_000 * (r + 1), paused) for r in range(ROUNDS)]
        rounds = [r for r, _, _ in results]
        worst = max(w for _, w, _ in results)
        cpu = statistics.median(c for _, _, c in results)
        label = "collector paused (as the app runs it)" if paused else "collector on"
        print(
            f"{label:40s} round median {statistics.median(rounds):.3f} s ({cpu:.3f} CPU-s), "
            f"best {min(rounds):.3f} s, longest batch {worst * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
