"""A real load for a real broker: topics with messages, and group commits sent as OffsetCommit requests.

lagwatch's benchmarks at scale need `__consumer_offsets` filled the way a busy cluster fills it, by the
broker itself: G groups x P partitions x C commits. Running that many consumers is out of reach on one
machine, so this sends what a consumer's commit is on the wire, an OffsetCommit request, with generation -1
and no member id (a "simple" commit, which Kafka accepts for a group without members: what
`kafka-consumer-groups --reset-offsets` and assign()-only consumers send). The broker writes the records and
stamps them with its clock.

Layout: `--topics` topics of `--partitions` partitions; group g consumes topic g mod `--topics`. Each topic
partition first gets `--commits` x `--step` messages plus `--lag-tail`, so that HEAD offsets sit above every
commit. Commit round r moves every group-partition to offset (r + 1) x step minus a per-group lag drawn once,
so the windows hold a mix of caught-up and lagging partitions.

    .venv/bin/python bench/loadgen.py --bootstrap 127.0.0.1:9092 --groups 10000 --partitions 10 --commits 12
    .venv/bin/python bench/loadgen.py --bootstrap ... --live 5000 --seconds 1800    # then 5,000 commits/s

Prints what it wrote and the rate. Topics and groups are named after `--prefix`; `--delete` removes them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaClient, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from aiokafka.protocol.commit import OffsetCommitRequest

_COORDINATOR_GROUP = 0
"""FindCoordinator key type of a consumer group."""
_ATTEMPTS = 10
_IN_FLIGHT = 256
"""OffsetCommit requests outstanding at once: enough to keep the broker busy, few enough for its queue."""


@dataclass(frozen=True)
class Layout:
    prefix: str
    groups: int
    partitions: int
    topics: int
    commits: int
    step: int
    lag_tail: int

    def topic(self, t: int) -> str:
        return f"{self.prefix}-topic-{t:05d}"

    def group(self, g: int) -> str:
        return f"{self.prefix}-group-{g:06d}"

    @property
    def messages_per_partition(self) -> int:
        return self.commits * self.step + self.lag_tail


async def create_topics(bootstrap: str, layout: Layout) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        brokers = len((await admin.describe_cluster())["brokers"])
        factor = min(3, brokers)
        names = [layout.topic(t) for t in range(layout.topics)]
        for start in range(0, len(names), 500):
            batch = [NewTopic(n, layout.partitions, factor) for n in names[start : start + 500]]
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(batch)
        # Producing before every partition has a leader only buys retries (and a warning for each).
        for _ in range(240):
            if await _all_led(admin, names, layout.partitions):
                break
            await asyncio.sleep(0.5)
        else:
            raise TimeoutError("the new topics have no leader after 2 minutes")
    finally:
        await admin.close()


async def _all_led(admin: AIOKafkaAdminClient, names: Sequence[str], partitions: int) -> bool:
    for start in range(0, len(names), 500):
        described = await admin.describe_topics(list(names[start : start + 500]))
        for topic in described:
            led = [p for p in topic["partitions"] if p["leader"] >= 0]
            if topic["error_code"] or len(led) < partitions:
                return False
    return True


async def produce(bootstrap: str, layout: Layout) -> int:
    """Fills every partition up to `messages_per_partition`; returns how many messages were sent."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 18, acks=1)
    await producer.start()
    try:
        return await _produce(producer, layout, layout.messages_per_partition)
    finally:
        await producer.stop()


async def _produce(producer: AIOKafkaProducer, layout: Layout, per_partition: int) -> int:
    # A partition that just got its leader may still refuse a first produce: aiokafka retries it and warns
    # each time, thousands of lines that say nothing here. Errors that end a request still raise.
    sender_log = logging.getLogger("aiokafka.producer")
    level = sender_log.level
    sender_log.setLevel(logging.ERROR)
    try:
        return await _produce_all(producer, layout, per_partition)
    finally:
        sender_log.setLevel(level)


