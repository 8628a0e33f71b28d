"""1,000,000 group-partitions in one lagwatch process: replay, memory, round, scrape, event-loop stalls.

A real broker (`--bootstrap`, or one that scripts/kafka-local starts for the run) first serves an empty
lagwatch: the console script with the benchmark's configuration (`granularity = "group"`, a group filter on
this run's prefix), started before any commit exists, ready, then left 30 s; its RSS is the baseline. Then
`loadgen.py` writes `--groups` x `--partitions` group-partitions x `--commits` commits (100,000 x 10 x 2 by
default: 2 M records in `__consumer_offsets`), and a second lagwatch with the same configuration starts and
is timed to `/-/ready` (replay, first HEAD refresh, first evaluation). It then runs for `--settle` seconds
while `/metrics` is scraped every 15 s with gzip, as Prometheus does.

From the second process' start to its end, a thread polls `/-/healthy` every 20 ms over one keep-alive
connection: an answer's latency is how long the event loop was busy before it could answer.

Printed: how long loadgen took; replay wall time, lagwatch's CPU seconds and records per second; RSS after
ready and after settling, above the empty process, per group-partition (target <= 512 bytes);
`lagwatch_evaluation_duration_seconds` (the last round, as each scrape saw it); scrape time; health latency
median, p99 and maximum, during replay and after (target: never above 100 ms). A health check's latency is
wall time, which a busy machine stretches; `--stalls` runs the measured process with `stall_probe/` and prints
its longest event-loop callbacks in the loop thread's CPU time, with the code each was in, and its full
collections.

    .venv/bin/python bench/bench_million.py [--groups 100000 --commits 2] [--bootstrap HOST:PORT]

Measuring again against the same load saves loadgen's minutes: fill a broker once with `loadgen.py --prefix P`
(the same `--groups`, `--partitions`, `--topics`, `--commits`), then run this with `--bootstrap ... --prefix P
--no-load` as often as needed; it deletes what it did not write only with `--delete`.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import logging
import statistics
import tempfile
import threading
import time
import zlib
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

_READY_TIMEOUT_S = 1800.0
_HEALTH_POLL_S = 0.02
_SCRAPE_S = 15.0
_STALL_S = 0.1
_STALL_PROBE = Path(__file__).resolve().parent / "stall_probe"
_STALLS_SHOWN = 12
_TAIL = 4 << 20
"""Bytes of a scrape's text read for lagwatch's own figures: the health families and self-metrics end it."""
_PIECE = 64 << 10
_YOUNG_SHOWN = 4
_EMPTY_SETTLE_S = 30.0
"""Three HEAD rounds and evaluations of nothing."""


class HealthProbe(threading.Thread):
    """Polls `/-/healthy` every 20 ms; keeps (when sent, latency) of every answer."""

    def __init__(self, lagwatch: Lagwatch) -> None:
        super().__init__(daemon=True)
        self._lagwatch = lagwatch
        self._done = threading.Event()
        self.answers: list[tuple[float, float]] = []
        self.failures = 0

    def run(self) -> None:
        connection: http.client.HTTPConnection | None = None
        while not self._done.is_set():
            sent = time.monotonic()
            try:
                connection = connection or self._lagwatch.connection(timeout=60)
                connection.request("GET", "/-/healthy")
                response = connection.getresponse()
                response.read()
                if response.status == 200:
                    self.answers.append((sent, time.monotonic() - sent))
            except OSError:
                # Before the server listens, or a connection the server closed: a new one next time.
                if self.answers:
                    self.failures += 1
                if connection is not None:
                    connection.close()
                connection = None
            self._done.wait(max(0.0, _HEALTH_POLL_S - (time.monotonic() - sent)))
        if connection is not None:
            connection.close()

    def stop(self) -> None:
        self._done.set()
        self.join()

    def report(self, name: str, start: float, end: float) -> str:
        latencies = sorted(latency for sent, latency in self.answers if start <= sent < end)
        if not latencies:
            return f"{name}: no answers"
        p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
        over = sum(latency > _STALL_S for latency in latencies)
        limit = f"{_STALL_S * 1000:.0f} ms"
        return (
            f"{name}: {len(latencies):,} answers, median {statistics.median(latencies) * 1000:.1f} ms, "
            f"p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms, {over} above {limit}"
        )


async def _populate(bootstrap: str, layout: loadgen.Layout) -> None:
    committer = await loadgen.populate(bootstrap, layout)
    await committer.close()


def _settings(prefix: str, full_collection_every: float | None = None) -> dict[str, dict[str, object]]:
    settings: dict[str, dict[str, object]] = {
        "metrics": {"granularity": "group"},
        "filters": {"group_allow": f"^{prefix}-group-"},
    }
    if full_collection_every is not None:
        settings[""] = {"full_collection_every": full_collection_every}
    return settings


def _baseline(bootstrap: str, directory: Path, prefix: str, allocator: str) -> int:
    # Reading from the end of __consumer_offsets, it stays empty after an earlier load (--no-load) as well,
    # instead of reading and dropping millions of records first (44 MiB more RSS).
    settings = _settings(prefix) | {"clusters.local": {"start_latest": True}}
    with Lagwatch(bootstrap, directory, settings, name="empty", env=ALLOCATORS[allocator]) as empty:
        empty.wait_ready(_READY_TIMEOUT_S)
        time.sleep(_EMPTY_SETTLE_S)
        return empty.rss()


def _measure(bootstrap: str, directory: Path, prefix: str, args: argparse.Namespace, baseline: int) -> None:
    group_partitions = args.groups * args.partitions
    records = group_partitions * args.commits
    stalls = args.stalls_log or directory / "stalls.txt"
    probe_env = {"PYTHONPATH": str(_STALL_PROBE), "STALL_PROBE_OUT": str(stalls)} if args.stalls else {}
    settings = _settings(prefix, args.full_collection_every)
    env = probe_env | ALLOCATORS[args.allocator]
    with Lagwatch(bootstrap, directory, settings, nice=args.nice, env=env) as lagwatch:
        probe = HealthProbe(lagwatch)
        probe.start()
        try:
            replay_s = lagwatch.wait_ready(_READY_TIMEOUT_S, poll=0.05)
            ready_at = time.monotonic()
            replay_cpu = lagwatch.cpu()
            replay_wait = lagwatch.cpu_wait()
            after_ready = lagwatch.rss()
            print(f"lagwatch pid {lagwatch.pid} ready; settling for {args.settle:.0f} s", flush=True)
            scrape_latencies: list[float] = []
            rounds: list[float] = []
            sizes: list[int] = []
            highest = after_ready
            next_scrape = time.monotonic() + _SCRAPE_S
            while time.monotonic() - ready_at < args.settle:
                time.sleep(max(0.0, min(next_scrape - time.monotonic(), 1.0)))
                highest = max(highest, lagwatch.rss())
                if time.monotonic() >= next_scrape:
                    started = time.perf_counter()
                    status, body = lagwatch.get("/metrics", gzip=True)
                    scrape_latencies.append(time.perf_counter() - started)
                    if status != 200:
                        raise RuntimeError(f"/metrics answered {status}")
                    sizes.append(len(body))
                    rounds += metric_values(_tail(body), "lagwatch_evaluation_duration_seconds")
                    next_scrape += _SCRAPE_S
            settled = lagwatch.rss()
            highest = max(highest, settled)
            end = time.monotonic()
            settle_wait = lagwatch.cpu_wait() - replay_wait
        finally:
            probe.stop()
    print(
        f"replay: ready {replay_s:.1f} s after the start ({records / replay_s:,.0f} records/s wall); "
        f"lagwatch CPU by then {replay_cpu:.1f} s ({records / replay_cpu:,.0f} records/CPU-s)"
    )
    print(
        f"lagwatch's threads waited for a CPU {100 * replay_wait / replay_s:.0f}% of the replay, "
        f"{100 * settle_wait / (end - ready_at):.0f}% after (above a few %, the latencies below are partly "
        "the machine's)"
    )
    print(f"RSS: empty process {baseline / MIB:.1f} MiB; with {group_partitions:,} group-partitions:")
    for name, rss in (("after ready", after_ready), ("after settling", settled), ("max", highest)):
        print(
            f"  {name:<15} {rss / MIB:7.1f} MiB, {(rss - baseline) / MIB:7.1f} MiB above empty, "
            f"{(rss - baseline) / group_partitions:5.0f} bytes per group-partition (target <= 512)"
        )
    if rounds:
        print(
            f"lagwatch_evaluation_duration_seconds ({len(rounds)} scrapes): "
            f"median {statistics.median(rounds):.2f} s, max {max(rounds):.2f} s"
        )
    if scrape_latencies:
        print(
            f"/metrics, gzip ({statistics.median(sizes) / MIB:.1f} MiB): median "
            f"{statistics.median(scrape_latencies) * 1000:.0f} ms, max {max(scrape_latencies) * 1000:.0f} ms"
        )
    print(probe.report("/-/healthy during replay", 0.0, ready_at))
    print(probe.report("/-/healthy after ready", ready_at, end))
    print(probe.report("/-/healthy throughout", 0.0, end) + f"; {probe.failures} failed requests")
    if args.stalls:
        _print_stalls(stalls.read_text().splitlines() if stalls.exists() else [])


def _tail(gzipped: bytes, keep: int = _TAIL) -> str:
    """The end of a gzip body's text, where the health families are, inflated a piece at a time. Decoding
    the whole text and a regular expression over it held this process' GIL for seconds at 1,000,000
    group-partitions (some 0.66 s per 60 MB of text, without yielding), and so held the health probe's
    thread: `/-/healthy` answers of 2.7-4.1 s that no stall of lagwatch's loop explained."""
    inflater = zlib.decompressobj(31)
    tail = b""
    for start in range(0, len(gzipped), _PIECE):
        tail = (tail + inflater.decompress(gzipped[start : start + _PIECE]))[-keep:]
    tail = (tail + inflater.flush())[-keep:]
    return tail.decode().partition("\n")[2]


