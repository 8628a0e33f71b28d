"""Memory of evaluation rounds in the steady state, in process: what a round keeps alive, what it costs at its
peak, and the CPU it takes, round after round, without a broker.

The layout is `loadgen.py`'s: 10,000 groups x 10 partitions, group g consuming topic g mod 1,000, 40% of the
groups caught up and the others lagging by 1-19 messages, full windows of 10 commits 10 s apart. Then every
round is a steady-state HEAD round: every partition's HEAD moves 10 messages (observed by the storage and by
lag in seconds), half the groups commit every partition (the even groups in one round, the odd in the next),
and one `evaluation_round` runs with lag in seconds and retention headroom on, as the app runs it (collector
paused, young generations collected between batches, survivors frozen at the end). The round before stays
published until the new one replaces it, as `Evaluation.published` holds it.

With `--render`, each published round is also rendered as `/metrics` renders it (one `BlockRenderer` kept
from round to round, so the render keeps its blocks and rows of the round before), and the CPU and RSS
include it: the steady state's three peaks in one process. Under another allocator (`LD_PRELOAD=
libjemalloc.so.2 PYTHONMALLOC=malloc`, say) it shows what the allocator does to the arenas the peaks leave.

Printed per round: CPU seconds, RSS, and with `--tracemalloc` the traced memory after the round and its peak
during the round, both less what was traced before the first round (the storage, lag-in-seconds histories),
per group-partition. `--top N` lists the N biggest allocation sites after the last round. With `--anew` only
the last round (and its render, with `--render`) is traced from its start: what it made that is still alive
after it, that is what the round did not share with the round before, in bytes and memory blocks per
group-partition (and with `--top N`, by site): the small objects whose peaks leave pymalloc's arenas
part-used.

With `--evaluation` each round runs through `exporter.evaluation.Evaluation` on an event loop instead, as the
app runs it: what a round makes taken out of the collector's lists, the round replaced let go a slice at a
time; printed, the CPU seconds of each round with that work and the median of the rounds after the first two.

Run: `.venv/bin/python bench/bench_round_memory.py [--rounds 8] [--render] [--tracemalloc | --anew] [--top 12]
[--evaluation]`
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import inspect
import random
import resource
import statistics
import time
import tracemalloc

from exporter.core.evaluator import EvaluationCache
from exporter.core.head_history import Policy
from exporter.core.retention import TopicRetention
from exporter.core.round import Round, evaluation_round
from exporter.core.storage import Storage
from exporter.core.timelag import TimeLag
from exporter.evaluation import Evaluation
from exporter.exposition.blocks import BlockRenderer
from exporter.exposition.cluster_view import ClusterView
from exporter.exposition.metrics import RenderOptions
from exporter.gc_pause import freeze_survivors, gc_paused
from exporter.sources.cluster import ClusterHealth
from exporter.sources.progress import SourceProgress

INTERVALS = 10
STEP = 10
REFRESH_S = 10
BASE = 1_000_000
"""Offsets start here: a real partition's offsets are not the small integers Python shares."""
T0_MS = 1_763_000_000_000
_PAGE = resource.getpagesize()


class Load:
    """The storage, lag in seconds and the clock of the steady state."""

    def __init__(self, groups: int, partitions: int, topics: int) -> None:
        self.groups, self.partitions, self.topics = groups, partitions, topics
        rng = random.Random(1)
        self.lag = [0 if rng.random() < 0.4 else rng.randrange(1, 2 * STEP) for _ in range(groups)]
        self.storage = Storage("bench", intervals=INTERVALS)
        self.timelag = TimeLag(Policy.for_refresh(REFRESH_S))
        self.round = 0
        self.order = 0
        self.now_ms = T0_MS
        names = {self._topic(t): partitions for t in range(topics)}
        self.storage.set_topics(names, T0_MS)
        retention = TopicRetention(delete=True, compact=False, retention_ms=604_800_000, retention_bytes=None)
        self.storage.set_topic_retention(dict.fromkeys(names, retention))
        for name in names:
            for p in range(partitions):
                self.storage.set_start_offset(name, p, 0)
        for _ in range(INTERVALS):
            self.step(committing=range(groups))

    @staticmethod
    def _topic(t: int) -> str:
        return f"topic-{t:05d}"

    def step(self, committing: range | list[int]) -> None:
        """One refresh interval: every HEAD moves `STEP` messages, then the `committing` groups commit."""
        self.round += 1
        self.now_ms += REFRESH_S * 1000
        head = BASE + (self.round + 2) * STEP
        for t in range(self.topics):
            name = self._topic(t)
            for p in range(self.partitions):
                self.storage.add_head_offset(name, p, head, self.now_ms)
                self.timelag.observe(name, p, head, self.now_ms / 1000)
        batch = []
        orders = []
        for g in committing:
            offset = BASE + (self.round + 1) * STEP - self.lag[g]
            topic = self._topic(g % self.topics)
            for p in range(self.partitions):
                self.order += 1
                batch.append((f"group-{g:06d}", topic, p, offset, self.now_ms - 300, -1, ""))
                orders.append(self.order)
        self.storage.apply_batch(batch, orders, self.now_ms)


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE / 2**20


def _run_round(load: Load, cache: EvaluationCache, published: Round) -> Round:
    now = load.now_ms / 1000
    steps = evaluation_round(
        cache, load.storage, load.timelag, now, now, timer=time.perf_counter, batch=50, **_previous(published)
    )
    with gc_paused():
        while True:
            try:
                next(steps)
            except StopIteration as done:
                result: Round = done.value
                break
            gc.collect(1)
        freeze_survivors()
    return result


