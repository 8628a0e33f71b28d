"""A gzip scrape of /metrics while a render runs in a worker thread (the GIL shared) and a round on the loop.

One process holds the server (the app's ClusterRuntime over storage filled by hand, as `bench_http.py`), and,
for the second half of the scrapes, a worker thread that renders the same views again and again from a fresh
`BlockRenderer` (every block written, as after a round that re-evaluated every group), as the rendering ahead
of scrapes does after each published round. With --round, a task holds the event loop `--slice` seconds at a
time meanwhile and lets it turn in between, as an evaluation round does (`let_go.SLICE_S`). The scraping
client runs in a child process, so it does not share the server's GIL. Per scrape: latency (request sent to
last byte read), and in the server the event loop's turns (selector waits), socket sends and longest callback
(CPU time of the loop thread in one callback) while it answered.

--write-slice sets the largest write of the answer (`metrics_endpoint._SLICE`, 1 MiB); --switch-interval
`sys.setswitchinterval` (5 ms); --identity scrapes without gzip (the kept blocks inflated as they are sent).

Run: .venv/bin/python bench/bench_scrape_gil.py [--groups N] [--partitions N] [--runs N] [--round]
     [--slice S] [--write-slice BYTES] [--switch-interval S] [--identity]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import multiprocessing
import socket
import statistics
import sys
import threading
import time
from multiprocessing.connection import Connection

from bench_http import _SETTINGS, _runtime

from exporter.exposition import metrics_endpoint
from exporter.exposition.blocks import BlockRenderer
from exporter.exposition.metrics_endpoint import _STATE
from exporter.exposition.server import HttpServer
from exporter.let_go import SLICE_S


def _client(port: int, encoding: str, pipe: Connection) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while pipe.recv() == "scrape":
        started = time.perf_counter()
        connection.request("GET", "/metrics", headers={"Accept-Encoding": encoding})
        response = connection.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        assert response.status == 200
        assert response.getheader("Content-Encoding", "identity") == encoding
        pipe.send((elapsed, len(body)))


class _Counts:
    """The event loop's selector waits and socket sends, counted while a scrape runs, and its longest
    callback in CPU time of the loop thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.turns = self.sends = 0
        self.longest = 0.0
        run = asyncio.events.Handle._run

        def timed_run(handle: asyncio.events.Handle) -> None:
            started = time.thread_time()
            run(handle)
            self.longest = max(self.longest, time.thread_time() - started)

        asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]
        selector = loop._selector  # type: ignore[attr-defined]
        select = selector.select

        def counted_select(timeout: float | None = None) -> object:
            self.turns += 1
            return select(timeout)

        selector.select = counted_select
        original = socket.socket.send

        def counted_send(sock: socket.socket, data: bytes, flags: int = 0) -> int:
            self.sends += 1
            return original(sock, data, flags)

        # asyncio's transports call their socket's `send`: count them on the class.
        socket.socket.send = counted_send  # type: ignore[method-assign,assignment]


async def _main(args: argparse.Namespace) -> None:
    runtime = await _runtime(args.groups, args.partitions)
    server = HttpServer({"bench": runtime}, _SETTINGS)
    await server.start()
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    encoding = "identity" if args.identity else "gzip"
    client = context.Process(target=_client, args=(server.port, encoding, theirs))
    client.start()
    loop = asyncio.get_running_loop()

    async def scrape() -> tuple[float, int]:
        ours.send("scrape")
        return await loop.run_in_executor(None, ours.recv)

    await scrape()  # the first render, by the scrape
    state = server._runner.app[_STATE]  # type: ignore[union-attr]
    assert state.rendered is not None
    views = state.rendered.views
    counts = _Counts(loop)
    stop = threading.Event()
    renders: list[float] = []

    def render_forever() -> None:
        while not stop.is_set():
            started = time.thread_time()
            BlockRenderer(state.options).render(views)
            renders.append(time.thread_time() - started)

    async def round_in_slices() -> None:
        # What an evaluation round does to the loop: holds it `SLICE_S` at a time, letting it turn between.
        while True:
            turn = time.perf_counter()
            while time.perf_counter() - turn < args.slice:
                sum(range(1000))
            await asyncio.sleep(0)

    rounds = asyncio.create_task(round_in_slices()) if args.round else None
    for label, rendering in (("no render running", False), ("a render running in a worker thread", True)):
        thread = threading.Thread(target=render_forever) if rendering else None
        if thread is not None:
            stop.clear()
            thread.start()
            await asyncio.sleep(0.2)
        timings, turns, sends, longest = [], [], [], []
        size = 0
        for _ in range(args.runs):
            counts.turns = counts.sends = 0
            counts.longest = 0.0
            elapsed, size = await scrape()
            timings.append(elapsed)
            turns.append(counts.turns)
            sends.append(counts.sends)
            longest.append(counts.longest * 1000)
            await asyncio.sleep(0.05)
        if thread is not None:
            stop.set()
            await asyncio.to_thread(thread.join)
        ms = sorted(t * 1000 for t in timings)
        print(
            f"{label}: {encoding} scrape of {size:,} bytes median {statistics.median(ms):.0f} ms, "
            f"min {ms[0]:.0f}, max {ms[-1]:.0f} over {len(ms)}; "
            f"loop turns median {statistics.median(turns):.0f}, "
            f"socket sends median {statistics.median(sends):.0f}; longest callback (CPU) median "
            f"{statistics.median(longest):.1f} ms, max {max(longest):.1f}"
        )
    if rounds is not None:
        rounds.cancel()
    if renders:
        cpu = statistics.median(renders) * 1000
        print(f"renders completed in the worker thread meanwhile: {len(renders)}, CPU median {cpu:.0f} ms")
    ours.send("stop")
    client.join()
    await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--round", action="store_true", help="an evaluation round runs on the loop meanwhile, in 20 ms slices"
    )
    parser.add_argument("--slice", type=float, default=SLICE_S, help="of the round, in seconds")
    parser.add_argument("--write-slice", type=int, default=None)
    parser.add_argument("--switch-interval", type=float, default=None)
    parser.add_argument("--identity", action="store_true", help="scrape without gzip")
    args = parser.parse_args()
    if args.write_slice is not None:
        metrics_endpoint._SLICE = args.write_slice
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    interval = sys.getswitchinterval() * 1000
    print(f"groups={args.groups} partitions/group={args.partitions} switch interval {interval:g} ms")
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