def _print_stalls(lines: list[str]) -> None:
    """The stall probe's findings (stall_probe/sitecustomize.py), the longest in CPU time first."""
    stalls = [line.split(maxsplit=5) for line in lines if " STALL " in line]
    collections = [int(line.split()[3]) for line in lines if " GC2 " in line]
    young = [int(line.split()[3]) for line in lines if " GC0 " in line or " GC1 " in line]
    print(
        f"stall probe: {len(stalls)} callbacks over 100 ms wall or 50 ms CPU; {len(collections)} full "
        f"collections, longest {max(collections, default=0)} ms CPU; {len(young)} young ones over 10 ms, "
        f"longest {max(young, default=0)} ms"
    )
    for _pid, _clock, _kind, wall, cpu, rest in sorted(stalls, key=lambda s: -int(s[4]))[:_STALLS_SHOWN]:
        print(f"  {cpu:>5} ms CPU ({wall} ms wall) {rest[:300]}")
    youngest = sorted(
        (line.split() for line in lines if " GC0 " in line or " GC1 " in line), key=lambda y: -int(y[3])
    )
    for _pid, _clock, kind, cpu, _collected, *where in youngest[:_YOUNG_SHOWN]:
        print(
            f"  young collection ({kind}) {cpu} ms CPU; thread, gc.get_count() as it began: {' '.join(where)}"
        )
    gaps = [line.split() for line in lines if " GAP " in line]
    print(
        f"gaps of over 100 ms between two callbacks: {len(gaps)}, longest "
        f"{max((int(g[3]) for g in gaps), default=0)} ms (wall; CPU of the loop thread / the other threads "
        "meanwhile):"
    )
    for _pid, _clock, _kind, wall, loop_cpu, others_cpu in sorted(gaps, key=lambda g: -int(g[3]))[
        :_STALLS_SHOWN
    ]:
        print(f"  {wall:>5} ms: loop {loop_cpu} ms, other threads {others_cpu} ms")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_load_arguments(parser, groups=100_000, commits=2)
    parser.add_argument("--settle", type=float, default=120.0, help="seconds after ready")
    parser.add_argument("--prefix", help="of the load's topics and groups (default: a fresh one)")
    parser.add_argument(
        "--no-load", action="store_true", help="measure the load that loadgen --prefix wrote earlier"
    )
    parser.add_argument("--delete", action="store_true", help="with --no-load: delete that load at the end")
    parser.add_argument(
        "--stalls",
        action="store_true",
        help="run the measured process with stall_probe/ and print its longest event-loop callbacks",
    )
    parser.add_argument(
        "--stalls-log", type=Path, help="with --stalls: keep every line of the probe in this file (appended)"
    )
    parser.add_argument(
        "--full-collection-every",
        type=float,
        help="lagwatch's full_collection_every (600 s by default): shorter, a run sees that collection",
    )
    args = parser.parse_args()
    if args.no_load and not (args.prefix and args.bootstrap):
        parser.error("--no-load measures an earlier load: give its --prefix and --bootstrap")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    exit_on_sigterm()
    print(f"{describe(args)}; granularity group", flush=True)
    prefix = args.prefix or f"million-{time.time_ns() // 10**9 % 10**6}"
    layout = loadgen.Layout(prefix, args.groups, args.partitions, args.topics, args.commits, 10, 25)
    with tempfile.TemporaryDirectory(prefix="lagwatch-million-") as name:
        directory = Path(name)
        with broker(args.bootstrap, directory, args.base_port) as bootstrap:
            baseline = _baseline(bootstrap, directory, prefix, args.allocator)
            print(f"empty lagwatch: RSS {baseline / MIB:.1f} MiB", flush=True)
            started = time.monotonic()
            try:
                if not args.no_load:
                    asyncio.run(_populate(bootstrap, layout))
                    print(f"loadgen took {time.monotonic() - started:.0f} s in all", flush=True)
                _measure(bootstrap, directory, prefix, args, baseline)
            finally:
                if args.delete or not args.no_load:
                    asyncio.run(loadgen.delete(bootstrap, layout))
    print(f"load average at the end {load_average()}")


if __name__ == "__main__":
    main()
