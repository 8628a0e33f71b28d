"""Fixtures for tests against a real Kafka; where the cluster comes from is told in tests/kafka_cluster.py.

Any test that uses `kafka_bootstrap`, directly or through another fixture here, is marked `kafka`, so
`pytest -m "not kafka"` runs without a broker.
"""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import NoReturn

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from hypothesis import settings as hypothesis_settings

from tests.kafka_cluster import (
    KAFKA_LOCAL,
    MISSING_TOOLING,
    Broker,
    Cluster,
    ContainerKafka,
    KafkaNode,
    KafkaTool,
    KafkaUnavailableError,
    LocalKafka,
    NewTopicFactory,
    Produce,
    create_topic,
    docker_answers,
    kafka_mode,
    local_state_dir,
    produce_records,
    run_tool,
    unique_name,
)

# Every skip fails a CI run (tests/skips_fail_ci.py).
pytest_plugins = ["tests.skips_fail_ci"]

# Hypothesis' 200 ms per-example deadline measures the machine, not the code: on a busy 2-core runner a slow
# example is a scheduling delay. Every property still runs its full number of examples.
hypothesis_settings.register_profile("lagwatch", deadline=None)
hypothesis_settings.load_profile("lagwatch")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "kafka_bootstrap" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kafka)


def _unavailable(error: KafkaUnavailableError) -> NoReturn:
    # Without Java or Maven a developer's run skips; in CI the same gap is a broken setup and must fail.
    if error.missing_tooling and not os.environ.get("CI"):
        pytest.skip(str(error))
    pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def kafka_cluster() -> Iterator[Cluster]:
    """The session's Kafka, as LAGWATCH_TEST_KAFKA says (auto, container, jars; tests/kafka_cluster.py)."""
    try:
        mode = kafka_mode()
    except KafkaUnavailableError as error:
        _unavailable(error)
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if mode == "auto" and given:
        # A broker of the user's: where it sees this machine's clients is theirs to say.
        yield Cluster(given, os.environ.get("LAGWATCH_TEST_KAFKA_CLIENT_HOST", "/127.0.0.1"))
        return
    use_container = mode == "container" or (mode == "auto" and docker_answers())
    broker: Broker = ContainerKafka() if use_container else LocalKafka(local_state_dir())
    try:
        try:
            broker.start()
        except KafkaUnavailableError as error:
            _unavailable(error)
        yield Cluster(broker.bootstrap, broker.client_host, broker)
    finally:
        broker.destroy()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_cluster: Cluster) -> str:
    """Bootstrap servers of the session's Kafka, `host:port[,...]`."""
    return kafka_cluster.bootstrap


@pytest.fixture(scope="session")
def kafka_client_host(kafka_cluster: Cluster) -> str:
    """The client host the broker records for this machine's clients, e.g. `/127.0.0.1`."""
    return kafka_cluster.client_host


@pytest.fixture
async def kafka_admin(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


@pytest.fixture
async def new_topic(
    kafka_cluster: Cluster, kafka_admin: AIOKafkaAdminClient
) -> AsyncIterator[NewTopicFactory]:
    """`await new_topic(partitions=1, replication_factor=1)` creates a uniquely named topic, deleted after
    the test."""
    created: list[str] = []

    async def make(partitions: int = 1, replication_factor: int = 1) -> str:
        name = unique_name("lagwatch-test")
        await create_topic(kafka_admin, name, partitions, replication_factor)
        created.append(name)
        return name

    yield make
    if created:
        # A test that used kafka_node may still have the broker down at this point.
        await asyncio.to_thread(kafka_cluster.restore)
        await kafka_admin.delete_topics(created)


@pytest.fixture
def produce(kafka_bootstrap: str) -> Produce:
    """`await produce(topic, [3, 5, 7])` writes exactly 3, 5 and 7 records to partitions 0, 1 and 2
    (or `{partition: count}`)."""
    return functools.partial(produce_records, kafka_bootstrap)


@pytest.fixture
async def kafka_node(kafka_cluster: Cluster) -> AsyncIterator[KafkaNode]:
    """`await kafka_node.stop()` / `await kafka_node.start()`: the broker down and back, data kept."""
    if kafka_cluster.broker is None:
        pytest.skip("a broker given by KAFKA_BOOTSTRAP_SERVERS cannot be stopped and started by the tests")
    yield KafkaNode(kafka_cluster.broker)
    await asyncio.to_thread(kafka_cluster.restore)


@pytest.fixture(scope="session")
def kafka_tool() -> KafkaTool:
    """`await kafka_tool(main_class, *args, time_limit=60.0)` runs a Kafka CLI class from the jars."""
    fetched = subprocess.run([sys.executable, str(KAFKA_LOCAL), "fetch"], capture_output=True, text=True)
    if fetched.returncode != 0:
        _unavailable(
            KafkaUnavailableError(
                f"kafka-local fetch failed: {fetched.stderr.strip()}",
                missing_tooling=fetched.returncode == MISSING_TOOLING,
            )
        )
    return run_tool
