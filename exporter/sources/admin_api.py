"""Committed offsets through the admin API, for clusters where `__consumer_offsets` cannot be read (managed Kafka
with ACLs). Every `offset_refresh`: ListGroups, then OffsetFetch for every group with bounded concurrency (each
group's coordinator is cached), and DescribeGroups for classic groups' membership.

What this source cannot see, and the README says so: real commit timestamps (the observation time stands in, so a
consumer that stopped looks STALL, never STOP) and commits made between two polls.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Iterable

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from exporter.decoder import decode_assignment, record_kind
from exporter.model import GroupMetadata, Member, OffsetCommit, OffsetTombstone
from exporter.settings import ClusterSettings
from exporter.sources.kafka_client import client_kwargs
from exporter.sources.progress import SourceProgress
from exporter.storage import Storage

log = logging.getLogger(__name__)

_RETRY_S = 2.0
_CLASSIC_PROTOCOL = "consumer"


class AdminApiSource:
    """Polls committed offsets and classic membership of one cluster into its storage until cancelled."""

    def __init__(
        self,
        name: str,
        cluster: ClusterSettings,
        storage: Storage,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.progress = SourceProgress()
        self._cluster = cluster
        self._storage = storage
        self._clock = clock
        self._order = itertools.count(1)
        self._coordinators: dict[str, int] = {}
        self._seen: dict[str, set[tuple[str, int]]] = {}
        self._semaphore = asyncio.Semaphore(cluster.admin_concurrency)

    async def run(self) -> None:
        while True:
            admin = AIOKafkaAdminClient(**client_kwargs(self._cluster))
            try:
                await admin.start()
                while True:
                    started = time.monotonic()
                    await self._poll(admin)
                    elapsed = time.monotonic() - started
                    await asyncio.sleep(max(0.0, self._cluster.offset_refresh - elapsed))
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning("cluster %s: admin API poll failed (%s); retrying", self.name, exc)
                self._coordinators.clear()
                await asyncio.sleep(_RETRY_S)
            finally:
                await admin.close()

    async def _poll(self, admin: AIOKafkaAdminClient) -> None:
        listed = await admin.list_consumer_groups()
        groups = {str(group): str(protocol) for group, protocol, *_ in listed}
        for gone in set(self._seen) - set(groups):
            self._seen.pop(gone)
            self._coordinators.pop(gone, None)
            if self._storage.delete_group(gone):
                log.info("cluster %s: group %s no longer exists", self.name, gone)
        results = await asyncio.gather(
            *(self._poll_group(admin, group, protocol) for group, protocol in sorted(groups.items())),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        for failure in failures:
            if not isinstance(failure, KafkaError | OSError | TimeoutError):
                raise failure
        if failures:
            log.debug("cluster %s: %d groups could not be polled: %s", self.name, len(failures), failures[0])
        else:
            self.progress.caught_up = True

    async def _poll_group(self, admin: AIOKafkaAdminClient, group: str, protocol: str) -> None:
        async with self._semaphore:
            coordinator = self._coordinators.get(group)
            if coordinator is None:
                coordinator = self._coordinators[group] = await admin.find_coordinator(group)
            try:
                offsets = await admin.list_consumer_group_offsets(group, group_coordinator_id=coordinator)
                members = (
                    await admin.describe_consumer_groups([group], group_coordinator_id=coordinator)
                    if protocol == _CLASSIC_PROTOCOL
                    else None
                )
            except KafkaError:
                # The coordinator may have moved: look it up again next time.
                self._coordinators.pop(group, None)
                raise
        now_ms = int(self._clock() * 1000)
        current = {(tp.topic, tp.partition) for tp, meta in offsets.items() if meta.offset >= 0}
        for (topic, partition), meta in sorted((((tp.topic, tp.partition), m) for tp, m in offsets.items())):
            if meta.offset >= 0:
                self._apply(OffsetCommit(group, topic, partition, meta.offset, now_ms), now_ms)
        for topic, partition in sorted(self._seen.get(group, set()) - current):
            self._apply(OffsetTombstone(group, topic, partition), now_ms)
        self._seen[group] = current
        if members is not None:
            for description in _group_metadata(group, members):
                self._apply(description, now_ms)

    def _apply(self, record: OffsetCommit | OffsetTombstone | GroupMetadata, now_ms: int) -> None:
        self.progress.records[record_kind(record)] += 1
        self._storage.apply(record, next(self._order), now_ms)


def _group_metadata(group: str, responses: Iterable[object]) -> list[GroupMetadata]:
    """DescribeGroups responses (v0-v5 share the fields used here) as the storage's membership records."""
    found = []
    for response in responses:
        for described in getattr(response, "groups", ()):
            error_code, group_id, _state, protocol_type, protocol, raw_members = described[:6]
            if error_code != 0 or group_id != group:
                continue
            members = tuple(
                Member(
                    member_id=m[0],
                    client_id=m[-4],
                    client_host=m[-3],
                    assignment=decode_assignment(m[-1]) if protocol_type == _CLASSIC_PROTOCOL else (),
                )
                for m in raw_members
            )
            found.append(GroupMetadata(group, protocol_type, -1, protocol, None, members))
    return found
