"""Capped exponential backoff for every way lagwatch reconnects to Kafka: the retry delay of its own loops,
and the reconnections aiokafka makes by itself inside a client or consumer.

aiokafka 0.14 has no reconnect backoff (kafka-python's `reconnect_backoff_ms` never made it over). A failed
connection triggers a metadata refresh, which reconnects at once; a consumer's fetcher asks for a refresh on
every pass while a partition has no leader. With every broker down that was thousands of `connect()` calls a
second to the last broker the metadata listed, and most of a core. `BackoffClient` gives each broker address
a capped exponential backoff, as the Java client's `reconnect.backoff.ms` / `reconnect.backoff.max.ms` do:
while a broker is backing off, the client reports it not ready without dialling, and a metadata refresh waits
until some broker may be dialled again instead of failing at once (which would be asked for again at once).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from aiokafka import AIOKafkaClient, AIOKafkaConsumer
from aiokafka.client import ConnectionGroup
from aiokafka.cluster import ClusterMetadata
from aiokafka.conn import AIOKafkaConnection

__all__ = ["Backoff", "BackoffClient", "BackoffConsumer"]

FIRST_RECONNECT_S = 0.2
MAX_RECONNECT_S = 5.0
"""Per broker address: at most one connection attempt every 5 s (±20%) once an outage has lasted ~10 s."""


class Backoff:
    """Delays that double from `first` up to `cap`, each spread by ±`jitter` so that clients started together
    do not reconnect in step."""

    def __init__(self, first: float, cap: float, jitter: float = 0.2) -> None:
        self.first = first
        self.cap = cap
        self.jitter = jitter
        self._current = first

    def next(self) -> float:
        """The delay before the next attempt; the one after will be twice as long, up to the cap."""
        delay = self._current
        self._current = min(self.cap, self._current * 2)
        return delay * random.uniform(1 - self.jitter, 1 + self.jitter)

    def reset(self) -> None:
        """An attempt succeeded: the next failure waits `first` again."""
        self._current = self.first


class BackoffClient(AIOKafkaClient):  # type: ignore[misc]
    """aiokafka's client with a reconnect backoff per broker address (host, port)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._backoffs: dict[tuple[str, int], Backoff] = {}
        self._not_before: dict[tuple[str, int], float] = {}

    def _address(self, node_id: int | str) -> tuple[str, int] | None:
        broker = self.cluster.broker_metadata(node_id)
        return None if broker is None else (broker.host, broker.port)

    async def _get_conn(self, node_id: int | str, **kwargs: Any) -> AIOKafkaConnection | None:
        conn_id = (node_id, kwargs.get("group", ConnectionGroup.DEFAULT))
        conn = self._conns.get(conn_id)
        if conn is not None and conn.connected():
            return conn
        address = self._address(node_id)
        if address is not None and time.monotonic() < self._not_before.get(address, 0.0):
            return None
        conn = await super()._get_conn(node_id, **kwargs)
        if address is not None:
            backoff = self._backoffs.setdefault(address, Backoff(FIRST_RECONNECT_S, MAX_RECONNECT_S))
            if conn is None:
                self._not_before[address] = time.monotonic() + backoff.next()
            else:
                backoff.reset()
                self._not_before.pop(address, None)
        return conn

    async def _metadata_update(self, cluster_metadata: ClusterMetadata, topics: Any) -> bool:
        # A refresh that found every broker backing off would fail at once and be asked for again at once.
        nodes: list[int | str] = [broker.nodeId for broker in self.cluster.brokers()]
        waits = [self._not_before.get(a, 0.0) for a in map(self._address, nodes) if a is not None]
        if waits:
            delay = min(waits) - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        result: bool = await super()._metadata_update(cluster_metadata, topics)
        return result


class BackoffConsumer(AIOKafkaConsumer):  # type: ignore[misc]
    """aiokafka's consumer on a `BackoffClient`. `connection` is what `client_kwargs` returns: the consumer
    builds its own client from exactly these arguments (the others keep the same defaults in both), so the
    replacement differs only in its class."""

    def __init__(self, connection: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**connection, **kwargs)
        self._client = BackoffClient(**connection)
