"""Render time and size of /metrics for 10,000 groups x 10 partitions, plain and gzipped.

`render` is the whole text at once; `blocks` is what /metrics does (blocks.BlockRenderer, its blocks deflated
as they are written, the cycle collector paused): the first render, then a render after a round that
re-evaluated no group, 1%, 10% or every group (their statuses replaced by equal new objects), and the steady
state of a busy cluster: every group re-evaluated into new statuses in which every partition's current lag
(and lag in seconds and headroom) moved and half the groups committed, everything else equal.

`--lag-seconds` gives every partition a lag in seconds and a retention headroom, as a running lagwatch has a
minute after its start: about ten series per group-partition, which at 10,000 x 10 passes the default
`max_series` cap (1,000,000), so the renders are capped ones (the cap cuts inside the partition series).
`--max-series N` sets the cap to cut elsewhere. `--anew` traces one steady-state render alone and prints what
it made that outlives it (the small objects whose peaks leave pymalloc's arenas part-used), nothing else.

Run: .venv/bin/python bench/bench_metrics.py [--groups N] [--partitions N] [--runs N] [--burrow]
     [--lag-seconds] [--max-series N] [--blocks-only | --anew]
"""

from __future__ import annotations

import argparse
import gc
import gzip
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from itertools import cycle

from exporter.core.figures import GroupHeadroom, GroupLagSeconds
from exporter.core.model import Commit, GroupStatus, Partitions, PartitionStatus, Status
from exporter.core.retention import Headroom
from exporter.core.timelag import LagSeconds
from exporter.exposition.blocks import BlockRenderer, Exposition
from exporter.exposition.cluster_view import ClusterView
from exporter.exposition.metrics import RenderOptions, health, render
from exporter.gc_pause import gc_paused

_NOW_MS = 1_763_000_000_123
_TOPIC_COUNT = 1000
_PARTITION_STATUSES = (Status.OK,) * 16 + (Status.WARN, Status.STOP, Status.STALL, Status.REWIND)


def _partition(group: int, topic: str, partition: int, moves: int) -> PartitionStatus:
    """`moves` rounds later: the current lag moved, and even groups committed once a round."""
    seed = group * 31 + partition
    status = _PARTITION_STATUSES[seed % len(_PARTITION_STATUSES)]
    commits = moves * (group % 2 == 0)
    end = Commit(
        offset=1_000_000 + seed * 7 + 100 * commits,
        order=seed + commits,
        timestamp_ms=_NOW_MS - seed % 60_000 + 10_000 * commits,
        lag=seed % 500,
    )
    start = Commit(offset=end.offset - 900, order=seed - 9, timestamp_ms=end.timestamp_ms - 540_000, lag=0)
    return PartitionStatus(
        topic=topic,
        partition=partition,
        owner=f"/10.1.{group % 256}.{partition}",
        client_id=f"consumer-{group}-{partition % 3}",
        status=status,
        start=start,
        end=end,
        current_lag=(seed + 7 * moves) % 997,
        complete=1.0 if seed % 10 else 0.7,
        member_id=f"consumer-{group}-{partition % 3}-5f0e2b8c-1c4d-4a0e-9a5e-3f1c2d4e5f60",
    )


def _group(index: int, partitions: int, moves: int) -> GroupStatus:
    topic = f"orders.events.v{index % _TOPIC_COUNT:04d}"
    parts = tuple(_partition(index, topic, p, moves) for p in range(partitions))
    worst = max(p.status for p in parts)
    return GroupStatus(
        cluster="prod-eu-1",
        group=f"service-{index:05d}.consumer",
        status=Status.ERR if worst > Status.ERR else worst,
        complete=sum(p.complete == 1.0 for p in parts) / len(parts),
        partitions=Partitions.of(parts),
        partition_count=len(parts),
        maxlag=max(parts, key=lambda p: p.current_lag or 0),
        totallag=sum(p.current_lag or 0 for p in parts),
    )


def build(groups: int, partitions: int, *, lag_seconds: bool = False, moves: int = 0) -> ClusterView:
    """The view of a cluster, `moves` rounds of a steady load later (`_partition`)."""
    heads: tuple[int | None, ...] = tuple(2_000_000 + p for p in range(partitions))
    statuses = [_group(i, partitions, moves) for i in range(groups)]
    view = ClusterView(
        name="prod-eu-1",
        groups=statuses,
        topics=[(f"orders.events.v{t:04d}", heads) for t in range(min(groups, _TOPIC_COUNT))],
        head_refresh_ms=_NOW_MS,
        evaluation_seconds=0.215,
    )
    if not lag_seconds:
        return view
    return replace(
        view,
        # In the round's shape: columns per group (`core.figures`).
        lag_seconds={
            g.group: GroupLagSeconds.of(
                LagSeconds(0.0, "caught_up")
                if not p.current_lag
                else LagSeconds(p.current_lag / 50, "interpolated")
                for p in g.partitions
            )
            for g in statuses
        },
        headroom={
            g.group: GroupHeadroom.of(
                Headroom(0, 900 + (p.current_lag or 0), 604_000.0 - p.partition - 10 * moves)
                for p in g.partitions
            )
            for g in statuses
        },
    )


