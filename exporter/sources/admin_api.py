"""Committed offsets through the admin API, for clusters where `__consumer_offsets` cannot be read (managed
Kafka with ACLs). Every `offset_refresh`: ListGroups on every broker, then per group, with bounded concurrency
and the group's coordinator cached, OffsetFetch and, for groups of protocol type "consumer", DescribeGroups
(membership of classic groups; a KIP-848 group answers without protocol type or members, which the storage
ignores).

What this source cannot see, and the README says so: real commit timestamps (the observation time stands in,
so the window holds one commit per poll and a consumer that stopped looks STALL, never STOP) and commits made
between two polls. Owners of KIP-848 groups are unknown: aiokafka lacks their ConsumerGroupDescribe API.

The requests go through aiokafka's client rather than its admin client, whose `list_consumer_group_offsets`
ignores OffsetFetch's group-level error code: a coordinator that moved or is still loading would answer "no
offsets", and this source would delete every window of the group.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaClient
from aiokafka.errors import KafkaError, for_code
from aiokafka.protocol.admin import DescribeGroupsRequest, ListGroupsRequest
from aiokafka.protocol.commit import OffsetFetchRequest
from aiokafka.protocol.metadata import MetadataRequest

from exporter.core.decoder import decode_assignment
from exporter.core.model import CommitFields, GroupMetadata, Member, OffsetCommit, OffsetTombstone
from exporter.core.storage import Storage
from exporter.settings import ClusterSettings
from exporter.sources.kafka_client import client_kwargs
from exporter.sources.progress import SourceProgress
from exporter.sources.reconnect import BackoffClient
from exporter.sources.retry import Retry

log = logging.getLogger(__name__)

_FIRST_RETRY_S = 1.0
_MAX_RETRY_S = 30.0
_CONSUMER_PROTOCOL = "consumer"
_GROUP_COORDINATOR = 0
_METADATA_MAX_AGE_MS = 3_600_000
_Partition = tuple[str, int]


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
        self._seen: dict[str, set[_Partition]] = {}
        self._semaphore = asyncio.Semaphore(cluster.admin_concurrency)
        self._logged_errors: set[str] = set()
        self._retry = Retry(log, f"cluster {name}: admin API poll", _FIRST_RETRY_S, _MAX_RETRY_S)

    async def run(self) -> None:
        """Poll until cancelled; reconnects by itself, with capped exponential backoff, when Kafka is away."""
        while True:
            client = BackoffClient(**client_kwargs(self._cluster), metadata_max_age_ms=_METADATA_MAX_AGE_MS)
            try:
                await client.bootstrap()
                while True:
                    started = time.monotonic()
                    await self.poll(client)
                    self._retry.succeeded()
                    self.progress.problem = ""
                    elapsed = time.monotonic() - started
                    await asyncio.sleep(max(0.0, self._cluster.offset_refresh - elapsed))
            except (KafkaError, OSError, TimeoutError) as exc:
                self._coordinators.clear()
                delay = self._retry.failed(exc)
                self.progress.problem = self._retry.cause
                await asyncio.sleep(delay)
            finally:
                await client.close()

    async def poll(self, client: AIOKafkaClient) -> None:
        """One round: every group's committed offsets (and classic membership) into the storage. Raises when
        the groups cannot be listed, so that no group is taken for deleted because a broker did not answer."""
        started = self._clock()
        groups = await self._list_groups(client)
        for gone in sorted(set(self._seen) - set(groups)):
            del self._seen[gone]
            self._coordinators.pop(gone, None)
            if self._storage.delete_group(gone):
                log.info("cluster %s: group %s no longer exists", self.name, gone)
        results = await asyncio.gather(
            *(self._poll_group(client, group, protocol) for group, protocol in sorted(groups.items())),
            return_exceptions=True,
        )
        retriable = False
        for failure in results:
            if failure is None:
                continue
            if not isinstance(failure, KafkaError | OSError | TimeoutError):
                raise failure
            retriable |= not isinstance(failure, KafkaError) or failure.retriable
            self._count_failure(failure)
        # Groups refused for good (authorization) must not hold readiness back forever.
        if not retriable:
            self.progress.caught_up = True
            self.progress.complete_as_of = started

    async def _list_groups(self, client: AIOKafkaClient) -> dict[str, str]:
        """Group id -> protocol type, over every broker (each lists the groups it coordinates)."""
        # Brokers only: the client's own refresh would fetch every topic's metadata.
        metadata = await client.send(client.get_random_node(), MetadataRequest([]))
        client.cluster.update_metadata(metadata)
        responses = await asyncio.gather(
            *(client.send(broker.nodeId, ListGroupsRequest()) for broker in client.cluster.brokers())
        )
        groups: dict[str, str] = {}
        for response in responses:
            _raise_for(response.error_code, "ListGroups")
            for group, protocol_type, *_ in response.groups:
                groups[group] = protocol_type
        return groups

    async def _poll_group(self, client: AIOKafkaClient, group: str, protocol_type: str) -> None:
        async with self._semaphore:
            coordinator = self._coordinators.get(group)
            if coordinator is None:
                coordinator = await client.coordinator_lookup(_GROUP_COORDINATOR, group)
                self._coordinators[group] = coordinator
            try:
                fetched = await client.send(coordinator, OffsetFetchRequest(group, None))
                _raise_for(fetched.error_code, f"OffsetFetch of group {group}")
                # One group per request: aiokafka parses a v3 DescribeGroups answer with the v2 schema, which
                # misreads every group after the first.
                described = (
                    await client.send(coordinator, DescribeGroupsRequest([group]))
                    if protocol_type == _CONSUMER_PROTOCOL
                    else None
                )
            except (KafkaError, OSError, TimeoutError):
                # The coordinator may have moved: look it up again next time.
                self._coordinators.pop(group, None)
                raise
        now_ms = int(self._clock() * 1000)
        current: set[_Partition] = set()
        failed: set[_Partition] = set()
        commits: list[CommitFields] = []
        for topic, partitions in fetched.topics:
            for partition, offset, _metadata, error_code in partitions:
                if error_code:
                    failed.add((topic, partition))
                elif offset >= 0:
                    current.add((topic, partition))
                    commits.append((group, topic, partition, offset, now_ms, -1, ""))
        # One batch per group: the orders one record at a time would take, without an OffsetCommit each.
        self.progress.records[OffsetCommit] += len(commits)
        self._storage.apply_batch(commits, list(itertools.islice(self._order, len(commits))), now_ms)
        for topic, partition in sorted(self._seen.get(group, set()) - current - failed):
            self._apply(OffsetTombstone(group, topic, partition), now_ms)
        self._seen[group] = current | failed
        if described is not None:
            for membership in _group_metadata(group, described.groups):
                self._apply(membership, now_ms)

    def _apply(self, record: OffsetTombstone | GroupMetadata, now_ms: int) -> None:
        self.progress.records[type(record)] += 1
        self._storage.apply(record, next(self._order), now_ms)

    def _count_failure(self, failure: BaseException) -> None:
        kind = type(failure).__name__
        self.progress.poll_errors[kind] += 1
        if kind not in self._logged_errors:
            self._logged_errors.add(kind)
            log.warning(
                "cluster %s: a group could not be polled: %s (logged once per error, counted in progress)",
                self.name,
                failure,
            )


def _raise_for(error_code: int, request: str) -> None:
    if error_code:
        raise for_code(error_code)(f"{request} failed")


def _group_metadata(group: str, described: list[Any]) -> list[GroupMetadata]:
    """DescribeGroups groups as the storage's membership records. Members are (member_id, [group_instance_id
    from v4,] client_id, client_host, metadata, assignment), hence indexing from the end."""
    found = []
    for error_code, group_id, _state, protocol_type, protocol, raw_members, *_ in described:
        if error_code != 0 or group_id != group:
            continue
        members = tuple(
            Member(
                member_id=m[0],
                client_id=m[-4],
                client_host=m[-3],
                assignment=decode_assignment(m[-1]) if protocol_type == _CONSUMER_PROTOCOL else (),
            )
            for m in raw_members
        )
        found.append(GroupMetadata(group, protocol_type, -1, protocol, None, members))
    return found
