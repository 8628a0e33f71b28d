"""Where integration tests get their Kafka, and the few client chores they share.

`LAGWATCH_TEST_KAFKA` picks the broker:
- `auto` (the default): `KAFKA_BOOTSTRAP_SERVERS` if set; else the official `apache/kafka` image through
  testcontainers when a Docker engine answers; else the jars run by `scripts/kafka-local` on free loopback
  ports.
- `container`: the image through testcontainers, and a failure when no Docker engine answers.
- `jars`: the jars, even when a Docker engine answers.
Both started brokers can be stopped and started again by a test (`kafka_node`). The broker sees clients at
`Cluster.client_host`: 127.0.0.1 from the jars, the bridge network's gateway through a container's published
port.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import docker  # type: ignore[import-untyped]
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import LogMessageWaitStrategy

REPO = Path(__file__).resolve().parents[1]
KAFKA_LOCAL = REPO / "scripts" / "kafka-local"
KAFKA_VERSION = (REPO / "scripts" / "kafka-version").read_text().strip()
NODES = int(os.environ.get("LAGWATCH_TEST_KAFKA_NODES", "1"))
# Fewer than Kafka's 50 partitions of __consumer_offsets: the first group coordination creates them all.
OFFSETS_PARTITIONS = int(os.environ.get("LAGWATCH_TEST_OFFSETS_PARTITIONS", "4"))
MISSING_TOOLING = 2
"""kafka-local's exit code when Java 17+ or Maven is missing."""
MODES = ("auto", "container", "jars")
READY_LINE = "Kafka Server started"


class KafkaUnavailableError(Exception):
    """No Kafka can be had here; `missing_tooling` says whether installing Java or Maven would fix it."""

    def __init__(self, message: str, missing_tooling: bool) -> None:
        super().__init__(message)
        self.missing_tooling = missing_tooling


@dataclass(frozen=True)
class ToolResult:
    returncode: int
    stdout: str
    stderr: str


Produce = Callable[[str, Sequence[int] | Mapping[int, int]], Awaitable[None]]
"""The `produce` fixture: `await produce(topic, [3, 5, 7])` or `await produce(topic, {1: 2})`."""
NewTopicFactory = Callable[..., Awaitable[str]]
"""The `new_topic` fixture: `await new_topic(partitions=1, replication_factor=1)` returns the topic's name."""
KafkaTool = Callable[..., Awaitable[ToolResult]]
"""The `kafka_tool` fixture: `await kafka_tool(main_class, *args, time_limit=60.0)`."""


class LocalKafka:
    """A cluster run by scripts/kafka-local in its own state dir; stop() keeps the data for start()."""

    client_host = "/127.0.0.1"

    def __init__(self, state_dir: Path, nodes: int = NODES, options: Sequence[str] = ()) -> None:
        self.state_dir = state_dir
        self.nodes = nodes
        self.options = tuple(options)
        """More `kafka-local start` options, e.g. `--tls-dir` and `--scram` for the secure listeners."""
        self.bootstrap = ""
        self.running = False

    def _run(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, str(KAFKA_LOCAL), *args, "--state-dir", str(self.state_dir)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise KafkaUnavailableError(
                f"kafka-local {args[0]} failed (exit {done.returncode}): {done.stderr.strip()}",
                missing_tooling=done.returncode == MISSING_TOOLING,
            )
        return done.stdout.strip()

    def start(self) -> str:
        """Start (or resume, with its data) the cluster; returns the bootstrap servers."""
        self.bootstrap = self._run(
            "start",
            "--nodes",
            str(self.nodes),
            "--base-port",
            "0",
            "--offsets-partitions",
            str(OFFSETS_PARTITIONS),
            *self.options,
        )
        self.running = True
        return self.bootstrap

    def stop(self) -> None:
        self._run("stop")
        self.running = False

    def destroy(self) -> None:
        self._run("stop", "--purge")
        self.running = False

    def stop_node(self, node_id: int) -> None:
        """Stop one node (SIGTERM, a controlled shutdown); start() brings it back."""
        self._run("stop", "--node", str(node_id))

    def broker_ports(self, listener: str = "broker") -> dict[int, int]:
        """Node id -> port of the PLAINTEXT listener, or of `sasl_ssl` or `ssl` (with `--tls-dir`)."""
        cluster = json.loads((self.state_dir / "cluster.json").read_text())
        return {node["id"]: node[listener] for node in cluster["nodes"]}

    def listener_bootstrap(self, listener: str) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.broker_ports(listener).values())

    def signal_node(self, node_id: int, signum: signal.Signals) -> None:
        """Send a signal to one node's JVM: SIGSTOP freezes it, SIGCONT resumes it, SIGKILL kills it."""
        pid = int((self.state_dir / f"node-{node_id}" / "kafka.pid").read_text())
        os.kill(pid, signum)


def local_state_dir() -> Path:
    """A state dir beside those of scripts/kafka-local, so that `kafka-local stop --all` finds leftovers."""
    home = Path(os.environ.get("LAGWATCH_KAFKA_HOME") or Path.home() / ".cache" / "lagwatch")
    return home / "run" / f"pytest-{os.getpid()}"


def kafka_mode() -> str:
    mode = os.environ.get("LAGWATCH_TEST_KAFKA", "auto")
    if mode not in MODES:
        raise KafkaUnavailableError(
            f"LAGWATCH_TEST_KAFKA={mode!r}: expected one of {', '.join(MODES)}", missing_tooling=False
        )
    return mode


