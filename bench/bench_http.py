"""/metrics for 10,000 groups x 10 partitions from a real server on loopback, and health checks meanwhile.

The server runs in a child process over the app's ClusterRuntime (its storage filled here, its sources never
started); the scraping client runs in this process and the health checker in a third one, so that none shares
a GIL with the server. Figures:

* /metrics median latency (request sent to last byte read) over --runs scrapes, plain and gzip, when an
  evaluation round changed the data just before the scrape (its render is running: the scrape is answered
  from the render before, sharing the GIL with the one running), when the round ended 1.5 s before (the
  server has rendered it), and when nothing changed since the previous scrape (a second Prometheus of an HA
  pair);
* latency of GET /-/healthy sent every 10 ms while scrapes that must render run back to back (gzip, as
  Prometheus asks).

On a 2-core machine the client processes compete with the server for the cores; a Prometheus on another host
would not.

With --changed N, N groups get a new commit before each round, so that the round replaces their statuses and
the render writes their blocks again (without it, a round changes no status: the best case).

Run: .venv/bin/python bench/bench_http.py [--groups N] [--partitions N] [--runs N] [--health-seconds S]
     [--changed N]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import multiprocessing
import statistics
import time
from multiprocessing.connection import Connection

import aiohttp

from exporter.core.model import GroupMetadata, Member, OffsetCommit, TopicPartitions
from exporter.core.storage import Storage
from exporter.exposition.server import HttpServer
from exporter.runtime import ClusterRuntime
from exporter.settings import ClusterSettings, HttpSettings, LagSecondsSettings, Settings, StorageSettings

_NOW = 1_763_000_000
_NOW_MS = _NOW * 1000
_TOPICS = 1000
_COMMITS = 10
_COMMIT_EVERY_MS = 60_000


_SETTINGS = Settings(
    clusters={"bench": ClusterSettings(bootstrap_servers=("127.0.0.1:9092",))},
    http=HttpSettings(listen="127.0.0.1:0"),
    storage=StorageSettings(intervals=_COMMITS),
    # Off: with no HEAD round ever run there is no history to interpolate on.
    lag_seconds=LagSecondsSettings(enabled=False),
)


async def _runtime(groups: int, partitions: int) -> ClusterRuntime:
    """The app's cluster runtime, its storage filled by hand and evaluated; its sources never run."""
    runtime = ClusterRuntime.filled(
        "bench", _SETTINGS, lambda storage: _fill(storage, groups, partitions), clock=lambda: _NOW
    )
    await runtime.evaluate_now()
    return runtime


def _fill(storage: Storage, groups: int, partitions: int) -> None:
    topics = [f"topic-{t:04d}" for t in range(min(_TOPICS, groups))]
    storage.set_topics(dict.fromkeys(topics, partitions), _NOW_MS)
    for topic in topics:
        for p in range(partitions):
            storage.add_head_offset(topic, p, 1_000_000 + p * 1000, _NOW_MS)
    order = 0
    for g in range(groups):
        name = f"group-{g:05d}"
        topic = topics[g % len(topics)]
        for i in range(_COMMITS):
            for p in range(partitions):
                order += 1
                offset = 1_000_000 + p * 1000 - (g % 50) * (_COMMITS - i)
                timestamp = _NOW_MS - 5000 - (_COMMITS - 1 - i) * _COMMIT_EVERY_MS
                storage.apply(OffsetCommit(name, topic, p, offset, timestamp), order, _NOW_MS)
        member = Member(
            f"{name}-member",
            f"consumer-{g}",
            f"/10.1.{g % 256}.{g // 256 % 256}",
            assignment=(TopicPartitions(topic, tuple(range(partitions))),),
        )
        order += 1
        storage.apply(
            GroupMetadata(name, "consumer", 1, "range", member.member_id, (member,)), order, _NOW_MS
        )


def _serve(groups: int, partitions: int, changed: int, pipe: Connection) -> None:
    async def main() -> None:
        started = time.perf_counter()
        runtime = await _runtime(groups, partitions)
        built = time.perf_counter() - started
        server = HttpServer({"bench": runtime}, _SETTINGS)
        await server.start()
        stalls: list[float] = []
        monitor = asyncio.create_task(_watch_loop(stalls))
        pipe.send((server.port, built))
        loop = asyncio.get_running_loop()
        commits = _Commits(runtime.storage, groups, partitions)
        while (command := await loop.run_in_executor(None, pipe.recv)) != "stop":
            if command == "round":
                # An evaluation round: the `changed` groups that got a new commit since the last one are
                # evaluated again (their statuses are replaced); the others' statuses stay.
                commits.next(changed)
                await runtime.evaluate_now()
                pipe.send("done")
                continue
            if command == "stalls":
                pipe.send(list(stalls))
            stalls.clear()
        monitor.cancel()
        await server.stop()

    asyncio.run(main())


