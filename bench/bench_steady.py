"""Steady state of a real lagwatch process under a live commit load: CPU, resident memory, scrape latency.

A real broker (`--bootstrap`, or one that scripts/kafka-local starts for the run) is filled by `loadgen.py`
with `--groups` x `--partitions` group-partitions x `--commits` commits (10,000 x 10 x 12 by default: 1.2 M
records in `__consumer_offsets`). Then the console script `lagwatch` starts with its defaults (HEAD refresh
every 10 s, per-partition metrics), replays the offsets topic and turns ready; its RSS at that moment is the
reference. Then loadgen, in a process of its own, commits `--rate` commits per second (group after group,
each group's next round) and moves every HEAD, while this process scrapes `/metrics` every `--scrape` seconds
with gzip, as Prometheus does, and reads lagwatch's CPU time (utime + stime), the time its threads waited for
a CPU (run queue) and its RSS every `--sample` seconds, for `--minutes`.

Printed: replay time and RSS after replay; CPU of one core per minute (median) and over the whole steady
phase; RSS at the start and end of the steady phase, its maximum (also relative to after replay) and its slope
(least squares, MiB per 10 minutes); scrape latency median and maximum, of every scrape and of all but the
first (which waits for the first render); the age of the round the scrapes showed; lagwatch's own evaluation
duration; the commit rate loadgen reached; the load average. The targets (issue #17): at most 25% of one
core, RSS within 10% of its value after replay and flat.

With `--restart-after MINUTES` a first, fresh lagwatch runs that long under the live load and is stopped
(SIGTERM: it saves its HEAD history in its `state_dir`, as at every shutdown); a second one starts from that
state, replays, and is measured for `--minutes`. Both phases are reported. A fresh process has no HEAD history
at ready and takes its room for it (about 57 MiB here) within its first HEAD moves, after the RSS it is
compared with was read; a restarted one, the usual case in production, holds it from the start.

    .venv/bin/python bench/bench_steady.py [--minutes 30] [--restart-after 5] [--bootstrap HOST:PORT |
        --base-port 39092]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import io
import logging
import multiprocessing
import multiprocessing.process
import multiprocessing.synchronize
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

import loadgen
from lagwatch_process import (
    ALLOCATORS,
    MIB,
    Lagwatch,
    add_load_arguments,
    broker,
    describe,
    exit_on_sigterm,
    load_average,
    metric_values,
)

_READY_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class Sample:
    at: float
    cpu: float
    wait: float
    rss: int


@dataclass(frozen=True)
class _Load:
    """The live load, run in a process of its own so that this one's scrapes do not wait behind it."""

    bootstrap: str
    layout: loadgen.Layout
    rate: float
    seconds: float

    def run(
        self, go: multiprocessing.synchronize.Event, populated: Queue[float], committed: Synchronized[int]
    ) -> None:
        """Populates and says how long it took, waits for `go`, then commits live for `seconds`, keeping the
        count of live commits in `committed` (each second), which outlives a run that ends late or badly."""
        asyncio.run(self._run(go, populated, committed))

    async def _run(
        self, go: multiprocessing.synchronize.Event, populated: Queue[float], committed: Synchronized[int]
    ) -> None:
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
        started = time.monotonic()
        committer = await loadgen.populate(self.bootstrap, self.layout)
        populated.put(time.monotonic() - started)

        async def count(before: int) -> None:
            while True:
                committed.value = (committer.requests - before) * self.layout.partitions
                await asyncio.sleep(1)

        try:
            await asyncio.to_thread(go.wait)
            counting = asyncio.create_task(count(committer.requests))
            with contextlib.redirect_stdout(io.StringIO()):  # loadgen's report every 10 s
                await loadgen.live(self.bootstrap, committer, self.layout, self.rate, self.seconds)
            counting.cancel()
        finally:
            await committer.close()


def _slope_per_10_min(samples: list[Sample]) -> float:
    """Least-squares slope of RSS over time, in MiB per 10 minutes."""
    times = [s.at for s in samples]
    sizes = [s.rss / MIB for s in samples]
    return statistics.linear_regression(times, sizes).slope * 600


def _per_minute_cpu(samples: list[Sample]) -> list[float]:
    """CPU % of one core over each whole minute since the first sample."""
    figures = []
    start = samples[0]
    for sample in samples[1:]:
        if sample.at - start.at >= 60:
            figures.append(100 * (sample.cpu - start.cpu) / (sample.at - start.at))
            start = sample
    return figures


