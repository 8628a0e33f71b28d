"""`lagwatch demo workload`: producers and consumer groups that behave in named ways, for demos and tests.

Each scenario owns a topic and a consumer group, both named `<prefix>-<scenario>`. A producer writes to every
partition of the topic at a steady rate; the group's consumer commits explicit offsets once per commit
interval, chosen by `planned_offset` so that Burrow's rules give the scenario's status (docs/workload.md):

    healthy            consumes everything, commits the end offset           OK
    slow               consumes a quarter of what is produced                WARN
    stalled            consumes once, then commits that same offset forever  STALL (group ERR)
    stopped            commits like healthy for `phase` commits, then leaves STOP (group ERR)
    rewound            cycles: `phase` healthy commits, a rewind to half the  REWIND during the hold
                       offset, then `phase - 2` commits holding it
    consumer-protocol  Kafka's console consumer with group.protocol=consumer  OK (KIP-848 group)

`planned_offset` is pure and unit-tested against the evaluator; the rest is the asyncio shell around aiokafka.
Only PLAINTEXT listeners are supported: this drives test and demo clusters, not production ones.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import shlex
import shutil
import signal
import sys
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aiokafka import AIOKafkaClient, AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.protocol.admin import ApiVersionRequest

__all__ = [
    "CONSUMER_PROTOCOL",
    "PARTITIONS",
    "SCENARIOS",
    "ScenarioState",
    "Workload",
    "WorkloadConfig",
    "add_arguments",
    "console_consumer_command",
    "main",
    "planned_offset",
    "replication_factor",
    "run_scenarios",
    "run_workload",
    "slow_quota",
]

log = logging.getLogger(__name__)

CONSUMER_PROTOCOL = "consumer-protocol"
SCENARIOS = ("healthy", "slow", "stalled", "stopped", "rewound", CONSUMER_PROTOCOL)
PARTITIONS: Mapping[str, int] = {
    "healthy": 3,
    "slow": 2,
    "stalled": 1,
    "stopped": 1,
    "rewound": 1,
    CONSUMER_PROTOCOL: 2,
}
"""Partitions of each scenario's topic when the workload creates it."""

SLOW_SHARE = 4
"""The slow consumer takes 1/SLOW_SHARE of what is produced. Its lag must grow at every commit even when
lagwatch's HEAD offset is one refresh old; a quarter leaves a wide margin where a half would leave none."""

_PROG = "lagwatch demo workload"
_DEFAULT_PREFIX = "lagwatch-demo"
_PRODUCE_TICK_S = 0.1
_KEEPALIVE_S = 1.0
_STOP_TIMEOUT_S = 5.0
_KIP848_HEARTBEAT_API = 68
"""ConsumerGroupHeartbeat: a broker that advertises it runs the KIP-848 group protocol."""
_STDERR_LINES = 20
_REPO_KAFKA_LOCAL = Path(__file__).resolve().parents[1] / "scripts" / "kafka-local"


# ------------------------------------------------------------------------------------------------------------
# The pure part: which offset a scenario commits at each tick.


def replication_factor(brokers: int) -> int:
    """Replicas of the workload's topics: three, as in production, where the cluster has that many brokers."""
    return max(1, min(3, brokers))


def slow_quota(rate: float, commit_interval: float) -> int:
    """Records the slow consumer takes per partition and commit interval: at least one."""
    return max(1, math.floor(rate * commit_interval / SLOW_SHARE))


def planned_offset(
    scenario: str, tick: int, *, end: int, previous: int, phase: int, quota: int
) -> int | None:
    """The offset `scenario` commits for one partition at its `tick`-th commit (from 0); None to stop.

    Args:
        scenario: a name from SCENARIOS other than consumer-protocol (an external consumer commits for it).
        tick: how many commits this consumer made before.
        end: the partition's end offset now.
        previous: the offset committed at the previous tick (the consumer's start position at tick 0).
        phase: commits per phase of the stopped and rewound scenarios; matches lagwatch's window when it is
            set to `storage.intervals`.
        quota: records the slow consumer takes per tick (`slow_quota`).
    """
    if scenario == "healthy":
        return end
    if scenario == "slow":
        return min(end, previous + quota)
    if scenario == "stalled":
        return end if tick == 0 else previous
    if scenario == "stopped":
        return end if tick < phase else None
    if scenario == "rewound":
        # Burrow looks only at the first rewind in the window and forgets it once an offset at or above the
        # one before it comes back, so the rewound offset is held until the pre-rewind commit leaves a window
        # of `phase` commits; then the consumer catches up again and the cycle restarts.
        step = tick % (2 * phase - 1)
        if step < phase:
            return end
        return previous // 2 if step == phase else previous
    raise ValueError(f"no commit plan for scenario {scenario!r}")


# ------------------------------------------------------------------------------------------------------------
# The shell.


