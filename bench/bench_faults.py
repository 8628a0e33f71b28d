"""Faults on a real 3-node KRaft cluster (replication factor 3) under lagwatch, with a healthy committing
group: a full outage, a frozen broker (SIGSTOP), kill -9 of the group's offsets leader, a rolling restart, a
flapping cluster and leader moves. lagwatch runs in this process, as `app.run` builds it; so do the
workload's clients.

Run: .venv/bin/python bench/bench_faults.py [--scenarios outage,hung,kill,rolling,flap,moves]
                                          [--outage S] [--freeze S]
It starts its own cluster from the jars (scripts/kafka-local, free loopback ports) and removes it at the end.

Figures, per scenario:
- connect/s/broker: `connect()` calls to each broker port per second while every broker is down (outage; the
  workload's clients are stopped first, so every call is lagwatch's), and lagwatch's CPU share meanwhile;
- freeze: the longest time between two HEAD rounds during the fault (a round normally ends every second);
- false: samples (every 0.1 s) in which the healthy group had a status other than OK although it had committed
  within its window's span (so a STOP was not real), or any status other than OK and STOP;
- recover: from the moment Kafka is whole again until lagwatch's windows hold a commit made after it, every
  partition is OK and the cluster is up.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exporter.core.model import Status
from exporter.runtime import ClusterRuntime
from tests.faults.harness import (
    ConnectCounter,
    RoundWatch,
    StatusWatch,
    Workload,
    eventually,
    leaders,
    new_topic,
    offsets_partition,
    offsets_topic_leaders,
    partition_statuses,
    running,
)
from tests.kafka_cluster import OFFSETS_PARTITIONS, LocalKafka, run_tool, unique_name

PARTITIONS = 6
SCENARIOS = ("outage", "hung", "kill", "rolling", "flap", "moves")


class Bench:
    def __init__(self, kafka: LocalKafka, runtime: ClusterRuntime, workload: Workload, topic: str) -> None:
        self.kafka = kafka
        self.runtime = runtime
        self.workload = workload
        self.topic = topic

    async def healthy(self, what: str, since: float | None = None, within: float = 180.0) -> float:
        """Seconds until every partition is OK, the cluster up and, after `since`, a commit made after it is
        in lagwatch's windows."""
        started = time.monotonic()
        target: list[int] | None = None

        def done() -> bool:
            nonlocal target
            if not self.runtime.head.health.up:
                return False
            if partition_statuses(self.runtime, self.workload.group) != [Status.OK] * PARTITIONS:
                return False
            if since is None:
                return True
            if target is None:
                made = [t for t in self.workload.committed_at if t > since]
                if not made:
                    return False
                target = self.workload.produced.copy()
            status = self.runtime.statuses()[self.workload.group]
            return all(p.end is not None and p.end.offset >= target[p.partition] for p in status.partitions)

        await eventually(done, what, within)
        return time.monotonic() - started

    async def measure(self, name: str, fault: Callable[[], Awaitable[float]]) -> dict[str, object]:
        """Runs `fault`, which returns when Kafka is whole again."""
        await self.healthy(f"{name}: the group OK before the fault", within=120)
        with RoundWatch(self.runtime) as rounds, StatusWatch(self.runtime, self.workload) as statuses:
            started = time.monotonic()
            whole = await fault()
            recover = await self.healthy(f"{name}: the group OK after the fault", whole)
            ended = time.monotonic()
        gaps = rounds.gaps(started, ended)
        return {
            "scenario": name,
            "freeze_s": round(max(gaps), 2),
            "false_samples": len(statuses.false),
            "false_first": [(round(t - started, 1), [s.name for s in st]) for t, st in statuses.false[:3]],
            "non_ok_samples": sum(n for s, n in statuses.seen.items() if s != Status.OK),
            "recover_s": round(recover, 1),
        }