async def _produce_all(producer: AIOKafkaProducer, layout: Layout, per_partition: int) -> int:
    value = b"x" * 16
    pending: list[asyncio.Future[object]] = []
    for t in range(layout.topics):
        for p in range(layout.partitions):
            for _ in range(per_partition):
                pending.append(await producer.send(layout.topic(t), value, partition=p))
            if len(pending) >= 50_000:
                await asyncio.gather(*pending)
                pending.clear()
    await asyncio.gather(*pending)
    return layout.topics * layout.partitions * per_partition


class Committer:
    """Sends simple commits for the layout's groups, each to its group coordinator."""

    def __init__(self, bootstrap: str, layout: Layout, connections: int = 16, seed: int = 1) -> None:
        # A broker answers the requests of one connection one at a time, and a commit waits for its append
        # to __consumer_offsets (milliseconds): one connection would cap the load near 150 requests/s.
        self._clients = [
            AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=60_000) for _ in range(connections)
        ]
        self._layout = layout
        self._coordinators: dict[int, int] = {}
        rng = random.Random(seed)
        # Lag behind the round's offset, per group: 40% caught up, the rest lagging by up to two steps.
        self._lag = [
            0 if rng.random() < 0.4 else rng.randrange(1, 2 * layout.step) for _ in range(layout.groups)
        ]
        self.requests = 0

    async def start(self) -> None:
        await asyncio.gather(*(client.bootstrap() for client in self._clients))

    async def close(self) -> None:
        await asyncio.gather(*(client.close() for client in self._clients))

    async def commit_round(self, round_: int) -> None:
        """Every group commits all its partitions at round `round_`."""
        await self.commit([(g, round_) for g in range(self._layout.groups)])

    async def commit(self, commits: Sequence[tuple[int, int]]) -> None:
        """Each (group, round) commits all its partitions, at most `_IN_FLIGHT` requests at a time."""
        limit = asyncio.Semaphore(_IN_FLIGHT)

        async def one(g: int, round_: int) -> None:
            async with limit:
                await self._commit(g, round_)

        await asyncio.gather(*(one(g, r) for g, r in commits))

    async def _commit(self, g: int, round_: int) -> None:
        layout = self._layout
        offset = max(0, (round_ + 1) * layout.step - self._lag[g])
        topic = layout.topic(g % layout.topics)
        request = OffsetCommitRequest(
            layout.group(g),
            OffsetCommitRequest.DEFAULT_GENERATION_ID,
            "",
            OffsetCommitRequest.DEFAULT_RETENTION_TIME,
            [(topic, [(p, offset, "") for p in range(layout.partitions)])],
        )
        client = self._clients[g % len(self._clients)]
        error: Exception | None = None
        for attempt in range(_ATTEMPTS):
            try:
                node = self._coordinators.get(g)
                if node is None:
                    node = await client.coordinator_lookup(_COORDINATOR_GROUP, layout.group(g))
                    self._coordinators[g] = node
                response = await client.send(node, request)
                self.requests += 1
                codes = {code for _, parts in response.topics for _, code in parts if code}
                if not codes:
                    return
                raise for_code(codes.pop())(layout.group(g))
            except KafkaError as failed:
                # The offsets topic being created, a coordinator moving or loading: look it up again.
                if not failed.retriable:
                    raise
                error = failed
                self._coordinators.pop(g, None)
                await asyncio.sleep(0.2 * (attempt + 1))
        raise RuntimeError(f"commit of {layout.group(g)} failed {_ATTEMPTS} times: {error!r}")