@dataclass(frozen=True, slots=True)
class WorkloadConfig:
    """What to run and how fast; invalid values raise ValueError."""

    bootstrap_servers: tuple[str, ...]
    scenarios: tuple[str, ...] = SCENARIOS
    prefix: str = _DEFAULT_PREFIX
    commit_interval: float = 5.0
    """Seconds between two commits of a group (also the console consumer's auto-commit interval)."""
    rate: float = 10.0
    """Records produced per second to each partition."""
    phase: int = 10
    """Commits per phase of the stopped and rewound scenarios; set it to lagwatch's `storage.intervals`."""
    console_consumer: tuple[str, ...] = ()
    """Command that runs Kafka's console consumer, for consumer-protocol; empty to look for one."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.scenarios) - set(SCENARIOS))
        if unknown:
            raise ValueError(f"unknown scenario {unknown[0]!r}; choose from {', '.join(SCENARIOS)}")
        if not self.bootstrap_servers:
            raise ValueError("no bootstrap servers")
        if self.commit_interval <= 0 or self.rate <= 0:
            raise ValueError("commit interval and rate must be positive")
        if self.phase < 2:
            raise ValueError("phase must be at least 2 commits")


@dataclass
class ScenarioState:
    """What one scenario has done so far; read it, do not write it."""

    name: str
    topic: str
    group: str
    partitions: int
    running: bool = False
    """Whether its consumer is up (joined or joining the group)."""
    commits: int = 0
    """Commits made by the current consumer."""
    committed: dict[int, int] = field(default_factory=dict)
    """Last committed offset per partition (not known for consumer-protocol, which commits by itself)."""
    rewound_to: dict[int, int] = field(default_factory=dict)
    """rewound: the offset of the latest rewind per partition."""
    unavailable: str = ""
    """Why the scenario could not run (consumer-protocol without a KIP-848 broker or console consumer)."""


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
        self._consumers: dict[str, _Runner] = {}
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
        runner: _Runner
        if scenario == CONSUMER_PROTOCOL:
            runner = _ConsoleConsumer(state, self._servers, self.config)
        else:
            runner = _Consumer(state, self._servers, self.config, behaviour)
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
            await asyncio.sleep(_KEEPALIVE_S)

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


class _Runner(Protocol):
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


class _Consumer:
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
                await self._consumer.getmany(timeout_ms=int(min(wait, _KEEPALIVE_S) * 1000))
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


class _ConsoleConsumer:
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


async def run_scenarios(config: WorkloadConfig, duration: float | None = None) -> None:
    """Run the workload until cancelled, until `duration` seconds passed, or until a task fails (raised)."""
    async with Workload(config) as workload:
        names = ", ".join(s.topic for s in workload.states.values() if not s.unavailable)
        log.info("workload running: %s (commit every %gs)", names, config.commit_interval)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(duration):
                await workload.wait()


# ------------------------------------------------------------------------------------------------------------
# Command line.


def _scenarios(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown scenario {unknown[0]!r}" if unknown else "no scenario given"
        )
    return names


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _phase(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be at least 2: {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The workload's options (the bootstrap servers come from the caller)."""
    parser.add_argument(
        "--scenarios",
        type=_scenarios,
        default=SCENARIOS,
        metavar="NAME,...",
        help=f"scenarios to run (default: all): {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--commit-interval",
        type=_positive_number,
        default=5.0,
        metavar="SECONDS",
        help="seconds between two commits of a group (default: 5)",
    )
    parser.add_argument(
        "--rate",
        type=_positive_number,
        default=10.0,
        metavar="N",
        help="records produced per second to each partition (default: 10)",
    )
    parser.add_argument(
        "--phase",
        type=_phase,
        default=10,
        metavar="N",
        help="commits before the stopped consumer stops and between rewinds; set it to lagwatch's "
        "storage.intervals (default: 10)",
    )
    parser.add_argument(
        "--prefix",
        default=_DEFAULT_PREFIX,
        metavar="NAME",
        help=f"topics and groups are named PREFIX-SCENARIO (default: {_DEFAULT_PREFIX})",
    )
    parser.add_argument(
        "--duration",
        type=_positive_number,
        metavar="SECONDS",
        help="stop after this many seconds (default: run until Ctrl-C or SIGTERM)",
    )
    parser.add_argument(
        "--console-consumer",
        type=shlex.split,
        default=[],
        metavar="COMMAND",
        help="command that runs Kafka's console consumer, for consumer-protocol (default: "
        "kafka-console-consumer.sh from PATH, else scripts/kafka-local of a lagwatch checkout)",
    )


def run_workload(args: argparse.Namespace, bootstrap_servers: Sequence[str]) -> int:
    """Run the workload until Ctrl-C, SIGTERM or `--duration`; returns the exit code (1 on failure)."""
    config = WorkloadConfig(
        bootstrap_servers=tuple(bootstrap_servers),
        scenarios=tuple(args.scenarios),
        prefix=args.prefix,
        commit_interval=args.commit_interval,
        rate=args.rate,
        phase=args.phase,
        console_consumer=tuple(args.console_consumer),
    )
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        # aiokafka logs every retried connection at ERROR; the workload reports failures itself.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        asyncio.run(_until_signal(config, args.duration))
    except (OSError, RuntimeError) as error:  # KafkaError is a RuntimeError
        cause = f": {error.__cause__}" if error.__cause__ is not None else ""
        print(f"{_PROG}: {error}{cause}", file=sys.stderr)
        return 1
    return 0


async def _until_signal(config: WorkloadConfig, duration: float | None) -> None:
    task = asyncio.create_task(run_scenarios(config, duration))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m exporter.tools.workload`, until `lagwatch demo workload` is wired."""
    parser = argparse.ArgumentParser(
        prog="python -m exporter.tools.workload", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("LAGWATCH_CLUSTERS__LOCAL__BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        metavar="HOST:PORT,...",
        help="Kafka bootstrap servers (default: 127.0.0.1:9092)",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    servers = [server.strip() for server in args.bootstrap_servers.split(",") if server.strip()]
    return run_workload(args, servers)


if __name__ == "__main__":
    raise SystemExit(main())