class _Scrapes(threading.Thread):
    """Scrapes `/metrics` every `interval` seconds, as Prometheus does: gzip, one scrape at a time (a slow one
    delays the next), in a thread of its own so that the CPU and RSS samples keep their pace."""

    def __init__(self, lagwatch: Lagwatch, interval: float) -> None:
        super().__init__(daemon=True)
        self._lagwatch = lagwatch
        self._interval = interval
        self._done = threading.Event()
        self.latencies: list[float] = []
        self.at: list[float] = []
        """Wall-clock time each scrape was sent (to find it in lagwatch's log or a stall probe's)."""
        self.sizes: list[int] = []
        self.rounds: list[float] = []
        self.ages: list[float] = []
        """Seconds from the start of the round each scrape showed (`lagwatch_evaluation_timestamp_seconds`)
        to the scrape's answer."""
        self.error: Exception | None = None

    def run(self) -> None:
        due = time.monotonic()
        while not self._done.wait(max(0.0, due - time.monotonic())):
            due += self._interval
            try:
                self._scrape()
            except (OSError, RuntimeError) as failed:
                self.error = failed
                return

    def _scrape(self) -> None:
        self.at.append(time.time())
        started = time.perf_counter()
        status, body = self._lagwatch.get("/metrics", gzip=True)
        self.latencies.append(time.perf_counter() - started)
        answered = time.time()
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}")
        self.sizes.append(len(body))
        text = gzip.decompress(body).decode()
        self.rounds += metric_values(text, "lagwatch_evaluation_duration_seconds")
        self.ages += [answered - at for at in metric_values(text, "lagwatch_evaluation_timestamp_seconds")]

    def stop(self) -> None:
        self._done.set()
        self.join()


def _minute_line(minute: int, samples: list[Sample], scrapes: _Scrapes) -> str:
    first, last = samples[0], samples[-1]
    span = last.at - first.at
    scrape = f"{scrapes.latencies[-1] * 1000:6.0f} ms" if scrapes.latencies else "none yet"
    return (
        f"  minute {minute:3d}: CPU {100 * (last.cpu - first.cpu) / span:5.1f}% of a core "
        f"(waited {100 * (last.wait - first.wait) / span:4.0f}%), RSS {last.rss / MIB:6.1f} MiB, "
        f"last scrape {scrape}, load average {load_average()}"
    )


def _steady(
    lagwatch: Lagwatch,
    load: multiprocessing.process.BaseProcess,
    minutes: float,
    scrape_s: float,
    sample_s: float,
) -> tuple[list[Sample], _Scrapes]:
    scrapes = _Scrapes(lagwatch, scrape_s)
    samples: list[Sample] = []
    started = time.monotonic()
    scrapes.start()
    try:
        minute_start = 0
        while (now := time.monotonic()) - started < minutes * 60:
            if not load.is_alive():
                raise RuntimeError(
                    f"the load generator stopped {(now - started) / 60:.1f} min into the steady phase"
                )
            if scrapes.error is not None:
                raise RuntimeError(f"a scrape failed: {scrapes.error!r}")
            samples.append(Sample(now, lagwatch.cpu(), lagwatch.cpu_wait(), lagwatch.rss()))
            if len(samples) > 1 and now - samples[minute_start].at >= 60:
                print(_minute_line(round((now - started) / 60), samples[minute_start:], scrapes), flush=True)
                minute_start = len(samples) - 1
            time.sleep(max(0.0, started + len(samples) * sample_s - time.monotonic()))
        samples.append(Sample(time.monotonic(), lagwatch.cpu(), lagwatch.cpu_wait(), lagwatch.rss()))
    finally:
        scrapes.stop()
    return samples, scrapes


def _report(replay_s: float, after_replay: int, samples: list[Sample], scrapes: _Scrapes) -> None:
    span = samples[-1].at - samples[0].at
    overall = 100 * (samples[-1].cpu - samples[0].cpu) / span
    minutes = _per_minute_cpu(samples) or [overall]
    waited = 100 * (samples[-1].wait - samples[0].wait) / span
    highest = max(s.rss for s in samples)
    print(f"replay: ready {replay_s:.1f} s after the start; RSS after replay {after_replay / MIB:.1f} MiB")
    print(
        f"steady phase ({span / 60:.1f} min): CPU {statistics.median(minutes):.1f}% of one core "
        f"(median of {len(minutes)} minutes; {min(minutes):.1f}-{max(minutes):.1f}%), "
        f"{overall:.1f}% overall (target <= 25%); its threads were runnable but waiting for a CPU "
        f"{waited:.0f}% of the time (a busy machine: latencies longer than alone, CPU maybe lower)"
    )
    print(
        f"RSS: {samples[0].rss / MIB:.1f} MiB at the start, {samples[-1].rss / MIB:.1f} MiB at the end, "
        f"max {highest / MIB:.1f} MiB ({100 * (highest / after_replay - 1):+.1f}% of after replay, "
        f"target within 10%), slope {_slope_per_10_min(samples):+.2f} MiB per 10 minutes"
    )
    first, *others = scrapes.latencies
    print(
        f"scrapes ({len(scrapes.latencies)}, gzip, {statistics.median(scrapes.sizes) / MIB:.1f} MiB): "
        f"median {statistics.median(scrapes.latencies) * 1000:.0f} ms, "
        f"max {max(scrapes.latencies) * 1000:.0f} ms; the first (it waits for the first render) "
        f"{first * 1000:.0f} ms, the others median {statistics.median(others or [first]) * 1000:.0f} ms, "
        f"max {max(others or [first]) * 1000:.0f} ms"
    )
    slowest = sorted(zip(scrapes.latencies[1:], scrapes.at[1:], strict=True), reverse=True)[:3]
    listed = ", ".join(f"{ms * 1000:.0f} ms (sent at {t:.1f})" for ms, t in slowest)
    print(f"slowest after the first: {listed}")
    if scrapes.ages:
        print(
            "age of the round each scrape showed (its answer minus lagwatch_evaluation_timestamp_seconds): "
            f"median {statistics.median(scrapes.ages):.1f} s, max {max(scrapes.ages):.1f} s"
        )
    if scrapes.rounds:
        print(
            "lagwatch_evaluation_duration_seconds as scraped: "
            f"median {statistics.median(scrapes.rounds):.2f} s, max {max(scrapes.rounds):.2f} s"
        )


