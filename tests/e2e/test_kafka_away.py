"""Kafka stopped under a running lagwatch (issue #11 section 4): `lagwatch status` says the cluster is
unreachable, since when and as of when its statuses are, keeps showing those statuses, and exits with its
own code; the JSON carries the same; once Kafka is back the line goes and the exit code follows the
statuses again.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition

from exporter.tools import status
from tests.e2e.conftest import StatusRun, running_lagwatch
from tests.kafka_cluster import KafkaNode, NewTopicFactory, Produce, unique_name

_T = TypeVar("_T")
_WITHIN_S = 120.0
"""The committed-offsets source retries up to 30 s apart while Kafka is away, and a restarted broker (a
container's, say) takes its own time to come back: recovery is bounded, not instant."""


async def _eventually(check: Callable[[], Awaitable[_T]], what: str) -> _T:
    deadline = time.monotonic() + _WITHIN_S
    while True:
        try:
            return await check()
        except AssertionError as failed:
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {_WITHIN_S:.0f} s: {what}: {failed}") from None
            await asyncio.sleep(0.5)


async def _commit(bootstrap: str, topic: str, group: str, offset: int) -> None:
    """A simple commit (assign() mode, no member), as assign()-only consumers make."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.commit({partition: offset})
    finally:
        await consumer.stop()


async def test_status_names_an_unreachable_cluster_keeps_its_last_statuses_and_exits_3(
    kafka_bootstrap: str,
    kafka_node: KafkaNode,
    new_topic: NewTopicFactory,
    produce: Produce,
    tmp_path: Path,
) -> None:
    topic = await new_topic(1)
    await produce(topic, [10])
    group = unique_name("e2e-away")
    async with running_lagwatch(kafka_bootstrap, tmp_path) as lagwatch:
        await _commit(kafka_bootstrap, topic, group, 10)

        async def listed() -> StatusRun:
            run = await lagwatch.status("--group", group, "--no-color")
            assert run.returncode == status.EXIT_OK, (run.stdout, run.stderr)
            assert f"local/{group}: OK" in run.stdout
            return run

        await _eventually(listed, "the group's status")

        await kafka_node.stop()

        async def frozen() -> StatusRun:
            run = await lagwatch.status("--no-color")
            assert run.returncode == status.EXIT_KAFKA_UNREACHABLE, (run.stdout, run.stderr)
            return run

        run = await _eventually(frozen, "lagwatch status to report the cluster unreachable")
        stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"
        line = run.stdout.splitlines()[0]
        assert re.fullmatch(
            rf"cluster local: UNREACHABLE since {stamp} \(.+\); statuses as of {stamp}", line
        ), line
        # The last statuses stay on show, under the line that says how old they are.
        assert any(row.split()[:3] == ["local", group, "OK"] for row in run.stdout.splitlines()[2:])

        answer = (await lagwatch.status("--json", "--group", group)).json()
        (cluster,) = answer["clusters"]
        assert (cluster["cluster"], cluster["reachable"]) == ("local", False)
        assert isinstance(cluster["unreachable_since"], int)
        assert isinstance(cluster["statuses_as_of"], int)
        assert [g["group"] for g in answer["groups"]] == [group]

        await kafka_node.start()

        # Asked for this group only: other tests' groups on the same broker may well be ERR.
        async def back() -> None:
            again = await lagwatch.status("--group", group, "--no-color")
            assert again.returncode == status.EXIT_OK, (again.stdout, again.stderr)
            assert "UNREACHABLE" not in again.stdout

        await _eventually(back, "the cluster back and the line gone")
