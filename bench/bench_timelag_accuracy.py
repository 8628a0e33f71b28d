"""Lag in seconds: accuracy of interpolation on the HEAD history against true append times, memory per
partition, and the cost of the calls made per round and per scrape.

Run: `.venv/bin/python bench/bench_timelag_accuracy.py` (about 10 s; `--hours`, `--refresh`, `--seed` to
vary it).

The simulated log alternates idle periods (30 s to 20 min), steady Poisson traffic (1 to 50 records/s for 1 to
15 min) and bursts (500 to 3,000 records/s for 2 to 30 s), so brackets hold anything from nothing to a burst
that starts or ends mid-interval. Every `--refresh` seconds the HEAD is read (as it was up to `--latency`
seconds before the response arrived, like a ListOffsets round trip) and appended to a `HeadHistory` with
`Policy.for_refresh`. At every observation after the first span (before, the history is still filling up),
queries pick committed offsets and compare `interpolate` with the true append time:
- "by lag": a consumer that is L behind, L uniform in [0, span): c = the HEAD at now - L (idle periods weigh
  by their duration, the way lagging consumers meet them);
- "by offset": c uniform among the offsets appended in the last span (bursts weigh by their records).

Figures printed: share of queries answered by interpolation (the rest go to exact reads: older than the
history, or in a bracket wider than max_bracket_s), the absolute error (median, p90, p99, max) in seconds and
as a fraction of the refresh, and the signed median (positive: the estimate is later than the truth, so the
lag is under-estimated). The same queries run on histories fed only the first observation of each flat run
("first-seen only", with lagwatch's bracket limit and without it), to show why the last time seen is kept.
Then memory per partition at the worst case (a new HEAD at every observation for the whole span), and the
cost of `observe`, `lag`, `dump` and `load` on such histories.
"""

from __future__ import annotations

import argparse
import math
import random
import time
import tracemalloc
from bisect import bisect_right
from collections.abc import Callable, Iterator

from exporter.core.head_history import HeadHistory, Policy, interpolate
from exporter.core.timelag import TimeLag
from exporter.state_file import dump, load

T0 = 1_700_000_000.0


def _log(hours: float, rng: random.Random) -> list[float]:
    """True append time of every offset of a bursty log, from T0 on."""
    appends: list[float] = []
    now, end = T0, T0 + hours * 3600
    while now < end:
        kind = rng.choices(("idle", "steady", "burst"), weights=(4, 4, 2))[0]
        if kind == "idle":
            now += rng.uniform(30, 1200)
            continue
        duration, rate = (
            (rng.uniform(60, 900), rng.uniform(1, 50))
            if kind == "steady"
            else (rng.uniform(2, 30), rng.uniform(500, 3000))
        )
        stop, t = now + duration, now + rng.expovariate(rate)
        while t < stop:
            appends.append(t)
            t += rng.expovariate(rate)
        now = stop
    return appends


def _observations(
    appends: list[float], hours: float, refresh: float, latency: float, rng: random.Random
) -> Iterator[tuple[int, float]]:
    now = T0 + refresh
    while now < T0 + hours * 3600:
        yield bisect_right(appends, now - rng.uniform(0, latency)), now
        now += refresh


def _percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class _Errors:
    def __init__(self) -> None:
        self.signed: list[float] = []
        self.unanswered = 0

    def add(self, estimate: float | None, truth: float) -> None:
        if estimate is None:
            self.unanswered += 1
        else:
            self.signed.append(estimate - truth)

    def report(self, label: str, refresh: float) -> None:
        total = len(self.signed) + self.unanswered
        absolute = sorted(abs(e) for e in self.signed)
        figures = [_percentile(absolute, f) for f in (0.5, 0.9, 0.99)] + [absolute[-1]]
        print(
            f"  {label:<37} {total:>7} queries, {len(self.signed) / total:6.1%} interpolated; |error| "
            + " ".join(
                f"{name} {value:7.2f} s ({value / refresh:4.2f}x)"
                for name, value in zip(("median", "p90", "p99", "max"), figures, strict=True)
            )
            + f"; signed median {_percentile(sorted(self.signed), 0.5):+.2f} s"
        )