def docker_answers() -> bool:
    try:
        docker.from_env(timeout=3).ping()
    except (docker.errors.DockerException, OSError):  # requests' errors are OSErrors
        return False
    return True


class ContainerKafka:
    """The apache/kafka image as a single KRaft node through testcontainers, its port published on loopback;
    stop() keeps the container (and its data) for start()."""

    def __init__(self) -> None:
        self.bootstrap = ""
        self.client_host = ""
        self.running = False
        self._container: DockerContainer | None = None

    def start(self) -> str:
        if self._container is None:
            self._container = self._create()
        else:
            wrapped = self._container.get_wrapped_container()
            seen = self._logs().count(READY_LINE)
            wrapped.start()
            deadline = time.monotonic() + 120
            while self._logs().count(READY_LINE) == seen:
                wrapped.reload()
                if wrapped.status != "running" or time.monotonic() > deadline:
                    raise KafkaUnavailableError(
                        f"the Kafka container did not come back ({wrapped.status})", missing_tooling=False
                    )
                time.sleep(0.2)
        self.running = True
        return self.bootstrap

    def stop(self) -> None:
        if self._container is not None:
            self._container.get_wrapped_container().stop(timeout=30)
        self.running = False

    def destroy(self) -> None:
        if self._container is not None:
            self._container.stop()
        self.running = False

    def _logs(self) -> str:
        assert self._container is not None
        return bytes(self._container.get_wrapped_container().logs()).decode(errors="replace")

    def _create(self) -> DockerContainer:
        if not docker_answers():
            raise KafkaUnavailableError(
                "LAGWATCH_TEST_KAFKA=container but no Docker engine answers (DOCKER_HOST="
                f"{os.environ.get('DOCKER_HOST', 'unset')})",
                missing_tooling=False,
            )
        settings = subprocess.run(
            [sys.executable, str(KAFKA_LOCAL), "settings", "--offsets-partitions", str(OFFSETS_PARTITIONS)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        port = _free_port()
        container = DockerContainer(f"apache/kafka:{KAFKA_VERSION}")
        # Published on loopback only; with_bind_ports takes no host address, docker-py's ports mapping does.
        container.ports["9092"] = ("127.0.0.1", port)
        env = {
            "node.id": "1",
            "process.roles": "broker,controller",
            "controller.quorum.voters": "1@localhost:9093",
            "listeners": "PLAINTEXT://0.0.0.0:9092,BROKER://0.0.0.0:9094,CONTROLLER://0.0.0.0:9093",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port},BROKER://localhost:9094",
            "inter.broker.listener.name": "BROKER",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT",
            **dict(line.split("=", 1) for line in settings),
        }
        for key, value in env.items():
            # The image turns KAFKA_FOO_BAR into foo.bar; a literal underscore is written as a double one.
            container = container.with_env("KAFKA_" + key.replace("_", "__").replace(".", "_").upper(), value)
        container = container.waiting_for(LogMessageWaitStrategy(READY_LINE))
        container.start()
        self.bootstrap = f"127.0.0.1:{port}"
        # Through the published port the broker sees connections from the bridge network's gateway.
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        self.client_host = "/" + wrapped.attrs["NetworkSettings"]["Gateway"]
        return container


Broker = LocalKafka | ContainerKafka


class KafkaNode:
    """What a test gets to take the broker down and bring it back. The calls run in a thread so that
    whatever the test runs on the event loop (an exporter, say) keeps running meanwhile."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    async def stop(self) -> None:
        await asyncio.to_thread(self._broker.stop)

    async def start(self) -> str:
        """Start it again with the same data and ports; returns the (unchanged) bootstrap servers."""
        return await asyncio.to_thread(self._broker.start)


@dataclass(frozen=True)
class Cluster:
    """The session's Kafka: its bootstrap servers, the address the broker sees its clients at (with the slash
    Kafka puts in front of it), and the broker when the fixture started it."""

    bootstrap: str
    client_host: str
    broker: Broker | None = None

    def restore(self) -> None:
        """Bring a broker that a test stopped back up."""
        if self.broker is not None and not self.broker.running:
            self.broker.start()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def create_topic(
    admin: AIOKafkaAdminClient, name: str, partitions: int, replication_factor: int
) -> None:
    """Create a topic and wait until every partition has a leader, so the first produce cannot miss it."""
    response = await admin.create_topics([NewTopic(name, partitions, replication_factor)])
    for topic, code, message in response.topic_errors:
        if code != 0:
            raise RuntimeError(f"creating topic {topic} failed: error {code} {message}")
    for _ in range(100):
        (described,) = await admin.describe_topics([name])
        leaders = [p["leader"] for p in described["partitions"]]
        if described["error_code"] == 0 and len(leaders) == partitions and min(leaders) >= 0:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"topic {name} has no leader for every partition after 10 s")


async def produce_records(bootstrap: str, topic: str, counts: Sequence[int] | Mapping[int, int]) -> None:
    """Write exactly counts[p] records to each partition p, acknowledged by all in-sync replicas."""
    per_partition = counts if isinstance(counts, Mapping) else dict(enumerate(counts))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        sent = [
            await producer.send(topic, value=f"{partition}:{i}".encode(), partition=partition)
            for partition, count in per_partition.items()
            for i in range(count)
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def run_tool(main_class: str, *args: str, time_limit: float = 60.0) -> ToolResult:
    """Run a Kafka CLI class (or a kafka-local short name, e.g. `consumer-groups`) from the broker's jars."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(KAFKA_LOCAL),
        "tool",
        main_class,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), time_limit)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return ToolResult(process.returncode, stdout.decode(), stderr.decode())
