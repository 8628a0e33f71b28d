"""A correct scrape while 50 clients flood the server with wrong basic-auth passwords (issue #16, item 5).

The server (a real HttpServer with a web configuration of bcrypt cost 10 hashes) runs in a child process, the
50 flooding clients in a second one, each from its own loopback address (127.0.0.2 to 127.0.0.51) and each
sending one request at a time with a new wrong password for the real user name. Meanwhile this process sends a
correct request every --every seconds, each with a user the server has never verified (so the password must
really be checked, not found in the cache of verified credentials), and times it from request to last byte.

Figures: the median and worst latency of the correct requests and their status codes, and the flood's
answers by status code per second.

Run: .venv/bin/python bench/bench_auth_flood.py [--clients 50] [--probes 20] [--every 0.5] [--cost 10]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import secrets
import statistics
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path

import aiohttp
import bcrypt

from exporter.exposition.server import HttpServer
from exporter.settings import ClusterSettings, HttpSettings, Settings

_PASSWORD = "correct horse battery staple"
_FLOOD_USER = "prometheus"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _serve(config: str, pipe: Connection) -> None:
    async def main() -> None:
        settings = Settings(
            clusters={"bench": ClusterSettings(bootstrap_servers=("127.0.0.1:9092",))},
            http=HttpSettings(listen="127.0.0.1:0", web_config_file=config),
        )
        server = HttpServer({}, settings)
        await server.start()
        pipe.send(server.port)
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        await server.stop()

    asyncio.run(main())


def _flood(port: int, clients: int, pipe: Connection) -> None:
    async def client(index: int, statuses: Counter[int], stop: asyncio.Event) -> None:
        connector = aiohttp.TCPConnector(local_addr=(f"127.0.0.{2 + index}", 0), force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            while not stop.is_set():
                headers = {"Authorization": _basic(_FLOOD_USER, secrets.token_hex(8))}
                try:
                    async with session.get(f"http://127.0.0.1:{port}/metrics", headers=headers) as response:
                        await response.read()
                        statuses[response.status] += 1
                except aiohttp.ClientError:
                    statuses[0] += 1
                    await asyncio.sleep(0.01)

    async def main() -> None:
        statuses: Counter[int] = Counter()
        stop = asyncio.Event()
        started = time.monotonic()
        tasks = [asyncio.create_task(client(i, statuses, stop)) for i in range(clients)]
        pipe.send("flooding")
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        stop.set()
        await asyncio.gather(*tasks)
        pipe.send((dict(statuses), time.monotonic() - started))

    asyncio.run(main())


async def _probe(port: int, users: list[str], every: float) -> list[tuple[float, int]]:
    results = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        for user in users:
            await asyncio.sleep(every)
            headers = {"Authorization": _basic(user, _PASSWORD)}
            started = time.perf_counter()
            async with session.get(f"http://127.0.0.1:{port}/metrics", headers=headers) as response:
                await response.read()
            results.append((time.perf_counter() - started, response.status))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--every", type=float, default=0.5)
    parser.add_argument("--cost", type=int, default=10)
    args = parser.parse_args()
    hashed = bcrypt.hashpw(_PASSWORD.encode(), bcrypt.gensalt(args.cost)).decode()
    idle_users = [f"idle{i}" for i in range(3)]
    probe_users = [f"user{i}" for i in range(args.probes)]
    users = [_FLOOD_USER, *idle_users, *probe_users]
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "web.yml"
        config.write_text("basic_auth_users:\n" + "".join(f"  {user}: '{hashed}'\n" for user in users))
        server_end, server_pipe = multiprocessing.Pipe()
        server = multiprocessing.Process(target=_serve, args=(str(config), server_pipe))
        server.start()
        port = server_end.recv()
        idle = asyncio.run(_probe(port, idle_users, 0.2))
        flood_end, flood_pipe = multiprocessing.Pipe()
        flood = multiprocessing.Process(target=_flood, args=(port, args.clients, flood_pipe))
        flood.start()
        flood_end.recv()
        results = asyncio.run(_probe(port, probe_users, args.every))
        flood_end.send("stop")
        statuses, seconds = flood_end.recv()
        flood.join()
        server_end.send("stop")
        server.join()
    latencies = [latency for latency, _ in results]
    alone = statistics.median(latency for latency, _ in idle)
    print(f"bcrypt cost {args.cost}; correct request with no flood: {alone * 1000:.0f} ms (median of 3)")
    print(
        f"correct requests during a flood from {args.clients} clients: median "
        f"{statistics.median(latencies) * 1000:.0f} ms, worst {max(latencies) * 1000:.0f} ms, "
        f"statuses {dict(Counter(status for _, status in results))}"
    )
    rates = {status: round(count / seconds, 1) for status, count in sorted(statuses.items())}
    print(f"flood answers per second by status (0: connection error): {rates}")


if __name__ == "__main__":
    main()
