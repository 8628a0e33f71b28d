"""Time to first status after a start (issue #11 section 2), on a real Kafka.

lagwatch is started as a process (`python -m exporter`) and its HTTP API polled every 10 ms. Printed per run:
the first HTTP answer (the process is up), `/-/ready` 200, and the groups `/v3/kafka/local/consumer` lists at
that instant, each of which has a status (the lists show only evaluated groups). Statuses are published for
every group at once, by the first evaluation, so "ready" is also the time to the first status.

Scenarios:

* `demo`: the demo workload (`lagwatch demo workload`, every status) runs for `--warmup` seconds, then
  lagwatch starts beside it, reads `__consumer_offsets` from its start and evaluates.
* `restart`: 10,000 groups x 10 partitions (100,000 group-partitions) with `--rounds` commits each, as a
  restarted lagwatch finds them. Kafka refuses writes to `__consumer_offsets`, so the records (the same
  bytes Kafka writes, from the unit tests' encoder) go to a topic of the benchmark's own, which lagwatch
  reads as its `offsets_topic`; the groups consume 100 real topics of 10 partitions, so HEAD offsets and
  metadata are real. A first lagwatch runs until ready and stops (its HEAD history saved in the state
  directory), then the restarted one is timed, `--runs` times.

    .venv/bin/python bench/bench_startup.py --kafka 127.0.0.1:9092 [demo|restart|both] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import logging
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))

import offsets_encoder as enc
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

REPO = Path(__file__).resolve().parents[1]
GROUPS = 10_000
PARTITIONS = 10
TOPICS = 100
POLL_S = 0.01
DEADLINE_S = 600.0


@dataclass
class Run:
    http_s: float
    ready_s: float
    groups: int


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _start_lagwatch(
    bootstrap: str, state_dir: Path, port: int, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LAGWATCH_")}
    environment.update(env)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter",
            "--bootstrap-servers",
            bootstrap,
            "--http.listen",
            f"127.0.0.1:{port}",
            "--lag-seconds.state-dir",
            str(state_dir),
            "--log-level",
            "warning",
        ],
        env=environment,
        cwd=REPO,
    )


def _time_start(bootstrap: str, state_dir: Path, env: dict[str, str], expected: int | None) -> Run:
    """Start lagwatch, poll until ready, stop it (SIGTERM: the HEAD history is saved)."""
    port = _free_port()
    started = time.perf_counter()
    process = _start_lagwatch(bootstrap, state_dir, port, env)
    http_s = None
    try:
        while True:
            elapsed = time.perf_counter() - started
            if elapsed > DEADLINE_S or process.poll() is not None:
                raise RuntimeError(f"lagwatch not ready after {elapsed:.1f} s (exit {process.poll()})")
            try:
                code, _ = _get(port, "/-/ready")
            except OSError:
                time.sleep(POLL_S)
                continue
            if http_s is None:
                http_s = elapsed
            if code == 200:
                ready_s = time.perf_counter() - started
                break
            time.sleep(POLL_S)
        _, body = _get(port, "/v3/kafka/local/consumer")
        listed = json.loads(body)["consumers"]
        if expected is not None and len(listed) != expected:
            raise RuntimeError(f"{len(listed)} groups listed at ready, {expected} expected")
        return Run(http_s, ready_s, len(listed))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def _report(label: str, runs: list[Run]) -> None:
    for number, run in enumerate(runs, 1):
        print(
            f"{label} run {number}: HTTP up {run.http_s:.2f} s, ready with statuses {run.ready_s:.2f} s "
            f"({run.ready_s - run.http_s:.2f} s after the first HTTP answer), {run.groups:,} groups"
        )
    ready = statistics.median(r.ready_s for r in runs)
    after_http = statistics.median(r.ready_s - r.http_s for r in runs)
    print(f"{label}: median {ready:.2f} s to ready with every status ({after_http:.2f} s after HTTP up)")


def demo(bootstrap: str, warmup: float, runs: int) -> None:
    prefix = f"bench-startup-{time.time_ns() % 10**8}"
    command = [sys.executable, "-m", "exporter", "--bootstrap-servers", bootstrap, "demo", "workload"]
    workload = subprocess.Popen(
        [*command, "--prefix", prefix, "--commit-interval", "2"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        print(f"demo workload {prefix} warming up for {warmup:.0f} s")
        time.sleep(warmup)
        with tempfile.TemporaryDirectory() as state:
            env = {"LAGWATCH_FILTERS__GROUP_ALLOW": f"^{prefix}"}
            results = [_time_start(bootstrap, Path(state), env, None) for _ in range(runs)]
        _report("demo", results)
    finally:
        workload.send_signal(signal.SIGTERM)
        workload.wait(timeout=60)


async def _write_restart_data(bootstrap: str, offsets_topic: str, topics: list[str], rounds: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics])
        await admin.create_topics([NewTopic(offsets_topic, 4, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, max_batch_size=1 << 20)
    await producer.start()
    try:
        for topic in topics:
            for partition in range(PARTITIONS):
                await producer.send(topic, b"x" * 10, partition=partition)
        now_ms = int(time.time() * 1000)
        for round_ in range(rounds):
            for g in range(GROUPS):
                group = f"{offsets_topic}-g{g:05d}"
                topic = topics[g % TOPICS]
                for partition in range(PARTITIONS):
                    key = enc.offset_commit_key(group, topic, partition)
                    value = enc.offset_commit_value(
                        4, offset=round_, metadata="", commit_timestamp=now_ms - 5_000 * (rounds - round_)
                    )
                    # One group's records in one partition, as Kafka keeps them.
                    await producer.send(offsets_topic, value=value, key=key, partition=g % 4)
        await producer.flush()
    finally:
        await producer.stop()


async def _delete(bootstrap: str, topics: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(topics)
    finally:
        await admin.close()


def restart(bootstrap: str, rounds: int, runs: int) -> None:
    name = f"bench-restart-{time.time_ns() % 10**8}"
    topics = [f"{name}-t{t:03d}" for t in range(TOPICS)]
    offsets_topic = f"{name}-offsets"
    written = time.perf_counter()
    asyncio.run(_write_restart_data(bootstrap, offsets_topic, topics, rounds))
    print(
        f"restart: {GROUPS:,} groups x {PARTITIONS} partitions x {rounds} commits "
        f"({GROUPS * PARTITIONS * rounds:,} records) written in {time.perf_counter() - written:.0f} s"
    )
    env = {
        "LAGWATCH_CLUSTERS__LOCAL__OFFSETS_TOPIC": offsets_topic,
        "LAGWATCH_FILTERS__TOPIC_ALLOW": f"^{name}-t",
        "LAGWATCH_FILTERS__GROUP_ALLOW": f"^{offsets_topic}-g",
    }
    try:
        with tempfile.TemporaryDirectory() as state:
            first = _time_start(bootstrap, Path(state), env, GROUPS)
            _report("restart (first start, no HEAD history)", [first])
            _report("restart", [_time_start(bootstrap, Path(state), env, GROUPS) for _ in range(runs)])
    finally:
        asyncio.run(_delete(bootstrap, [*topics, offsets_topic]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenario", nargs="?", choices=("demo", "restart", "both"), default="both")
    parser.add_argument("--kafka", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=40.0, help="seconds of demo workload before start")
    parser.add_argument("--rounds", type=int, default=3, help="commits per group-partition (restart)")
    args = parser.parse_args()
    # A broker creating 100 topics answers NOT_LEADER for a while; the producer retries, quietly.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, Kafka at {args.kafka}")
    if args.scenario in ("demo", "both"):
        demo(args.kafka, args.warmup, args.runs)
    if args.scenario in ("restart", "both"):
        restart(args.kafka, args.rounds, args.runs)


if __name__ == "__main__":
    main()
