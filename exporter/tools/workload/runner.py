"""The workload: the topics, producer and consumers of the selected scenarios (`Workload`), run until
cancelled, a duration passed or a task failed (`run_scenarios`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Mapping

from aiokafka import AIOKafkaClient, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.protocol.admin import ApiVersionRequest

from exporter.tools.workload.consumers import (
    KEEPALIVE_S,
    ConsoleConsumer,
    Consumer,
    Runner,
    console_consumer_command,
)
from exporter.tools.workload.scenarios import (
    CONSUMER_PROTOCOL,
    PARTITIONS,
    ScenarioState,
    WorkloadConfig,
    replication_factor,
)

__all__ = ["Workload", "run_scenarios"]

# One logger for the whole workload, under the name it always had.
log = logging.getLogger(__package__)

_PRODUCE_TICK_S = 0.1
_STOP_TIMEOUT_S = 5.0
_KIP848_HEARTBEAT_API = 68
"""ConsumerGroupHeartbeat: a broker that advertises it runs the KIP-848 group protocol."""


class Workload:
    """The topics, producer and consumers of the selected scenarios: `async with Workload(config) as w`."""

    def __init__(self, config: WorkloadConfig) -> None:
        self.config = config
        self._states = {
            name: ScenarioState(name, f"{config.prefix}-{name}", f"{config.prefix}-{name}", PARTITIONS[name])
            for name in config.scenarios
        }
        self._servers = ",".join(config.bootstrap_servers)
        self._producer: AIOKafkaProducer | None = None
        self._producers: list[asyncio.Task[None]] = []
        self._consumers: dict[str, Runner] = {}
        self._topics_ready = False

    async def __aenter__(self) -> Workload:
        try:
            await self.start()
        except BaseException:
            # What did start (the console consumer is a process of its own) must not outlive a failed start.
            await self.stop()
            raise
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    def state(self, scenario: str) -> ScenarioState:
        return self._states[scenario]

    @property
    def states(self) -> Mapping[str, ScenarioState]:
        return self._states

    async def start(self) -> None:
        """Create the missing topics (unless `create_topics` did), then start the producer and consumers."""
        if not self._topics_ready:
            await self.create_topics()
        protocol = self._states.get(CONSUMER_PROTOCOL)
        if protocol is not None:
            protocol.unavailable = await self._kip848_unavailable()
            if protocol.unavailable:
                log.warning("%s: skipped: %s", CONSUMER_PROTOCOL, protocol.unavailable)
        producer = AIOKafkaProducer(
            bootstrap_servers=self._servers, client_id=f"{self.config.prefix}-producer", linger_ms=5
        )
        await producer.start()
        self._producer = producer
        for state in self._states.values():
            if not state.unavailable:
                self._producers.append(
                    asyncio.create_task(self._produce(producer, state), name=f"produce-{state.name}")
                )
                await self.start_consumer(state.name, behaviour=state.name)

    async def stop(self) -> None:
        """Stop every consumer (they leave their groups), then the producer (it flushes), within
        `_STOP_TIMEOUT_S`: while Kafka is down each of them would wait out its request timeouts, and the
        workload would not honour SIGTERM for half a minute. Past the deadline they are abandoned."""
        runners = list(self._consumers.values())
        self._consumers.clear()
        for task in self._producers:
            task.cancel()
        producers, self._producers = self._producers, []
        producer, self._producer = self._producer, None
        try:
            async with asyncio.timeout(_STOP_TIMEOUT_S):
                for runner in runners:
                    await runner.stop()
                await asyncio.gather(*producers, return_exceptions=True)
                if producer is not None:
                    await producer.stop()
        except TimeoutError:
            log.warning(
                "Kafka did not answer within %g s: stopped without leaving the groups or flushing",
                _STOP_TIMEOUT_S,
            )
            for runner in runners:
                runner.kill()

    async def start_consumer(self, scenario: str, behaviour: str = "healthy") -> None:
        """(Re)start the consumer of `scenario`, committing like `behaviour`: by default a restarted consumer
        keeps up, as if the fix had been deployed."""
        state = self._states[scenario]
        if state.unavailable:
            raise RuntimeError(f"{scenario} is unavailable: {state.unavailable}")
        if state.running:
            raise RuntimeError(f"the consumer of {scenario} is already running")
        # A consumer that stopped by plan (stopped) is still registered: clean it up first.
        await self.stop_consumer(scenario)
        runner: Runner
        if scenario == CONSUMER_PROTOCOL:
            runner = ConsoleConsumer(state, self._servers, self.config)
        else:
            runner = Consumer(state, self._servers, self.config, behaviour)
        await runner.start()
        self._consumers[scenario] = runner

    async def stop_consumer(self, scenario: str) -> None:
        """Stop the consumer of `scenario`; it leaves the group and its producer goes on."""
        runner = self._consumers.pop(scenario, None)
        if runner is not None:
            await runner.stop()

    def raise_for_failures(self) -> None:
        """Raise what made a producer or consumer task fail, if one did."""
        tasks = [*self._producers, *(r.task for r in self._consumers.values() if r.task is not None)]
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise RuntimeError(f"{task.get_name()} failed") from task.exception()

    async def wait(self) -> None:
        """Return when a task fails (raising its error); never returns otherwise."""
        while True:
            self.raise_for_failures()
            await asyncio.sleep(KEEPALIVE_S)

    async def create_topics(self) -> None:
        """Create the topics that are missing. A separate step for callers that want a lag monitor to know
        the topics before the first commit: Burrow drops commits to topics it has no HEAD offset for yet, and
        lagwatch stores those that arrive before it knows the HEAD without a lag."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self._servers, client_id=f"{self.config.prefix}-admin")
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            missing = [s for s in self._states.values() if s.topic not in existing]
            if missing:
                replicas = replication_factor(len((await admin.describe_cluster())["brokers"]))
                response = await admin.create_topics(
                    [NewTopic(s.topic, s.partitions, replicas) for s in missing]
                )
                for topic, code, message in response.topic_errors:
                    if code not in (0, TopicAlreadyExistsError.errno):
                        raise KafkaError(f"creating topic {topic} failed: error {code} {message}")
            for state in self._states.values():
                state.partitions = await _wait_for_leaders(admin, state.topic)
        finally:
            await admin.close()
        self._topics_ready = True

    async def _kip848_unavailable(self) -> str:
        """Why consumer-protocol cannot run here; empty when it can."""
        client = AIOKafkaClient(bootstrap_servers=self._servers, client_id=f"{self.config.prefix}-admin")
        await client.bootstrap()
        try:
            response = await client.send(client.get_random_node(), ApiVersionRequest())
        finally:
            await client.close()
        if _KIP848_HEARTBEAT_API not in {key for key, _, _ in response.api_versions}:
            return "the broker does not offer the KIP-848 consumer group protocol (Kafka 4.0+)"
        if not (self.config.console_consumer or console_consumer_command()):
            return "no Kafka console consumer found; give one with --console-consumer"
        return ""

    async def _produce(self, producer: AIOKafkaProducer, state: ScenarioState) -> None:
        """Write `rate` records per second to every partition, in small steady batches."""
        started = time.monotonic()
        sent = 0
        failure = ""
        while True:
            due = math.floor((time.monotonic() - started) * self.config.rate) - sent
            try:
                futures = [
                    await producer.send(state.topic, f"{state.name}:{sent + i}".encode(), partition=p)
                    for i in range(due)
                    for p in range(state.partitions)
                ]
                await asyncio.gather(*futures)
                failure = ""
            except KafkaError as error:
                # Demos outlive broker restarts: report the trouble once and keep the schedule.
                if str(error) != failure:
                    log.warning("%s: producing failed: %s", state.name, error)
                failure = str(error)
            sent += due
            await asyncio.sleep(_PRODUCE_TICK_S)


async def _wait_for_leaders(admin: AIOKafkaAdminClient, topic: str) -> int:
    """Wait until every partition of `topic` has a leader; returns the partition count."""
    for _ in range(100):
        (described,) = await admin.describe_topics([topic])
        leaders = [p["leader"] for p in described["partitions"]]
        if described["error_code"] == 0 and leaders and min(leaders) >= 0:
            return len(leaders)
        await asyncio.sleep(0.1)
    raise KafkaError(f"topic {topic} has no leader for every partition after 10 s")


async def run_scenarios(config: WorkloadConfig, duration: float | None = None) -> None:
    """Run the workload until cancelled, until `duration` seconds passed, or until a task fails (raised)."""
    async with Workload(config) as workload:
        names = ", ".join(s.topic for s in workload.states.values() if not s.unavailable)
        log.info("workload running: %s (commit every %gs)", names, config.commit_interval)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(duration):
                await workload.wait()