def _timed(fn: Callable[[], object], runs: int) -> tuple[float, float, float]:
    """Median wall time, best wall time and median CPU time of `runs` calls, in milliseconds. CPU time is
    reported too because other processes on a shared 2-core machine inflate the wall time."""
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall) * 1000, min(wall) * 1000, statistics.median(cpu) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--burrow", action="store_true", help="also emit the Burrow-compatible families")
    parser.add_argument(
        "--lag-seconds",
        action="store_true",
        help="a lag in seconds and a retention headroom for every partition",
    )
    parser.add_argument("--max-series", type=int, default=RenderOptions().max_series)
    parser.add_argument(
        "--blocks-only", action="store_true", help="time the block renderer only, not the whole text nor gzip"
    )
    parser.add_argument(
        "--anew",
        action="store_true",
        help="trace one steady-state render of the block renderer alone: what it makes that outlives it",
    )
    args = parser.parse_args()
    if args.anew:
        _anew(args.groups, args.partitions, args.lag_seconds, RenderOptions(burrow_compatible=args.burrow))
        return

    cluster = build(args.groups, args.partitions, lag_seconds=args.lag_seconds)
    options = RenderOptions(burrow_compatible=args.burrow, max_series=args.max_series)
    result = render([cluster], options)
    print(
        f"groups={args.groups} partitions/group={args.partitions} burrow_compatible={args.burrow} "
        f"lag_seconds={args.lag_seconds} max_series={args.max_series:,}"
    )
    print(f"series={result.series:,} dropped={result.dropped:,} bytes={len(result.body):,}")
    if not args.blocks_only:
        median, best, cpu = _timed(partial(render, [cluster], options), args.runs)
        print(f"render: median {median:.0f} ms, best {best:.0f} ms, median cpu {cpu:.0f} ms")
    moved = build(args.groups, args.partitions, lag_seconds=args.lag_seconds, moves=1)
    _blocks(cluster, moved, options, result.body, args.runs)
    if args.blocks_only:
        return
    for level in range(1, 7):
        compressed = gzip.compress(result.body, compresslevel=level)
        median, best, cpu = _timed(
            partial(gzip.compress, result.body, compresslevel=level), max(3, args.runs // 2)
        )
        print(
            f"gzip level {level}: median {median:.0f} ms, best {best:.0f} ms, median cpu {cpu:.0f} ms, "
            f"{len(compressed):,} bytes ({len(compressed) / len(result.body):.1%})"
        )


def _anew(groups: int, partitions: int, lag_seconds: bool, options: RenderOptions) -> None:
    """A steady-state render (every lag moved since the render before), traced from its start: the memory it
    made that is still alive after it (its blocks and rows, replacing the render before's), in bytes and in
    memory blocks of pymalloc's sizes (at most 512 bytes), per group-partition."""
    renderer = BlockRenderer(options)
    _paused(renderer, [build(groups, partitions, lag_seconds=lag_seconds)])
    moved = build(groups, partitions, lag_seconds=lag_seconds, moves=1)
    gc.collect()
    tracemalloc.start()
    _paused(renderer, [moved])
    gc.collect()
    made, peak = tracemalloc.get_traced_memory()
    traces = tracemalloc.take_snapshot().traces
    tracemalloc.stop()
    gp = groups * partitions
    small = [t.size for t in traces if t.size <= 512]
    print(
        f"a steady-state render ({renderer.rendered_buckets} buckets written) made {made / gp:.0f} B/gp that "
        f"outlive it, {sum(small) / gp:.0f} B/gp of them in {len(small):,} blocks of at most 512 bytes; its "
        f"peak {peak / gp:.0f} B/gp"
    )


def _paused(renderer: BlockRenderer, views: list[ClusterView]) -> Exposition:
    """A render as /metrics runs it: with the cycle collector paused."""
    with gc_paused():
        return renderer.render(views)


def _blocks(cluster: ClusterView, moved: ClusterView, options: RenderOptions, body: bytes, runs: int) -> None:
    median, best, cpu = _timed(lambda: _paused(BlockRenderer(options), [cluster]), max(3, runs // 2))
    print(f"blocks, first render: median {median:.0f} ms, best {best:.0f} ms, median cpu {cpu:.0f} ms")
    renderer = BlockRenderer(options)
    exposition = renderer.render([cluster])
    assert _scraped(exposition, [cluster], options) == body
    deflated = sum(len(p.deflated) for p in exposition.parts)
    print(
        f"blocks: {len(exposition.parts):,} parts, deflated {deflated:,} bytes ({deflated / len(body):.1%})"
    )
    for share in (0.0, 0.01, 0.1, 1.0):
        every = round(1 / share) if share else 0
        groups = [replace(g) if every and i % every == 0 else g for i, g in enumerate(cluster.groups)]
        views = cycle([replace(cluster, groups=groups), cluster])
        median, best, cpu = _timed(lambda views=views: _paused(renderer, [next(views)]), runs)
        print(
            f"blocks, {share:.0%} of the groups re-evaluated: median {median:.0f} ms, best {best:.0f} ms, "
            f"median cpu {cpu:.0f} ms ({renderer.rendered_buckets} buckets written)"
        )
    views = cycle([moved, cluster])
    median, best, cpu = _timed(lambda: _paused(renderer, [next(views)]), runs)
    print(
        f"blocks, steady state (every group re-evaluated, lags moved, half committed): median {median:.0f} "
        f"ms, best {best:.0f} ms, median cpu {cpu:.0f} ms ({renderer.rendered_buckets} buckets written)"
    )
    # What the steady state keeps must still be the renderer's text.
    for view in (moved, cluster):
        assert _scraped(renderer.render([view]), [view], options) == render([view], options).body


def _scraped(exposition: Exposition, views: list[ClusterView], options: RenderOptions) -> bytes:
    """The body a scrape sends: the renderer's data families, then the health families it writes itself."""
    return exposition.body + health(views, exposition.series, exposition.dropped, options.compat)


if __name__ == "__main__":
    main()
