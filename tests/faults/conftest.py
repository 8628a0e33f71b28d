"""The fault suite's own Kafka: a 3-node KRaft cluster from scripts/kafka-local (replication factor 3), which
its tests stop, kill, freeze and restart node by node. It is started once for the suite, apart from the
session's cluster, and always from the jars: a given cluster or a container cannot be frozen node by node."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.kafka_cluster import KafkaUnavailableError, LocalKafka, local_state_dir


@pytest.fixture(scope="session")
def three_nodes() -> Iterator[LocalKafka]:
    local = LocalKafka(local_state_dir().with_name(f"pytest-faults-{os.getpid()}"), nodes=3)
    try:
        try:
            local.start()
        except KafkaUnavailableError as error:
            # As for the session's cluster: a developer without Java or Maven skips, CI fails.
            if error.missing_tooling and not os.environ.get("CI"):
                pytest.skip(str(error))
            pytest.fail(str(error), pytrace=False)
        yield local
    finally:
        local.destroy()
