"""End-to-end fixtures: lagwatch as a real subprocess against the session's Kafka, and the scenario workload.

lagwatch runs with a window of INTERVALS commits and a HEAD refresh of half a second, and the workload commits
every COMMIT_INTERVAL seconds, so that every status shows within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CoordinatorNotAvailableError
from prometheus_client.parser import text_string_to_metric_families

from exporter.tools.workload.runner import Workload
from exporter.tools.workload.scenarios import WorkloadConfig
from tests.e2e.driving import started_workload
from tests.kafka_cluster import REPO, KafkaTool, unique_name

INTERVALS = 4
COMMIT_INTERVAL = 1.0
RATE = 20.0
"""Records per second and partition: enough that the slow group's lag grows faster than HEAD staleness."""
OFFSET_REFRESH = 0.5
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
ADMIN_TOKEN = "e2e-admin-token"
"""Enables the DELETE and POST endpoints of the e2e lagwatch."""


Labels = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Metrics:
    """One scrape of /metrics, parsed."""

    samples: Mapping[tuple[str, Labels], float]

    def get(self, name: str, **labels: str | int) -> float | None:
        return self.samples.get((name, frozenset((k, str(v)) for k, v in labels.items())))

    def value(self, name: str, **labels: str | int) -> int:
        """An integral sample that must be present."""
        found = self.get(name, **labels)
        assert found is not None, f"no sample {name}{labels}"
        assert found == int(found), f"{name}{labels} = {found} is not integral"
        return int(found)

    def of_group(self, group: str) -> list[str]:
        """Every series that carries `group` (as `group` or Burrow's `consumer_group`)."""
        return sorted(
            name
            for name, labels in self.samples
            if ("group", group) in labels or ("consumer_group", group) in labels
        )


@dataclass(frozen=True)
class StatusRun:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class Lagwatch:
    """A running lagwatch and the three ways to ask it: /metrics, the Burrow API and `lagwatch status`."""

    def __init__(self, process: asyncio.subprocess.Process, url: str, log: Path, intervals: int) -> None:
        self.process = process
        self.url = url
        self.log = log
        self.intervals = intervals
        """Its storage.intervals: the length of every commit window."""
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def close(self) -> None:
        await self._http.close()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    async def get(self, path: str) -> tuple[int, str]:
        async with self._http.get(self.url + path) as response:
            return response.status, await response.text()

    async def metrics(self) -> Metrics:
        code, text = await self.get("/metrics")
        assert code == 200, text
        samples = {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        return Metrics(samples)

    async def burrow(self, path: str) -> tuple[int, Any]:
        code, text = await self.get(path)
        return code, json.loads(text)

    async def status(self, *args: str) -> StatusRun:
        """`lagwatch status --url <this> ARGS`, as a user runs it."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "exporter", "status", "--url", self.url, *args),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode is not None
        return StatusRun(process.returncode, stdout.decode(), stderr.decode())

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process.returncode is None, f"lagwatch exited early:\n{self.log_tail()}"
            try:
                code, _ = await self.get("/-/ready")
                if code == 200:
                    return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError(f"lagwatch not ready after {READY_TIMEOUT_S} s:\n{self.log_tail()}")

    async def wait_for_topics(self, topics: Sequence[str]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            code, body = await self.burrow("/v3/kafka/local/topic")
            missing = set(topics) - set(body.get("topics", ()))
            if code == 200 and not missing:
                return
            assert time.monotonic() < deadline, f"lagwatch does not know topics {sorted(missing)}"
            await asyncio.sleep(0.1)

    async def terminate(self) -> int | None:
        """SIGTERM, then the exit code, or None if it is still running after STOP_TIMEOUT_S."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)
        return self.process.returncode


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _create_offsets_topic(bootstrap: str) -> None:
    """A fresh cluster has no __consumer_offsets until a group looks for its coordinator, and lagwatch is not
    ready before it has read that topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                await admin.find_coordinator(unique_name("lagwatch-e2e-probe"))
                return
            except CoordinatorNotAvailableError:
                assert time.monotonic() < deadline, "the group coordinator never became available"
                await asyncio.sleep(0.2)
    finally:
        await admin.close()


@pytest.fixture(scope="module")
async def lagwatch(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Lagwatch]:
    """lagwatch serving on a free loopback port, ready (its first read of __consumer_offsets is done)."""
    async with running_lagwatch(kafka_bootstrap, tmp_path_factory.mktemp("lagwatch")) as running:
        yield running


@contextlib.asynccontextmanager
async def running_lagwatch(
    kafka_bootstrap: str, workdir: Path, settings: Mapping[str, str] | None = None
) -> AsyncIterator[Lagwatch]:
    """lagwatch as the `lagwatch` fixture runs it, with `settings` (environment variables) on top."""
    await _create_offsets_topic(kafka_bootstrap)
    port = _free_port()
    log = workdir / "lagwatch.log"
    env = {
        **os.environ,
        "LAGWATCH_CLUSTERS__LOCAL__OFFSET_REFRESH": str(OFFSET_REFRESH),
        "LAGWATCH_CLUSTERS__LOCAL__TOPIC_REFRESH": "1",
        # The HEAD history file must not outlive the test's Kafka, nor touch the user's state directory.
        "LAGWATCH_LAG_SECONDS__STATE_DIR": str(workdir / "state"),
        "LAGWATCH_HTTP__ADMIN_TOKEN": ADMIN_TOKEN,
        **(settings or {}),
    }
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "exporter", "--bootstrap-servers", kafka_bootstrap),
            *("--http.listen", f"127.0.0.1:{port}", "--storage.intervals", str(INTERVALS)),
            cwd=REPO,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
    running = Lagwatch(process, f"http://127.0.0.1:{port}", log, INTERVALS)
    try:
        await running.wait_ready()
        yield running
    finally:
        await running.close()
        if await running.terminate() is None:
            process.kill()
            await process.wait()


@pytest.fixture(scope="module")
async def workload(
    lagwatch: Lagwatch, kafka_bootstrap: str, kafka_tool: KafkaTool
) -> AsyncIterator[Workload]:
    """Every scenario, on topics and groups named `lagwatch-e2e-<random>-<scenario>`, started once lagwatch
    polls the HEAD of every topic. `kafka_tool` makes sure the jars of the console consumer
    (consumer-protocol) are there."""
    config = WorkloadConfig(
        bootstrap_servers=tuple(kafka_bootstrap.split(",")),
        prefix=unique_name("lagwatch-e2e"),
        commit_interval=COMMIT_INTERVAL,
        rate=RATE,
        phase=INTERVALS,
    )
    async with started_workload(lagwatch, config) as running:
        yield running
