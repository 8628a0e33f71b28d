"""What anyone who can reach lagwatch's port can do to it (issue #16, item 5), measured.

1. Noise: --bad requests of each malformed kind (over-long header, bad method, TLS on the plain port,
   undecodable Content-Length) and as many clients that hang up before their /metrics answer; the figure is
   the number of log lines and traceback lines the server wrote.
2. Slow loris: --loris connections that each send one byte a second and never finish their request, for
   --seconds; meanwhile a /metrics scrape on a new connection every 0.5 s. Figures: the scrapes' median and
   worst latency and failures, and how many slow connections the server still held open at the end.

The server is a real HttpServer (default settings: 10 s header timeout, 512 connections) in a child process,
with its log in a file; the clients run in this process.

Run: .venv/bin/python bench/bench_http_abuse.py [--bad 100] [--loris 2000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

from exporter.exposition.server import HttpServer
from exporter.settings import ClusterSettings, HttpSettings, Settings

_BAD = {
    "over-long header": b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\n",
    "bad method": b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n",
    "TLS on the plain port": bytes.fromhex("16030100a5010000a10303") + bytes(160),
    "bad Content-Length": b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
}
_METRICS = b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def _serve(log_file: str, pipe: Connection) -> None:
    logging.basicConfig(filename=log_file, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    async def main() -> None:
        settings = Settings(
            clusters={"bench": ClusterSettings(bootstrap_servers=("127.0.0.1:9092",))},
            http=HttpSettings(listen="127.0.0.1:0"),
        )
        server = HttpServer({}, settings)
        await server.start()
        pipe.send(server.port)
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        await server.stop()

    asyncio.run(main())


async def _send(port: int, data: bytes, hang_up: bool = False) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    if hang_up:
        writer.transport.abort()
        return
    await asyncio.wait_for(reader.read(), 10)
    writer.close()


async def _noise(port: int, count: int) -> None:
    for _ in range(count):
        for data in _BAD.values():
            await _send(port, data)
        await _send(port, _METRICS, hang_up=True)
    await asyncio.sleep(1.0)


async def _loris(port: int, stop: asyncio.Event, closed: list[int]) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        closed[1] += 1
        return
    try:
        for byte in b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"a" * 10_000:
            writer.write(bytes([byte]))
            await writer.drain()
            try:
                if await asyncio.wait_for(reader.read(1), 1.0) == b"" or stop.is_set():
                    break
            except TimeoutError:
                if stop.is_set():
                    return
    except ConnectionError:
        pass
    closed[0] += 1
    writer.close()


async def _slow_loris(port: int, connections: int, seconds: float) -> tuple[list[float], int, int, int]:
    stop = asyncio.Event()
    closed = [0, 0]
    lorises = []
    for _ in range(connections):
        lorises.append(asyncio.create_task(_loris(port, stop, closed)))
        await asyncio.sleep(0.002)
    latencies: list[float] = []
    failures = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(_send(port, _METRICS), 10)
            latencies.append(time.perf_counter() - started)
        except (OSError, TimeoutError):
            failures += 1
        await asyncio.sleep(0.5)
    held = connections - closed[0] - closed[1]
    stop.set()
    await asyncio.gather(*lorises)
    return latencies, failures, held, closed[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bad", type=int, default=100)
    parser.add_argument("--loris", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        log_file = Path(directory) / "server.log"
        ours, theirs = multiprocessing.Pipe()
        server = multiprocessing.Process(target=_serve, args=(str(log_file), theirs))
        server.start()
        port = ours.recv()
        asyncio.run(_noise(port, args.bad))
        lines = log_file.read_text().splitlines()
        tracebacks = sum(line.startswith("Traceback") for line in lines)
        print(
            f"{args.bad} of each of {len(_BAD)} malformed kinds and {args.bad} early hang-ups: "
            f"{len(lines)} log lines, {tracebacks} tracebacks"
        )
        latencies, failures, held, refused = asyncio.run(_slow_loris(port, args.loris, args.seconds))
        ours.send("stop")
        server.join()
    print(
        f"{args.loris} slow-loris connections for {args.seconds:.0f} s: /metrics median "
        f"{statistics.median(latencies) * 1000:.0f} ms, worst {max(latencies) * 1000:.0f} ms, "
        f"{failures} failed of {len(latencies) + failures}; slow connections still open at the end: {held}"
        f" ({refused} could not connect)"
    )


if __name__ == "__main__":
    main()