class _Commits:
    """One new commit (on partition 0) for each of the next groups, in turn, before a round."""

    def __init__(self, storage: Storage, groups: int, partitions: int) -> None:
        self._storage = storage
        self._groups = groups
        self._topics = min(_TOPICS, groups)
        self._next = 0
        self._order = groups * (_COMMITS * partitions + 1)
        self._offset = 1_000_000

    def next(self, count: int) -> None:
        for _ in range(count):
            g = self._next % self._groups
            self._next += 1
            self._order += 1
            self._offset += 1
            commit = OffsetCommit(f"group-{g:05d}", f"topic-{g % self._topics:04d}", 0, self._offset, _NOW_MS)
            self._storage.apply(commit, self._order, _NOW_MS)


async def _watch_loop(stalls: list[float]) -> None:
    """How late the server's event loop wakes up from 5 ms sleeps: what any request would wait for."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(0.005)
        stalls.append(time.perf_counter() - started - 0.005)


def _health(port: int, seconds: float, results: Connection) -> None:
    """GET /-/healthy every 10 ms for `seconds`, over one keep-alive connection; sends the latencies."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    next_at = time.perf_counter()
    while next_at < deadline:
        started = time.perf_counter()
        connection.request("GET", "/-/healthy")
        response = connection.getresponse()
        response.read()
        assert response.status == 200
        latencies.append(time.perf_counter() - started)
        next_at += 0.01
        time.sleep(max(0.0, next_at - time.perf_counter()))
    results.send(latencies)


async def _scrape(session: aiohttp.ClientSession, url: str, gzip: bool) -> tuple[float, int]:
    headers = {"Accept-Encoding": "gzip" if gzip else "identity"}
    started = time.perf_counter()
    async with session.get(url, headers=headers) as response:
        body = await response.read()
    assert response.status == 200
    assert (response.headers.get("Content-Encoding") == "gzip") is gzip
    return time.perf_counter() - started, len(body)


async def _measure(
    url: str, runs: int, gzip: bool, server: Connection, round_ended_s: float | None
) -> tuple[list[float], int]:
    """`runs` scrapes, each `round_ended_s` after a new round (None: no new round)."""
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        await _scrape(session, url, gzip)
        timings = []
        size = 0
        for _ in range(runs):
            if round_ended_s is not None:
                _new_round(server)
                await asyncio.sleep(round_ended_s)
            elapsed, size = await _scrape(session, url, gzip)
            timings.append(elapsed)
    return timings, size


async def _scrape_for(url: str, seconds: float, server: Connection) -> int:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        deadline = time.perf_counter() + seconds
        scrapes = 0
        while time.perf_counter() < deadline:
            _new_round(server)
            await _scrape(session, url, gzip=True)
            scrapes += 1
    return scrapes


def _new_round(server: Connection) -> None:
    """An evaluation round in the server, returning once it ended."""
    server.send("round")
    assert server.recv() == "done"


def _samples(port: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    connection.close()
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def _p99(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.99) - 1)]


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    return (
        f"median {statistics.median(ordered) * 1000:.0f} ms, min {ordered[0] * 1000:.0f}, "
        f"max {ordered[-1] * 1000:.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--health-seconds", type=float, default=5.0)
    parser.add_argument(
        "--changed", type=int, default=0, help="groups with a new commit before each round (default 0)"
    )
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    server = context.Process(target=_serve, args=(args.groups, args.partitions, args.changed, theirs))
    server.start()
    try:
        port, built = ours.recv()
        url = f"http://127.0.0.1:{port}/metrics"
        print(
            f"groups={args.groups} partitions/group={args.partitions} changed/round={args.changed} "
            f"(data built in {built:.1f} s)"
        )
        figures = {}
        cases = (
            ("new round just before: scrape renders", 0.0),
            ("new round 1.5 s before: rendered ahead", 1.5),
            ("no new round: kept body", None),
        )
        for label, round_ended_s in cases:
            for gzip in (False, True):
                timings, size = asyncio.run(_measure(url, args.runs, gzip, ours, round_ended_s))
                figures[label, gzip] = timings
                encoding = "gzip" if gzip else "identity"
                print(f"/metrics, {label}, {encoding}: {_ms(timings)} over {len(timings)}; {size:,} bytes")
        print(f"samples per scrape: {_samples(port):,}")

        receive, send = context.Pipe()
        checker = context.Process(target=_health, args=(port, args.health_seconds, send))
        ours.send("reset")
        checker.start()
        scrapes = asyncio.run(_scrape_for(url, args.health_seconds, ours))
        latencies = receive.recv()
        checker.join()
        ours.send("stalls")
        stalls = ours.recv()
        print(
            f"/-/healthy every 10 ms during {scrapes} back-to-back gzip scrapes that render: "
            f"{len(latencies)} checks, {_ms(latencies)}, p99 {_p99(latencies) * 1000:.0f} ms"
        )
        print(
            f"the server's event loop meanwhile woke up late by {_ms(stalls)}, "
            f"p99 {_p99(stalls) * 1000:.0f} ms ({len(stalls)} wake-ups)"
        )
    finally:
        ours.send("stop")
        server.join(timeout=30)
        if server.is_alive():
            server.terminate()


if __name__ == "__main__":
    main()