async def populate(bootstrap: str, layout: Layout, connections: int = 16, out: bool = True) -> Committer:
    """Topics, messages and every commit round; returns the started committer for a live phase."""
    started = time.monotonic()
    await create_topics(bootstrap, layout)
    sent = await produce(bootstrap, layout)
    produced = time.monotonic()
    if out:
        print(
            f"{layout.topics:,} topics x {layout.partitions} partitions: {sent:,} messages in "
            f"{produced - started:.1f} s",
            flush=True,
        )
    committer = Committer(bootstrap, layout, connections)
    await committer.start()
    for round_ in range(layout.commits):
        await committer.commit_round(round_)
    done = time.monotonic()
    records = layout.groups * layout.partitions * layout.commits
    if out:
        print(
            f"{layout.groups:,} groups x {layout.partitions} partitions x {layout.commits} commits: "
            f"{records:,} commit records in {done - produced:.1f} s ({records / (done - produced):,.0f}/s, "
            f"{committer.requests:,} OffsetCommit requests)",
            flush=True,
        )
    return committer


async def live(bootstrap: str, committer: Committer, layout: Layout, rate: float, seconds: float) -> None:
    """Commits at `rate` group-partition commits per second for `seconds`: group after group, each group's
    next round continuing from where `populate` stopped. Before a round starts, every partition gets `step`
    more messages, so HEAD offsets keep moving ahead of the commits. A report every 10 s."""
    groups_per_second = max(1.0, rate / layout.partitions)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 18, acks=1)
    await producer.start()
    try:
        started = time.monotonic()
        position = 0
        report = started + 10
        while (now := time.monotonic()) - started < seconds:
            due = int((now - started) * groups_per_second) - position
            if due > 0:
                batch = range(position, position + due)
                if any(i % layout.groups == 0 for i in batch):
                    await _move_heads(producer, layout)
                await committer.commit(
                    [(i % layout.groups, layout.commits + i // layout.groups) for i in batch]
                )
                position += due
            if now >= report:
                print(
                    f"live: {position * layout.partitions / (now - started):,.0f} commits/s over "
                    f"{now - started:.0f} s",
                    flush=True,
                )
                report += 10
            await asyncio.sleep(0.05)
    finally:
        await producer.stop()


async def _move_heads(producer: AIOKafkaProducer, layout: Layout) -> None:
    try:
        await _produce(producer, layout, layout.step)
    except KafkaError as failed:
        # A broker short of CPU may time a produce out: the HEADs skip a step (--lag-tail keeps them above
        # the commits), and the commits go on, where ending the run would end the benchmark measuring it.
        if not failed.retriable:
            raise
        print(f"live: moving the HEADs failed ({failed!r}); going on", file=sys.stderr, flush=True)


async def delete(bootstrap: str, layout: Layout) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [layout.topic(t) for t in range(layout.topics)]
        for start in range(0, len(names), 500):
            await admin.delete_topics(names[start : start + 500])
    finally:
        await admin.close()


def _layout(args: argparse.Namespace) -> Layout:
    return Layout(
        args.prefix, args.groups, args.partitions, args.topics, args.commits, args.step, args.lag_tail
    )


async def _main(args: argparse.Namespace) -> int:
    layout = _layout(args)
    if args.delete:
        await delete(args.bootstrap, layout)
        print(f"deleted {layout.topics:,} topics named {args.prefix}-topic-*; their groups expire with them")
        return 0
    committer = await populate(args.bootstrap, layout, args.connections)
    try:
        if args.live:
            await live(args.bootstrap, committer, layout, args.live, args.seconds)
    finally:
        await committer.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    parser.add_argument("--prefix", default="loadgen")
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--topics", type=int, default=1_000)
    parser.add_argument("--commits", type=int, default=12, help="commit rounds written up front")
    parser.add_argument("--step", type=int, default=10, help="messages between two commits of a partition")
    parser.add_argument("--lag-tail", type=int, default=25, help="messages above the last round's offset")
    parser.add_argument("--live", type=float, metavar="COMMITS_PER_S", help="then commit at this rate")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the live phase")
    parser.add_argument("--connections", type=int, default=16, help="to each broker, for commits")
    parser.add_argument("--delete", action="store_true", help="delete the layout's topics and stop")
    args = parser.parse_args(argv)
    if not args.bootstrap:
        parser.error("--bootstrap (or KAFKA_BOOTSTRAP_SERVERS) is required")
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