def accuracy(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    appends = _log(args.hours, rng)
    policy = Policy.for_refresh(args.refresh)
    print(
        f"accuracy: {len(appends):,} records over {args.hours:g} h, HEAD every {args.refresh:g} s "
        f"(latency up to {args.latency:g} s), span {policy.span_s:g} s, max_points {policy.max_points}, "
        f"max_bracket {policy.max_bracket_s:g} s"
    )
    unlimited = Policy(span_s=policy.span_s, max_points=policy.max_points, max_bracket_s=math.inf)
    histories = {
        "lagwatch": HeadHistory(policy),
        "first-seen only": HeadHistory(policy),
        "first-seen only, no limit": HeadHistory(unlimited),
    }
    errors = {(name, mix): _Errors() for name in histories for mix in ("by lag", "by offset")}
    previous = -1
    for head, now in _observations(appends, args.hours, args.refresh, args.latency, rng):
        histories["lagwatch"].append(head, now)
        if head != previous:
            histories["first-seen only"].append(head, now)
            histories["first-seen only, no limit"].append(head, now)
            previous = head
        if now < T0 + policy.span_s:
            continue  # ramp-up: offsets older than the history are left to exact reads
        oldest = bisect_right(appends, now - policy.span_s)
        for _ in range(args.queries):
            by_lag = bisect_right(appends, now - rng.uniform(0, policy.span_s))
            by_offset = rng.randrange(oldest, head) if head > oldest else head
            for mix, committed in (("by lag", by_lag), ("by offset", by_offset)):
                if committed < head:
                    for name, history in histories.items():
                        errors[(name, mix)].add(interpolate(history, committed), appends[committed])
    for (name, mix), found in errors.items():
        found.report(f"{name}, {mix}", args.refresh)


def memory(args: argparse.Namespace) -> None:
    policy = Policy.for_refresh(args.refresh)
    samples = int(policy.span_s / args.refresh) + 10
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    histories = {}
    for partition in range(args.partitions):
        history = histories[("topic", partition)] = HeadHistory(policy)
        for i in range(samples):
            history.append(1000 * i, T0 + args.refresh * i)
    busy = (tracemalloc.get_traced_memory()[0] - before) / args.partitions
    idle = {p: HeadHistory(policy) for p in range(args.partitions)}
    for history in idle.values():
        for i in range(samples):
            history.append(5, T0 + args.refresh * i)
    quiet = (tracemalloc.get_traced_memory()[0] - before) / args.partitions - busy
    tracemalloc.stop()
    points = len(next(iter(histories.values())))
    print(
        f"memory: span {policy.span_s:g} s at {args.refresh:g} s: {busy:,.0f} bytes per partition with a new "
        f"HEAD at every observation ({points} points), {quiet:,.0f} bytes for an idle one (2 points); "
        f"{busy * 10_000 / 2**20:,.0f} MiB per 10,000 busy partitions"
    )
    timings(args, policy, histories)


def _rate(label: str, count: int, call: Callable[[], object], unit: str) -> None:
    started = time.perf_counter()
    call()
    elapsed = time.perf_counter() - started
    print(f"  {label:<52} {elapsed / count * 1e6:8.2f} us per {unit}")


def timings(args: argparse.Namespace, policy: Policy, histories: dict[tuple[str, int], HeadHistory]) -> None:
    print(f"cost (one core, {args.partitions:,} partitions):")
    lag = TimeLag(policy, histories=histories)
    first = len(histories[("topic", 0)]) + 10

    def observe() -> None:
        for i in range(first, first + 10):
            for partition in range(args.partitions):
                lag.observe("topic", partition, 1000 * i, T0 + args.refresh * i)

    _rate("TimeLag.observe (one HEAD round, per partition)", 10 * args.partitions, observe, "partition")
    head, now = 1000 * (first + 9), T0 + args.refresh * (first + 9) + 1
    committed = [head - 1000 * (1 + p % 300) - 7 for p in range(args.partitions)]

    def interpolated() -> None:
        for partition, offset in enumerate(committed):
            assert lag.lag("topic", partition, offset, head, now).source == "interpolated"

    _rate("TimeLag.lag, interpolated (one scrape, per partition)", args.partitions, interpolated, "call")

    def caught_up() -> None:
        for partition in range(args.partitions):
            lag.lag("topic", partition, head, head, now)

    _rate("TimeLag.lag, caught up", args.partitions, caught_up, "call")
    data = b""

    def dumped() -> None:
        nonlocal data
        data = dump("bench", lag.histories)

    _rate("dump", args.partitions, dumped, "partition")
    _rate("load", args.partitions, lambda: load(data, "bench", policy), "partition")
    print(f"  state file: {len(data) / args.partitions:,.0f} bytes per busy partition")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=12.0, help="simulated hours of log")
    parser.add_argument("--refresh", type=float, default=10.0, help="offset_refresh in seconds")
    parser.add_argument("--latency", type=float, default=0.05, help="HEAD read delay, up to this (s)")
    parser.add_argument("--queries", type=int, default=20, help="queries of each mix per observation")
    parser.add_argument("--partitions", type=int, default=2000, help="partitions for memory and cost")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    accuracy(args)
    memory(args)


if __name__ == "__main__":
    main()
