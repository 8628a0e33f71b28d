"""Group churn soak: a running lagwatch while 1,000 groups are created and deleted again, round after round.

Each round commits 1,000 new groups (simple OffsetCommit requests, bench/loadgen.py) to 10 new topics, waits
until lagwatch lists every group, deletes the groups through Kafka (DeleteGroups: the broker writes their
tombstones) and the topics, and waits until lagwatch has forgotten them. After every round it records
lagwatch's resident memory (VmRSS of the process), its peak and settled data series
(`lagwatch_series_exposed`) and the groups it still lists. Memory is flat when the settled RSS stops growing
after the first rounds, which warm the allocator and the caches up.

lagwatch runs as `python -m exporter` in a child process with its defaults, except a HEAD and topic refresh of
1 s. Kafka is `--bootstrap`, or else a single broker that scripts/kafka-local starts for the run and removes.

Run: .venv/bin/python bench/bench_churn.py [--rounds 20] [--groups 1000] [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaClient
from aiokafka.protocol.admin import DeleteGroupsRequest
from lagwatch_process import MIB, REPO, broker, free_port, rss_bytes
from loadgen import Layout, delete, populate
from prometheus_client.parser import text_string_to_metric_families

_TOPICS = 10
_COORDINATOR_GROUP = 0
_DELETE_BATCH = 200
_SETTLE_TIMEOUT_S = 120.0


class _Lagwatch:
    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.session = session

    async def groups(self) -> set[str]:
        async with self.session.get(f"{self.url}/v3/kafka/local/consumer") as response:
            return set((await response.json())["consumers"])

    async def series(self) -> int:
        async with self.session.get(f"{self.url}/metrics") as response:
            text = await response.text()
        for family in text_string_to_metric_families(text):
            if family.name == "lagwatch_series_exposed":
                return int(family.samples[0].value)
        raise RuntimeError("no lagwatch_series_exposed")

    async def families(self) -> dict[str, int]:
        """Data series (those with a topic or group) per family."""
        async with self.session.get(f"{self.url}/metrics") as response:
            text = await response.text()
        counts: dict[str, int] = defaultdict(int)
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if "topic" in sample.labels or "group" in sample.labels:
                    counts[family.name] += 1
        return dict(counts)

    async def until(self, wanted: str, check: object) -> None:
        deadline = time.monotonic() + _SETTLE_TIMEOUT_S
        while not await check():  # type: ignore[operator]
            if time.monotonic() > deadline:
                raise TimeoutError(f"lagwatch did not {wanted} within {_SETTLE_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.25)


async def _delete_groups(client: AIOKafkaClient, groups: list[str]) -> None:
    by_node: dict[int, list[str]] = defaultdict(list)
    for group in groups:
        by_node[await client.coordinator_lookup(_COORDINATOR_GROUP, group)].append(group)
    for node, names in by_node.items():
        for start in range(0, len(names), _DELETE_BATCH):
            response = await client.send(node, DeleteGroupsRequest(names[start : start + _DELETE_BATCH]))
            failed = [(name, code) for name, code in response.results if code]
            if failed:
                raise RuntimeError(f"DeleteGroups failed for {len(failed)} groups, e.g. {failed[0]}")


async def _soak(bootstrap: str, rounds: int, groups: int, directory: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "LAGWATCH_CLUSTERS__LOCAL__OFFSET_REFRESH": "1",
        "LAGWATCH_CLUSTERS__LOCAL__TOPIC_REFRESH": "1",
        "LAGWATCH_LAG_SECONDS__STATE_DIR": str(directory / "state"),
    }
    log = (directory / "lagwatch.log").open("wb")
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, before any load
        [
            sys.executable,
            "-m",
            "exporter",
            "--bootstrap-servers",
            bootstrap,
            "--http.listen",
            f"127.0.0.1:{port}",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    run = uuid.uuid4().hex[:6]
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            lagwatch = _Lagwatch(f"http://127.0.0.1:{port}", session)

            async def ready() -> bool:
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{lagwatch.url}/-/ready") as response:
                        return response.status == 200
                return False

            await lagwatch.until("get ready", ready)
            baseline_groups = await lagwatch.groups()
            print(
                f"start: RSS {rss_bytes(process.pid) / MIB:.1f} MiB, {await lagwatch.series()} series",
                flush=True,
            )
            print("round  peak-series  settled-series  groups-left  RSS-MiB  round-s", flush=True)
            rss: list[float] = []
            for round_ in range(1, rounds + 1):
                started = time.monotonic()
                layout = Layout(f"churn-{run}-r{round_:03d}", groups, 1, _TOPICS, 2, 10, 5)
                committer = await populate(bootstrap, layout, connections=4, out=False)
                await committer.close()
                names = {layout.group(g) for g in range(groups)}

                async def all_seen(names: set[str] = names) -> bool:
                    return names <= await lagwatch.groups()

                await lagwatch.until(f"see round {round_}'s groups", all_seen)
                await asyncio.sleep(2.5)  # an evaluation round and a render with every group in them
                peak = await lagwatch.series()
                await _delete_groups(client, sorted(names))
                await delete(bootstrap, layout)

                async def all_gone(names: set[str] = names) -> bool:
                    return not names & await lagwatch.groups()

                await lagwatch.until(f"forget round {round_}'s groups", all_gone)
                await asyncio.sleep(2.5)
                settled = await lagwatch.series()
                left = len(await lagwatch.groups() - baseline_groups)
                rss.append(rss_bytes(process.pid) / MIB)
                print(
                    f"{round_:5d}  {peak:11,d}  {settled:14,d}  {left:11d}  {rss[-1]:7.1f}  "
                    f"{time.monotonic() - started:7.1f}",
                    flush=True,
                )
            if len(rss) >= 10:
                half = len(rss) // 2
                print(
                    f"RSS after round {half}: {rss[half - 1]:.1f} MiB, after round {len(rss)}: "
                    f"{rss[-1]:.1f} MiB ({rss[-1] - rss[half - 1]:+.1f} MiB over the last {len(rss) - half} "
                    f"rounds); after the first round {rss[0]:.1f} MiB",
                    flush=True,
                )
            print(f"settled series by family: {await lagwatch.families()}", flush=True)
    finally:
        await client.close()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def main() -> None:
    # The producer retries while new topics get their leader; that is not news.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lagwatch-churn-") as name:
        directory = Path(name)
        with broker(args.bootstrap, directory) as bootstrap:
            asyncio.run(_soak(bootstrap, args.rounds, args.groups, directory))


if __name__ == "__main__":
    main()
