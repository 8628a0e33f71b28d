"""Retention headroom per round: what computing lost messages, margin and headroom in seconds adds to the
evaluation round the app runs after every HEAD refresh, and what its families add to a scrape.

Run: `.venv/bin/python bench/bench_retention.py`. Times are CPU seconds of the measuring thread (the machine
is shared). 10,000 groups x 10 partitions on topics with time-based retention, every log start known. The
round is `ClusterRuntime.evaluate` with lag in seconds off, run once to evaluate and then again: the second
round re-evaluates nothing (the inputs did not change) and so costs what the headroom costs, plus the cache's
checks, which the first line measures without headroom for comparison.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from exporter.core.model import OffsetCommit
from exporter.core.retention import TopicRetention
from exporter.exposition.metrics import RenderResult, render
from exporter.runtime import ClusterRuntime
from exporter.settings import ClusterSettings, LagSecondsSettings, Settings

GROUPS = 10_000
PARTITIONS = 10
ROUNDS = 5
NOW_MS = 1_700_000_600_000
WEEK = TopicRetention(delete=True, compact=False, retention_ms=604_800_000, retention_bytes=None)


def _runtime(with_log_starts: bool) -> ClusterRuntime:
    cluster = ClusterSettings(bootstrap_servers=("127.0.0.1:9",))
    settings = Settings(clusters={"bench": cluster}, lag_seconds=LagSecondsSettings(enabled=False))
    runtime = ClusterRuntime("bench", settings, cluster, clock=lambda: NOW_MS / 1000)
    storage = runtime.storage
    storage.set_topics({f"t{g}": PARTITIONS for g in range(GROUPS)}, NOW_MS)
    order = 0
    for g in range(GROUPS):
        for p in range(PARTITIONS):
            storage.add_head_offset(f"t{g}", p, 2000, NOW_MS)
            if with_log_starts:
                storage.set_start_offset(f"t{g}", p, 500)
            order += 1
            storage.apply(OffsetCommit(f"g{g}", f"t{g}", p, 1000, NOW_MS), order, NOW_MS)
    if with_log_starts:
        storage.set_topic_retention({f"t{g}": WEEK for g in range(GROUPS)})
    # As after the first replay and HEAD round, which the app waits for before it evaluates anything.
    runtime.offsets.progress.caught_up = True
    runtime.head.health.rounds = 1
    return runtime


async def _steady_round(runtime: ClusterRuntime) -> float:
    await runtime.evaluate()
    times = []
    for _ in range(ROUNDS):
        started = time.thread_time()
        await runtime.evaluate()
        times.append(time.thread_time() - started)
    return statistics.median(times)


async def main() -> None:
    print(f"groups={GROUPS} partitions/group={PARTITIONS} rounds={ROUNDS} (median)")
    without = _runtime(with_log_starts=False)
    with_starts = _runtime(with_log_starts=True)
    print(f"round without log starts (no headroom): {await _steady_round(without) * 1000:.0f} ms")
    print(f"round with headroom for every partition: {await _steady_round(with_starts) * 1000:.0f} ms")
    figures = sum(h is not None for hs in with_starts.headroom().values() for h in hs)
    print(f"partitions with a headroom: {figures}")
    plain, plain_s = _render(without)
    full, full_s = _render(with_starts)
    print(
        f"scrape: {plain.series} series and {plain_s * 1000:.0f} ms to render without, {full.series} and "
        f"{full_s * 1000:.0f} ms with ({full.series - plain.series} more)"
    )


def _render(runtime: ClusterRuntime) -> tuple[RenderResult, float]:
    times = []
    for _ in range(ROUNDS):
        started = time.thread_time()
        result = render([runtime.view()])
        times.append(time.thread_time() - started)
    return result, statistics.median(times)


if __name__ == "__main__":
    asyncio.run(main())
