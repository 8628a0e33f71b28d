"""Kafka requests per HEAD round: what lagwatch's HEAD poller sends to the brokers, by API, counted on the
real client while it polls a real broker.

Run: .venv/bin/python bench/bench_requests.py --bootstrap HOST:PORT [--topics T] [--partitions P]
[--rounds N] (or KAFKA_BOOTSTRAP_SERVERS). It creates T topics of P partitions, lets the poller run N rounds
after its first, and prints the requests of each API per round: steady rounds (HEAD offsets, log-start
offsets) and the rounds that also refresh the metadata (Metadata, DescribeConfigs). Topics are deleted at the
end. The script only uses `HeadPoller`, so the same file measures any version of lagwatch: run it with
PYTHONPATH set to another checkout to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import uuid
from collections import Counter
from typing import Any

from aiokafka import AIOKafkaClient
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from exporter.core.storage import Storage
from exporter.settings import ClusterSettings
from exporter.sources.cluster import HeadPoller

_API_NAMES = {2: "ListOffsets", 3: "Metadata", 32: "DescribeConfigs"}


async def _measure(bootstrap: str, topics: int, partitions: int, rounds: int) -> None:
    settings = ClusterSettings(
        bootstrap_servers=tuple(bootstrap.split(",")),
        offset_refresh=0.5,
        topic_refresh=2.0,
        request_timeout=10.0,
    )
    prefix = f"bench-requests-{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}-{i}" for i in range(topics)]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(name, partitions, 1) for name in names])
    sent: Counter[str] = Counter()
    per_round: list[Counter[str]] = []
    original = AIOKafkaClient.send

    async def counting(self: AIOKafkaClient, node_id: int, request: Any, **kwargs: Any) -> Any:
        sent[_API_NAMES.get(request.API_KEY, type(request).__name__)] += 1
        return await original(self, node_id, request, **kwargs)

    poller = HeadPoller("bench", settings, Storage("bench"))

    async def count_per_round() -> None:
        seen = 0
        while len(per_round) <= rounds:
            seen = await poller.next_round(seen)
            per_round.append(sent.copy())
            sent.clear()

    AIOKafkaClient.send = counting
    task = asyncio.create_task(poller.run())
    try:
        await count_per_round()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        AIOKafkaClient.send = original
        await admin.delete_topics(names)
        await admin.close()
    brokers = len({b.nodeId for b in (await _brokers(bootstrap))})
    print(f"brokers={brokers} topics={topics} partitions/topic={partitions} rounds={rounds} after the first")
    kinds: Counter[tuple[tuple[str, int], ...]] = Counter(
        tuple(sorted(counts.items())) for counts in per_round[1:]
    )
    for shape, count in sorted(kinds.items(), key=lambda item: -item[1]):
        total = sum(n for _, n in shape)
        print(f"{count:3d} rounds: {total} requests: " + ", ".join(f"{name} {n}" for name, n in shape))


async def _brokers(bootstrap: str) -> list[Any]:
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        return list(client.cluster.brokers())
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", ""))
    parser.add_argument("--topics", type=int, default=20)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    if not args.bootstrap:
        parser.error("--bootstrap or KAFKA_BOOTSTRAP_SERVERS is required")
    asyncio.run(_measure(args.bootstrap, args.topics, args.partitions, args.rounds))


if __name__ == "__main__":
    main()
