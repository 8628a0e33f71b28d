"""What the full collection every `full_collection_every` walks, in process: GROUPS groups x 10 partitions
filled as a replay leaves them (windows out of the collector's lists, survivors frozen), two evaluation rounds
as the app runs them (`evaluate_now`: slices, untracking, freezing), a /metrics render after each (the block
renderer, `granularity = "group"`, with the collector paused as `metrics_endpoint` does), then what
`gc_pause.freeze_survivors` does every `full_collection_every`: unfreeze everything, collect it all.

Run: `.venv/bin/python bench/bench_full_collection.py [--groups 100000]` (100,000 groups: 1,000,000
group-partitions, about 1.5 GiB and a few minutes). Prints the CPU time of each round and render, the objects
still tracked after unfreezing (by type), and the CPU time of that full collection and of a second one right
after (the first also frees what the rounds left for it). CPU time of this thread is the figure to compare
on a busy machine."""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import time

from exporter.core.model import OffsetCommit
from exporter.core.retention import TopicRetention
from exporter.core.storage import Storage
from exporter.exposition.blocks import BlockRenderer
from exporter.exposition.metrics import RenderOptions
from exporter.gc_pause import gc_paused
from exporter.runtime import ClusterRuntime
from exporter.settings import ClusterSettings, MetricsSettings, Settings

PARTITIONS = 10
TOPICS = 1_000
T0 = 1_700_000_000.0
_TOPIC_NAMES = [f"topic-{t:03d}" for t in range(TOPICS)]


class _Load:
    def __init__(self, groups: int) -> None:
        self.groups = groups
        self.now = T0
        self.order = 0

    def fill(self, storage: Storage) -> None:
        storage.set_topics(dict.fromkeys(_TOPIC_NAMES, PARTITIONS), int(T0 * 1000))
        for t in _TOPIC_NAMES:
            for p in range(PARTITIONS):
                storage.set_start_offset(t, p, 10)
        retention = TopicRetention(True, False, 7 * 86_400_000, None)
        storage.set_topic_retention(dict.fromkeys(_TOPIC_NAMES, retention))

    def step(self, runtime: ClusterRuntime, step: int, every: int = 1) -> None:
        """10 s on: every partition's HEAD moves, every `every`-th group commits on each of its partitions."""
        self.now += 10
        now_ms = int(self.now * 1000)
        storage, timelag = runtime.storage, runtime.timelag
        for t in _TOPIC_NAMES:
            for p in range(PARTITIONS):
                storage.add_head_offset(t, p, 5_000 + 100 * step, now_ms)
                if timelag is not None:
                    timelag.observe(t, p, 5_000 + 100 * step, self.now)
        at = now_ms - 1000
        for g in range(0, self.groups, every):
            for p in range(PARTITIONS):
                self.order += 1
                offset = 4_950 + 100 * step - (g % 7)
                storage.apply(
                    OffsetCommit(f"group-{g:06d}", _TOPIC_NAMES[g % TOPICS], p, offset, at), self.order, at
                )


def _cpu_ms(since: float) -> str:
    return f"{(time.thread_time() - since) * 1000:,.0f} ms"


async def _main(groups: int) -> None:
    load = _Load(groups)
    settings = Settings(
        clusters={"c1": ClusterSettings(bootstrap_servers=("k:9092",))},
        metrics=MetricsSettings(granularity="group"),
    )
    started = time.thread_time()
    with gc_paused():
        runtime = ClusterRuntime.filled("c1", settings, load.fill, clock=lambda: load.now)
        health = runtime.head.health
        health.up, health.rounds, health.last_refresh_s = True, 1, T0
        for step in range(2):
            load.step(runtime, step)
        # What a replay leaves: the groups and windows out of the collector's lists, the rest frozen.
        runtime.offsets._keep_windows()
    runtime.offsets.progress.caught_up = True
    print(f"{groups:,} groups x {PARTITIONS} partitions filled: {_cpu_ms(started)} CPU", flush=True)
    renderer = BlockRenderer(RenderOptions(granularity="group"))
    for r in range(2):
        load.step(runtime, 3 + r, every=2)
        started = time.thread_time()
        await runtime.evaluate_now()
        round_cpu = _cpu_ms(started)
        view = runtime.view()
        started = time.thread_time()
        with gc_paused():
            series = renderer.render([view]).series
        print(
            f"round {r + 1}: {round_cpu} CPU; render of {series:,} series {_cpu_ms(started)} CPU", flush=True
        )
        del view
        for _ in range(20_000):
            await asyncio.sleep(0)
    frozen = gc.get_freeze_count()
    gc.unfreeze()
    tracked = gc.get_objects()
    kinds = collections.Counter(type(o).__name__ for o in tracked).most_common(8)
    count = len(tracked)
    del tracked
    started = time.thread_time()
    gc.collect()
    first = _cpu_ms(started)
    started = time.thread_time()
    gc.collect()
    print(
        f"frozen {frozen:,}, tracked after unfreezing {count:,}: {', '.join(f'{k} {n:,}' for k, n in kinds)}"
    )
    print(f"full collection {first} CPU, again {_cpu_ms(started)} CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=100_000)
    asyncio.run(_main(parser.parse_args().groups))


if __name__ == "__main__":
    main()