async def outage(bench: Bench, seconds: float) -> dict[str, object]:
    await bench.healthy("outage: the group OK", within=120)
    await bench.workload.stop()
    ports = bench.kafka.broker_ports().values()
    with ConnectCounter(ports) as counter:
        # One node after the other, as an operator stops a cluster: the last one's metadata lists partitions
        # without a leader, which is what made aiokafka's consumer redial in a loop.
        for node in sorted(bench.kafka.broker_ports()):
            await asyncio.to_thread(bench.kafka.stop_node, node)
        await asyncio.to_thread(bench.kafka.stop)
        counter.counts.clear()
        cpu, started = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        elapsed = time.monotonic() - started
        attempts = dict(counter.counts)
        cpu_share = (time.process_time() - cpu) / elapsed
    await asyncio.to_thread(bench.kafka.start)
    whole = time.monotonic()
    bench.workload = Workload(bench.kafka.bootstrap, bench.topic, PARTITIONS, bench.workload.group)
    await bench.workload.start()
    recover = await bench.healthy("outage: recovered", whole)
    return {
        "scenario": "outage",
        "seconds": seconds,
        "connect_per_s_per_broker": [round(attempts.get(p, 0) / elapsed, 2) for p in ports],
        "cpu_share": round(cpu_share, 3),
        "recover_s": round(recover, 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--outage", type=float, default=30.0, help="seconds every broker stays down")
    parser.add_argument("--freeze", type=float, default=30.0, help="seconds a broker stays frozen")
    args = parser.parse_args()
    # As lagwatch does: aiokafka logs every failed reconnection (the workload's ones included) at ERROR.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    if os.environ.get("BENCH_DEBUG"):
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(message)s")
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    chosen = [s for s in args.scenarios.split(",") if s]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")

    state = Path(os.environ.get("LAGWATCH_KAFKA_HOME") or Path.home() / ".cache" / "lagwatch")
    kafka = LocalKafka(state / "run" / f"bench-faults-{os.getpid()}", nodes=3)
    await asyncio.to_thread(kafka.start)
    try:
        bootstrap = kafka.bootstrap
        prefix = unique_name("bench-faults")
        topic = f"{prefix}-topic"
        await new_topic(bootstrap, topic, PARTITIONS)
        group_leaders = await offsets_topic_leaders(bootstrap, topic, OFFSETS_PARTITIONS)
        group = f"{prefix}-group"
        workload = Workload(bootstrap, topic, PARTITIONS, group)
        await workload.start()
        async with running(bootstrap, prefix) as runtime:
            bench = Bench(kafka, runtime, workload, topic)
            await bench.healthy("the group OK at start", within=120)
            results = []
            for scenario in chosen:
                print(f"== {scenario} {time.strftime('%H:%M:%S')}", file=sys.stderr, flush=True)
                if scenario == "outage":
                    results.append(await outage(bench, args.outage))
                    print(json.dumps(results[-1]), file=sys.stderr, flush=True)
                    continue
                offsets_leader = group_leaders[offsets_partition(group, OFFSETS_PARTITIONS)]
                faults: dict[str, Callable[[], Awaitable[float]]] = {
                    "hung": functools.partial(hung, bench, args.freeze),
                    "kill": functools.partial(kill, bench, offsets_leader),
                    "rolling": functools.partial(rolling, bench),
                    "flap": functools.partial(flap, bench),
                    "moves": functools.partial(moves, bench),
                }
                results.append(await bench.measure(scenario, faults[scenario]))
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
                group_leaders = await leaders(bootstrap, "__consumer_offsets")
            await bench.workload.stop()
        for result in results:
            print(json.dumps(result))
    finally:
        await asyncio.to_thread(kafka.destroy)


async def hung(bench: Bench, seconds: float) -> float:
    # A full restart leaves every leader on the broker that came back first: spread them again, so that the
    # frozen broker leads some partitions, not all.
    await elect_preferred(bench.kafka.bootstrap)
    await asyncio.sleep(5)
    frozen = (await leaders(bench.kafka.bootstrap, bench.topic))[0]
    bench.kafka.signal_node(frozen, signal.SIGSTOP)
    try:
        await asyncio.sleep(seconds)
    finally:
        bench.kafka.signal_node(frozen, signal.SIGCONT)
    return time.monotonic()


async def kill(bench: Bench, node: int) -> float:
    bench.kafka.signal_node(node, signal.SIGKILL)
    await asyncio.sleep(20)
    await asyncio.to_thread(bench.kafka.start)
    return time.monotonic()


async def rolling(bench: Bench) -> float:
    for node in sorted(bench.kafka.broker_ports()):
        await asyncio.to_thread(bench.kafka.stop_node, node)
        await asyncio.sleep(5)
        await asyncio.to_thread(bench.kafka.start)
        await asyncio.sleep(5)
    return time.monotonic()


async def flap(bench: Bench) -> float:
    for _ in range(3):
        await asyncio.to_thread(bench.kafka.stop)
        await asyncio.sleep(5)
        await asyncio.to_thread(bench.kafka.start)
        await asyncio.sleep(10)
    return time.monotonic()


async def moves(bench: Bench) -> float:
    """Every partition of the topic and of __consumer_offsets gets a new preferred leader, elected at once."""
    bootstrap = bench.kafka.bootstrap
    nodes = sorted(bench.kafka.broker_ports())
    for _ in range(2):
        plan = []
        for topic in (bench.topic, "__consumer_offsets"):
            for partition, leader in (await leaders(bootstrap, topic)).items():
                following = nodes[(nodes.index(leader) + 1) % len(nodes)]
                replicas = [following, *[n for n in nodes if n != following]]
                plan.append({"topic": topic, "partition": partition, "replicas": replicas})
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump({"version": 1, "partitions": plan}, handle)
        try:
            done = await run_tool(
                "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
                "--bootstrap-server", bootstrap, "--reassignment-json-file", handle.name, "--execute",
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
        finally:
            os.unlink(handle.name)
        await elect_preferred(bootstrap)
        await asyncio.sleep(10)
    return time.monotonic()


async def elect_preferred(bootstrap: str) -> None:
    elected = await run_tool(
        "org.apache.kafka.tools.LeaderElectionCommand",
        "--bootstrap-server", bootstrap, "--election-type", "PREFERRED", "--all-topic-partitions",
    )  # fmt: skip
    assert elected.returncode == 0, elected.stderr


if __name__ == "__main__":
    asyncio.run(main())
