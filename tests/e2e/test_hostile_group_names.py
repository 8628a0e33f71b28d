"""Groups with names Kafka accepts and URLs mangle, committed through a real broker and read back through
every endpoint of a running lagwatch, `lagwatch status` and /metrics (issue #16, item 6).

Requests are sent as raw bytes with each name percent-encoded as one path segment, as `lagwatch status` sends
them; an HTTP client library would normalise `.` and `..` segments away.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlsplit

from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.e2e.conftest import ADMIN_TOKEN, Lagwatch
from tests.kafka_cluster import NewTopicFactory, Produce

HOSTILE = (
    'a}b{c="d"',
    "g" * 10_000,
    "grüße-组-🚀",
    "team/a/../b",
    "..",
    ".",
    "50%off %2F ?#&=+;",
    "tab\tnew\nline\\",
)
COMMITTED = 4
PRODUCED = 10


async def commit(bootstrap: str, group: str, topic: str) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.commit({partition: COMMITTED})
    finally:
        await consumer.stop()


async def until(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"not seen within {seconds} s: {what}"
        await asyncio.sleep(0.2)


async def call(lagwatch: Lagwatch, method: str, path: str) -> tuple[int, Any]:
    where = urlsplit(lagwatch.url)
    reader, writer = await asyncio.open_connection(where.hostname, where.port)
    writer.write(
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    await writer.drain()
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body) if body.startswith(b"{") else body


async def test_hostile_group_names_work_in_every_endpoint(
    lagwatch: Lagwatch, kafka_bootstrap: str, new_topic: NewTopicFactory, produce: Produce
) -> None:
    topic = await new_topic(partitions=1)
    await produce(topic, [PRODUCED])
    await asyncio.gather(*(commit(kafka_bootstrap, group, topic) for group in HOSTILE))

    async def all_known() -> bool:
        code, body = await call(lagwatch, "GET", f"/v3/kafka/local/topic/{topic}/consumers")
        return code == 200 and set(body["consumers"]) == set(HOSTILE)

    await until(all_known, "lagwatch lists every group of the topic")

    async def lag_known() -> bool:
        for group in HOSTILE:
            code, body = await call(lagwatch, "GET", f"/v3/kafka/local/consumer/{quote(group, safe='')}/lag")
            if code != 200 or body["status"]["totallag"] != PRODUCED - COMMITTED:
                return False
        return True

    await until(lag_known, "every group has its lag")
    for group in HOSTILE:
        base = f"/v3/kafka/local/consumer/{quote(group, safe='')}"
        code, detail = await call(lagwatch, "GET", base)
        assert code == 200
        assert [p["offsets"][-1]["offset"] for p in detail["topics"][topic] if p["offsets"]] == [COMMITTED]
        code, body = await call(lagwatch, "GET", base + "/status")
        assert (code, body["status"]["group"]) == (200, group)

    # /metrics shows a round once it is rendered: a scrape during that render gets the round before.
    async def scraped() -> bool:
        metrics = await lagwatch.metrics()
        lags = [metrics.get("lagwatch_group_total_lag", kafka_cluster="local", group=g) for g in HOSTILE]
        return lags == [PRODUCED - COMMITTED] * len(HOSTILE)

    await until(scraped, "/metrics shows every group's lag")

    run = await lagwatch.status("--json")
    assert run.stderr == ""
    shown = {g["group"]: g for g in run.json()["groups"] if g["group"] in HOSTILE}
    assert set(shown) == set(HOSTILE)
    assert {g["totallag"] for g in shown.values()} == {PRODUCED - COMMITTED}
    for group in (HOSTILE[0], HOSTILE[1]):
        run = await lagwatch.status("--group", group)
        assert run.stderr == ""
        assert f"local/{group}: " in run.stdout

    for index, group in enumerate(HOSTILE):
        base = f"/v3/kafka/local/consumer/{quote(group, safe='')}"
        suffix = f"/topic/{topic}" if index % 2 else ""
        code, body = await call(lagwatch, "DELETE", base + suffix)
        assert (code, body["error"]) == (200, False)
        code, body = await call(lagwatch, "GET", base + "/status")
        assert (code, body["status"]["status"]) == (404, "NOTFOUND")