def _render(renderer: BlockRenderer, storage: Storage, published: Round) -> None:
    """Render the round as `/metrics` renders a cluster's view of it (`ClusterRuntime.view`)."""
    topics = storage.topics()
    view = ClusterView(
        name="bench",
        groups=tuple(published.statuses[g] for g in sorted(published.statuses)),
        topics=[(t, storage.head_offsets(t) or ()) for t in topics],
        lag_seconds=published.lag_seconds,
        headroom=published.headroom,
        topic_starts={t: storage.start_offsets(t) or () for t in topics},
    )
    with gc_paused():
        renderer.render([view])


def _previous(published: Round) -> dict[str, Round]:
    """The round before, for code that takes it (this script also measures code from before it did)."""
    takes = "previous" in inspect.signature(evaluation_round).parameters
    return {"previous": published} if takes else {}


class _Head:
    """A HEAD poller that has had its rounds (`Evaluation` only reads this of it here)."""

    health = ClusterHealth(rounds=1)

    async def next_round(self, seen: int) -> int:
        return seen + 1


async def _through_evaluation(load: Load, rounds: int) -> None:
    progress = SourceProgress(caught_up=True)
    evaluation = Evaluation(
        "bench",
        load.storage,
        EvaluationCache(cluster="bench"),
        _Head(),
        progress,
        stream_slack=float("inf"),
        timelag=load.timelag,
        clock=lambda: load.now_ms / 1000,
    )
    cpus = []
    for r in range(rounds):
        if r:
            load.step(committing=range(r % 2, load.groups, 2))
        cpu = time.process_time()
        await evaluation.evaluate_now()
        # The round replaced is let go in tasks of the loop, a slice at a time: part of the round's cost.
        await asyncio.gather(*(task for task in asyncio.all_tasks() if task is not asyncio.current_task()))
        cpu = time.process_time() - cpu
        cpus.append(cpu)
        print(f"round {r}: {cpu:.3f} CPU-s, evaluated {evaluation.published.evaluated:,}", flush=True)
    if rounds > 2:
        print(f"median of the rounds after the first two: {statistics.median(cpus[2:]):.3f} CPU-s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--topics", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--render", action="store_true", help="render every round as /metrics does")
    parser.add_argument("--tracemalloc", action="store_true", help="trace memory (slower; CPU figures grow)")
    parser.add_argument(
        "--top", type=int, default=0, help="with --tracemalloc or --anew: the biggest sites at the end"
    )
    parser.add_argument(
        "--anew",
        action="store_true",
        help="trace the last round only (its CPU figure then grows): what it makes anew that outlives it",
    )
    parser.add_argument(
        "--evaluation", action="store_true", help="rounds through Evaluation, as the app runs them: CPU only"
    )
    args = parser.parse_args()
    if args.tracemalloc and args.anew:
        parser.error("--anew traces the last round alone: not with --tracemalloc")
    if args.evaluation:
        asyncio.run(_through_evaluation(Load(args.groups, args.partitions, args.topics), args.rounds))
        return
    if args.tracemalloc:
        tracemalloc.start()
    load = Load(args.groups, args.partitions, args.topics)
    gp = args.groups * args.partitions
    cache = EvaluationCache()
    base = tracemalloc.get_traced_memory()[0] if args.tracemalloc else 0
    print(
        f"{args.groups:,} groups x {args.partitions} partitions on {args.topics:,} topics; "
        f"storage and histories: RSS {_rss_mib():.0f} MiB"
        + (f", traced {base / 2**20:.1f} MiB" if args.tracemalloc else "")
    )
    published = Round("bench")
    renderer = BlockRenderer(RenderOptions()) if args.render else None
    for r in range(args.rounds):
        # Round 0 evaluates the replayed state; from then on, half the groups commit each round.
        if r:
            load.step(committing=range(r % 2, args.groups, 2))
        if args.tracemalloc:
            tracemalloc.reset_peak()
        if args.anew and r == args.rounds - 1:
            gc.collect()
            tracemalloc.start()
        cpu = time.process_time()
        published = _run_round(load, cache, published)
        if renderer is not None:
            _render(renderer, load.storage, published)
        cpu = time.process_time() - cpu
        line = f"round {r}: {cpu:.3f} CPU-s, evaluated {published.evaluated:,}, RSS {_rss_mib():.0f} MiB"
        if args.tracemalloc:
            current, peak = tracemalloc.get_traced_memory()
            line += (
                f", traced above the storage {(current - base) / 2**20:.1f} MiB "
                f"({(current - base) / gp:.0f} B/gp), peak {(peak - base) / 2**20:.1f} MiB "
                f"({(peak - base) / gp:.0f} B/gp)"
            )
        print(line, flush=True)
    if args.anew:
        made, _ = tracemalloc.get_traced_memory()
        blocks = len(tracemalloc.take_snapshot().traces)
        print(
            f"the last round made anew, alive after it: {made / gp:.0f} B/gp in {blocks / gp:.2f} blocks/gp "
            "(the rest it holds is shared with the round before)"
        )
    if (args.tracemalloc or args.anew) and args.top:
        for stat in tracemalloc.take_snapshot().statistics("lineno")[: args.top]:
            print(
                f"{stat.size / 2**20:8.1f} MiB {stat.count:9,d} {stat.size / gp:6.0f} B/gp  {stat.traceback}"
            )


if __name__ == "__main__":
    main()
