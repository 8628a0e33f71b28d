"""The scenarios' consumers: an aiokafka group member committing the offsets `planned_offset` gives, and
Kafka's console consumer in the KIP-848 protocol (consumer-protocol), each run as one task."""

from __future__ import annotations

import asyncio
import logging
import math
import shutil
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from exporter.tools.workload.scenarios import ScenarioState, WorkloadConfig, planned_offset, slow_quota

__all__ = ["KEEPALIVE_S", "ConsoleConsumer", "Consumer", "Runner", "console_consumer_command"]

# One logger for the whole workload, under the name it always had.
log = logging.getLogger(__package__)

KEEPALIVE_S = 1.0
_STDERR_LINES = 20
_REPO_KAFKA_LOCAL = Path(__file__).resolve().parents[3] / "scripts" / "kafka-local"


class Runner(Protocol):
    """A scenario's consumer, run as one task."""

    task: asyncio.Task[None] | None

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def kill(self) -> None:
        """Stop at once, without a word to Kafka (when `stop` takes too long)."""
        ...


class _PauseAll(ConsumerRebalanceListener):  # type: ignore[misc]
    """Assigned partitions start paused: a partition is fetched only while the plan says to consume it."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._consumer.pause(*assigned)


class Consumer:
    """An aiokafka group member committing the offsets `planned_offset` gives, once per commit interval."""

    def __init__(self, state: ScenarioState, servers: str, config: WorkloadConfig, behaviour: str) -> None:
        self._state = state
        self._config = config
        self._behaviour = behaviour
        self._quota = slow_quota(config.rate, config.commit_interval)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=servers,
            group_id=state.group,
            client_id=state.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
        )
        self._stopping = False
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._consumer.subscribe([self._state.topic], listener=_PauseAll(self._consumer))
        self._state.running = True
        self._state.commits = 0
        self.task = asyncio.create_task(self._run(), name=f"consume-{self._state.name}")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            # A task that failed already told Workload.raise_for_failures; stopping must not raise it again.
            await asyncio.gather(self.task, return_exceptions=True)
        await self._close()

    def kill(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self._state.running = False

    async def _close(self) -> None:
        if not self._stopping:
            self._stopping = True
            await self._consumer.stop()
            self._state.running = False

    async def _run(self) -> None:
        interval = self._config.commit_interval
        next_tick = time.monotonic() + interval
        while True:
            # Polling keeps the member alive while every partition is paused (max.poll.interval.ms).
            while (wait := next_tick - time.monotonic()) > 0:
                await self._consumer.getmany(timeout_ms=int(min(wait, KEEPALIVE_S) * 1000))
            next_tick += interval * max(1, math.ceil((time.monotonic() - next_tick) / interval))
            try:
                if not await self._tick(next_tick):
                    await self._close()
                    log.info("%s: consumer stopped after %d commits", self._state.name, self._state.commits)
                    return
            except KafkaError as error:
                # Rebalances and broker restarts fail a commit now and then; the next tick tries again.
                log.warning("%s: commit skipped: %s", self._state.name, error)

    async def _tick(self, deadline: float) -> bool:
        """Consume, seek and commit as planned for this tick; False when the plan says to stop."""
        consumer = self._consumer
        assigned = sorted(p for p in consumer.assignment() if p.topic == self._state.topic)
        if not assigned:
            return True
        ends = await consumer.end_offsets(assigned)
        offsets: dict[TopicPartition, int] = {}
        for tp in assigned:
            position = await consumer.position(tp)
            target = planned_offset(
                self._behaviour,
                self._state.commits,
                end=ends[tp],
                previous=self._state.committed.get(tp.partition, position),
                phase=self._config.phase,
                quota=self._quota,
            )
            if target is None:
                return False
            if target < position:
                consumer.seek(tp, target)
                self._state.rewound_to[tp.partition] = target
                log.info(
                    "%s: partition %d rewound from %d to %d", self._state.name, tp.partition, position, target
                )
            elif target > position:
                await self._consume(tp, target, deadline)
            offsets[tp] = await consumer.position(tp)
        await consumer.commit(offsets)
        self._state.committed.update({tp.partition: offset for tp, offset in offsets.items()})
        self._state.commits += 1
        return True

    async def _consume(self, tp: TopicPartition, target: int, deadline: float) -> None:
        """Read records of `tp` up to (not beyond) `target`, giving up at `deadline`."""
        consumer = self._consumer
        consumer.resume(tp)
        try:
            while (position := await consumer.position(tp)) < target and time.monotonic() < deadline:
                await consumer.getmany(tp, timeout_ms=100, max_records=target - position)
        finally:
            consumer.pause(tp)


class ConsoleConsumer:
    """Kafka's console consumer in the KIP-848 protocol, auto-committing every commit interval."""

    def __init__(self, state: ScenarioState, servers: str, config: WorkloadConfig) -> None:
        self._state = state
        command = config.console_consumer or console_consumer_command()
        interval_ms = max(1, round(config.commit_interval * 1000))
        self._command = [
            *command,
            *("--bootstrap-server", servers, "--topic", state.topic, "--group", state.group),
            "--from-beginning",
            *("--consumer-property", "group.protocol=consumer"),
            *("--consumer-property", f"client.id={state.group}"),
            *("--consumer-property", "enable.auto.commit=true"),
            *("--consumer-property", f"auto.commit.interval.ms={interval_ms}"),
        ]
        self._process: asyncio.subprocess.Process | None = None
        self._stderr: deque[str] = deque(maxlen=_STDERR_LINES)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            *self._command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._state.running = True
        self.task = asyncio.create_task(self._watch(self._process), name=f"consume-{self._state.name}")

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            # SIGTERM runs the consumer's shutdown hook: it commits and leaves the group.
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)
        self._state.running = False

    def kill(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.kill()
        if self.task is not None:
            self.task.cancel()
        self._state.running = False

    async def _watch(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        async for line in process.stderr:
            text = line.decode(errors="replace").rstrip()
            log.debug("%s: %s", self._state.name, text)
            self._stderr.append(text)
        code = await process.wait()
        if self._process is process:
            raise RuntimeError(
                f"the console consumer exited with code {code}: " + " | ".join(self._stderr)[-2000:]
            )


def console_consumer_command() -> tuple[str, ...]:
    """A command that runs Kafka's console consumer: from PATH, else this checkout's scripts/kafka-local."""
    for name in ("kafka-console-consumer.sh", "kafka-console-consumer"):
        found = shutil.which(name)
        if found:
            return (found,)
    if _REPO_KAFKA_LOCAL.is_file():
        return (sys.executable, str(_REPO_KAFKA_LOCAL), "tool", "console-consumer")
    return ()
