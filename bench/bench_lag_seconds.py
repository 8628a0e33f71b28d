"""Cost of lag in seconds in the app: the per-round computation in `ClusterRuntime.evaluate` and the extra
render time of /metrics, for 10,000 groups x 10 partitions over 10,000 topic-partitions whose HEAD histories
hold an hour of observations every 10 s.

Run: .venv/bin/python bench/bench_lag_seconds.py [--groups N] [--lagging SHARE] [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Generator, Mapping

from exporter.core.model import Commit, GroupStatus, Partitions, PartitionStatus, Status
from exporter.exposition.cluster_view import ClusterView
from exporter.exposition.metrics import render
from exporter.runtime import ClusterRuntime
from exporter.settings import ClusterSettings, LagSecondsSettings, Settings

_PARTITIONS = 10
_TOPICS = 1000
_REFRESH_S = 10.0
_SPAN_S = 3600.0
_RATE = 5
"""Records per second on every partition: every observation moves the HEAD."""


class _Statuses:
    """Stands in for the evaluation cache: the statuses of one round, unchanged between rounds."""

    cluster = "bench"

    def __init__(self, statuses: dict[str, GroupStatus]) -> None:
        self._statuses = statuses

    def refresh_in_steps(self, source: object, now: float, batch: int) -> Generator[int, None, int]:
        yield from ()
        return 0

    def statuses(self) -> Mapping[str, GroupStatus]:
        return self._statuses


def _statuses(groups: int, lagging: float, head: int) -> dict[str, GroupStatus]:
    found = {}
    for index in range(groups):
        topic = f"orders.events.v{index % _TOPICS:04d}"
        parts = []
        for partition in range(_PARTITIONS):
            behind = (index * _PARTITIONS + partition) % 1000 < lagging * 1000
            # Lagging partitions are 1 to 50 minutes behind, on offsets the history covers.
            lag = _RATE * 60 * (1 + (index + partition) % 50) if behind else 0
            end = Commit(offset=head - lag, order=index, timestamp_ms=0, lag=lag)
            parts.append(PartitionStatus(topic, partition, "", "", Status.OK, end, end, lag, 1.0))
        name = f"service-{index:05d}.consumer"
        found[name] = GroupStatus("bench", name, Status.OK, 1.0, Partitions.of(parts), _PARTITIONS, None, 0)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--lagging", type=float, default=0.1, help="share of lagging group-partitions")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    now = [1_763_000_000.0]
    settings = Settings(
        clusters={"bench": ClusterSettings(bootstrap_servers=("127.0.0.1:1",), offset_refresh=_REFRESH_S)},
        lag_seconds=LagSecondsSettings(state_dir="", span=_SPAN_S),
    )
    runtime = ClusterRuntime("bench", settings, settings.clusters["bench"], clock=lambda: now[0])
    timelag = runtime.timelag
    assert timelag is not None
    started = time.perf_counter()
    observations = int(_SPAN_S / _REFRESH_S) + 1
    head = 0
    for _ in range(observations):
        head += int(_RATE * _REFRESH_S)
        for topic in range(_TOPICS):
            for partition in range(_PARTITIONS):
                timelag.observe(f"orders.events.v{topic:04d}", partition, head, now[0])
        now[0] += _REFRESH_S
    print(
        f"histories: {_TOPICS * _PARTITIONS} partitions x {observations} observations, "
        f"filled in {time.perf_counter() - started:.1f} s"
    )

    statuses = _statuses(args.groups, args.lagging, head)
    runtime.evaluation.cache = _Statuses(statuses)  # type: ignore[assignment]
    lagging = sum(bool(p.current_lag) for g in statuses.values() for p in g.partitions)
    print(f"groups={args.groups} partitions={args.groups * _PARTITIONS} lagging={lagging}")

    # As after start-up: the committed offsets replayed and a HEAD round in, so that a round evaluates, and
    # the metadata listing the topics, so that their histories are kept as live ones.
    runtime.storage.set_topics(
        {f"orders.events.v{topic:04d}": _PARTITIONS for topic in range(_TOPICS)}, int(now[0] * 1000)
    )
    runtime.offsets.progress.caught_up = True
    runtime.head.health.rounds = 1
    walls, cpus = [], []
    for _ in range(args.runs):
        now[0] += _REFRESH_S
        wall, cpu = time.perf_counter(), time.process_time()
        asyncio.run(runtime.evaluate())
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    assert runtime.evaluated_at == now[0], "the round did not run"
    sources: dict[str, int] = {}
    for figures in runtime.lag_seconds().values():
        for figure in figures:
            if figure is not None:
                sources[figure.source] = sources.get(figure.source, 0) + 1
    print(f"sources: {dict(sorted(sources.items()))}")
    print(
        "evaluate (lag in seconds and retention headroom; no window to evaluate): "
        f"median {statistics.median(walls) * 1000:.0f} ms, "
        f"best {min(walls) * 1000:.0f} ms, median cpu {statistics.median(cpus) * 1000:.0f} ms"
    )

    groups = [statuses[name] for name in sorted(statuses)]
    plain = ClusterView("bench", groups, [])
    timed = ClusterView("bench", groups, [], lag_seconds=runtime.lag_seconds())
    for label, view in (("without lag in seconds", plain), ("with lag in seconds", timed)):
        result = render([view])
        times = []
        for _ in range(max(3, args.runs // 2)):
            cpu = time.process_time()
            render([view])
            times.append(time.process_time() - cpu)
        print(
            f"render {label}: {result.series} series, {len(result.body):,} bytes, "
            f"median cpu {statistics.median(times) * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