def run(args: argparse.Namespace, bootstrap: str, directory: Path) -> None:
    prefix = f"steady-{time.time_ns() // 10**9 % 10**6}"
    layout = loadgen.Layout(prefix, args.groups, args.partitions, args.topics, args.commits, 10, 25)
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    populated: Queue[float] = context.Queue()
    committed: Synchronized[int] = context.Value("q", 0)
    # Until the last sample is taken; with a restart, also while the second process replays.
    seconds = (args.restart_after + args.minutes) * 60 + (_READY_TIMEOUT_S if args.restart_after else 5)
    job = _Load(bootstrap, layout, args.rate, seconds)
    load = context.Process(target=job.run, args=(go, populated, committed), daemon=True)
    load.start()
    try:
        populate_s = populated.get(timeout=3600)
        print(f"populated in {populate_s:.0f} s; load average {load_average()}", flush=True)
        settings = {"filters": {"group_allow": f"^{prefix}-group-"}}
        allocator = ALLOCATORS[args.allocator]
        # Both processes keep their HEAD history in one state directory.
        settings["lag_seconds"] = {"state_dir": str(directory / "lagwatch-state")}
        phases = [(args.minutes, "lagwatch", "")]
        if args.restart_after:
            phases = [
                (args.restart_after, "lagwatch", "a fresh process"),
                (args.minutes, "lagwatch-restarted", "the process restarted from its saved state"),
            ]
        live_started = 0.0
        for minutes, name, which in phases:
            with Lagwatch(bootstrap, directory, settings, name, args.nice, allocator) as lagwatch:
                print(f"lagwatch pid {lagwatch.pid}{f' ({which})' if which else ''}", flush=True)
                replay_s = lagwatch.wait_ready(_READY_TIMEOUT_S)
                after_replay = lagwatch.rss()
                print(
                    f"ready after {replay_s:.1f} s, RSS {after_replay / MIB:.1f} MiB; live load of "
                    f"{args.rate:,.0f} commits/s for {minutes:g} min",
                    flush=True,
                )
                if not go.is_set():
                    go.set()
                    live_started = time.monotonic()
                samples, scrapes = _steady(lagwatch, load, minutes, args.scrape, args.sample)
            # Leaving the block stops lagwatch with SIGTERM: it saves its HEAD history on the way out, and the
            # next process starts from it, as a restarted exporter with a `state_dir` does.
            if which:
                print(f"-- {which}:")
            _report(replay_s, after_replay, samples, scrapes)
        reached = committed.value / (time.monotonic() - live_started)
        print(f"live load reached {reached:,.0f} commits/s (asked {args.rate:,.0f})")
    finally:
        load.terminate()
        load.join(30)
        with contextlib.suppress(Exception):
            asyncio.run(loadgen.delete(bootstrap, layout))
    print(f"load average at the end {load_average()}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_load_arguments(parser, groups=10_000, commits=12)
    parser.add_argument("--rate", type=float, default=5_000, help="live commits per second")
    parser.add_argument("--minutes", type=float, default=30.0, help="of steady state")
    parser.add_argument("--scrape", type=float, default=15.0, help="seconds between scrapes")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between CPU and RSS samples")
    parser.add_argument(
        "--restart-after",
        type=float,
        default=0.0,
        metavar="MINUTES",
        help="run a fresh lagwatch this long under the live load first, stop it (it saves its HEAD history) "
        "and measure a second one started from that state for --minutes",
    )
    args = parser.parse_args()
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    exit_on_sigterm()
    print(
        f"{describe(args)}; live {args.rate:,.0f} commits/s for {args.minutes:g} min, "
        f"scrape every {args.scrape:g} s",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="lagwatch-steady-") as name:
        directory = Path(name)
        with broker(args.bootstrap, directory, args.base_port) as bootstrap:
            run(args, bootstrap, directory)


if __name__ == "__main__":
    main()
