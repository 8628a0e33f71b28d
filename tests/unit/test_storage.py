"""Storage: Burrow's window placement (burrow-semantics.md 2.5, vectors 10.2/10.3) and lagwatch's changes.

The ring vectors and the min-distance case are ported from Burrow's core/internal/storage/inmemory_test.go
(Apache-2.0). The property test checks the storage against a literal transcription of Burrow's container/ring
code (`_BurrowRing`).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.core.filters import NameFilter
from exporter.core.model import (
    Commit,
    CommitFields,
    ConsumerGroupAssignment,
    ConsumerGroupMember,
    ConsumerGroupMemberLeft,
    ConsumerGroupTopics,
    DecodeError,
    GroupMetadata,
    GroupSnapshot,
    GroupTombstone,
    Member,
    OffsetCommit,
    OffsetTombstone,
    PartitionSnapshot,
    Record,
    SkippedRecord,
    TopicPartitions,
)
from exporter.core.storage import DROP_REASONS, Storage

NOW = 1_700_000_000_000
"""Wall clock of every write unless a test says otherwise; commit timestamps are relative to it."""
T0 = NOW - 100_000
DAY = 86_400_000


def _storage(*, head: int | None = None, partitions: int = 1, **kwargs: object) -> Storage:
    storage = Storage("c1", **kwargs)  # type: ignore[arg-type]
    storage.set_topics({"t": partitions}, NOW)
    if head is not None:
        storage.add_head_offset("t", 0, head, NOW)
    return storage


def _commit(
    storage: Storage,
    offset: int,
    order: int,
    ts: int,
    *,
    group: str = "g",
    topic: str = "t",
    partition: int = 0,
    now: int = NOW,
) -> None:
    storage.apply(OffsetCommit(group, topic, partition, offset, ts), order, now)


def _partition(storage: Storage, group: str = "g", topic: str = "t", partition: int = 0) -> PartitionSnapshot:
    snapshot = storage.group_snapshot(group, NOW)
    assert snapshot is not None
    found = [p for p in snapshot.partitions if (p.topic, p.partition) == (topic, partition)]
    assert len(found) == 1
    return found[0]


def _stored(storage: Storage, group: str = "g") -> list[tuple[int, int, int, int | None]]:
    """The non-empty slots as (offset, order, timestamp relative to T0, lag), oldest first."""
    return [(c.offset, c.order, c.timestamp_ms - T0, c.lag) for c in _partition(storage, group).window if c]


# ------------------------------------------------------------------------------------------------------------
# Burrow's consumerOffsetTests (10.3): min-distance 1 s, intervals 10, timestamps relative to T0.

RING_VECTORS = [
    pytest.param(
        5000,
        [(1000, 1, 100_000), (2000, 2, 200_000), (3000, 3, 300_000), (4000, 4, 400_000), (5000, 5, 500_000)],
        [
            (1000, 1, 100_000, 4000),
            (2000, 2, 200_000, 3000),
            (3000, 3, 300_000, 2000),
            (4000, 4, 400_000, 1000),
            (5000, 5, 500_000, 0),
        ],
        id="0-append",
    ),
    pytest.param(
        5000,
        [(1000, 20, 100_000), (2000, 30, 200_000)]
        + [(off, order, 300_000) for off, order in [(3000, 15), (900, 14), (800, 13), (700, 12), (600, 11)]]
        + [(off, order, 300_000) for off, order in [(500, 10), (400, 9), (300, 8), (200, 7), (100, 6)]],
        [(off, order, 300_000, None) for off, order in [(300, 8), (400, 9), (500, 10), (600, 11), (700, 12)]]
        + [(off, order, 300_000, None) for off, order in [(800, 13), (900, 14), (3000, 15)]]
        + [(1000, 20, 100_000, 4000), (2000, 30, 200_000, 3000)],
        id="1-prepend-until-full",
    ),
    pytest.param(
        5000,
        [(1000, 20, 100_000), (2000, 30, 300_000), (3000, 40, 400_000), (1500, 25, 200_000)],
        [
            (1000, 20, 100_000, 4000),
            (1500, 25, 200_000, None),
            (2000, 30, 300_000, 3000),
            (3000, 40, 400_000, 2000),
        ],
        id="2-insert-between",
    ),
    pytest.param(
        10000,
        [(1000 * i, 10 * i, 100_000 * i) for i in range(1, 11)] + [(5500, 55, 550_000)],
        [(1000 * i, 10 * i, 100_000 * i, 10000 - 1000 * i) for i in range(2, 6)]
        + [(5500, 55, 550_000, None)]
        + [(1000 * i, 10 * i, 100_000 * i, 10000 - 1000 * i) for i in range(6, 11)],
        id="3-insert-into-full",
    ),
    pytest.param(
        10000,
        [(1000 * i, 10 * i, 100_000 * i) for i in range(1, 11)] + [(1500, 15, 150_000)],
        [(1500, 15, 150_000, None)]
        + [(1000 * i, 10 * i, 100_000 * i, 10000 - 1000 * i) for i in range(2, 11)],
        id="4-replace-oldest-of-full",
    ),
    pytest.param(
        10000,
        [(1000 * i, 10 * i, 100_000 * i) for i in range(1, 6)] + [(6000, 60, 500_001)],
        [(1000 * i, 10 * i, 100_000 * i, 10000 - 1000 * i) for i in range(1, 5)]
        + [(6000, 60, 500_000, 4000)],
        id="5-merge-into-newest",
    ),
    pytest.param(
        10000,
        [(1000 * i, 10 * i, 100_000 * i) for i in range(1, 6)] + [(4500, 45, 400_001)],
        [(1000 * i, 10 * i, 100_000 * i, 10000 - 1000 * i) for i in range(1, 4)]
        + [(4500, 45, 400_000, None), (5000, 50, 500_000, 5000)],
        id="6-merge-into-previous",
    ),
]


@pytest.mark.parametrize(("head", "inputs", "expected"), RING_VECTORS)
def test_burrow_ring_vectors(
    head: int, inputs: list[tuple[int, int, int]], expected: list[tuple[int, int, int, int | None]]
) -> None:
    storage = _storage(head=head, min_distance_ms=1000)
    for offset, order, ts in inputs:
        _commit(storage, offset, order, T0 + ts)
    assert _stored(storage) == expected
    window = _partition(storage).window
    assert len(window) == 10
    assert window[: 10 - len(expected)] == (None,) * (10 - len(expected))


def _burrow_fixture_group(storage: Storage, group: str, count: int, first_order: int = 10) -> None:
    for i in range(count):
        _commit(storage, 1000 + 100 * i, first_order + i, T0 + 10_000 * i, group=group)


def test_append_to_full_window_evicts_oldest() -> None:
    # TestInMemoryStorage_addConsumerOffset: 10 commits, then offset 2000 at T0+100 s.
    storage = _storage(head=4321, min_distance_ms=1000)
    _burrow_fixture_group(storage, "g", 10, first_order=500)
    _commit(storage, 2000, 1000, T0 + 100_000)
    assert _stored(storage) == [
        (1100 + 100 * i, 501 + i, 10_000 * (i + 1), 3221 - 100 * i) for i in range(9)
    ] + [(2000, 1000, 100_000, 2321)]


def test_min_distance_merge_keeps_the_older_timestamp() -> None:
    # TestInMemoryStorage_addConsumerOffset_MinDistance: 2000 at T0+90.001 s lands in the newest slot.
    storage = _storage(head=4321, min_distance_ms=1000)
    _burrow_fixture_group(storage, "g", 10, first_order=500)
    _commit(storage, 2000, 1000, T0 + 90_001, now=NOW + 5)
    window = _partition(storage).window
    assert _stored(storage) == [(1000 + 100 * i, 500 + i, 10_000 * i, 3321 - 100 * i) for i in range(9)] + [
        (2000, 1000, 90_000, 2321)
    ]
    newest = window[-1]
    assert newest is not None
    assert newest.observed_ms == NOW + 5


def test_zero_min_distance_merges_commits_with_earlier_timestamps() -> None:
    # Burrow compares `new.ts - prev.ts < min_distance`, which holds for a negative difference even at 0.
    storage = _storage(head=100)
    _commit(storage, 10, 1, T0 + 5000)
    _commit(storage, 20, 2, T0 + 4000)
    assert _stored(storage) == [(20, 2, 5000, 80)]


def test_duplicate_order_is_dropped() -> None:
    storage = _storage(head=100)
    _commit(storage, 10, 1, T0)
    _commit(storage, 20, 2, T0 + 10_000)
    _commit(storage, 99, 1, T0 + 20_000)
    _commit(storage, 98, 2, T0 + 20_000)
    assert _stored(storage) == [(10, 1, 0, 90), (20, 2, 10_000, 80)]
    assert storage.stats().commits_dropped["duplicate"] == 2


def test_commit_no_newer_than_a_full_windows_oldest_is_backfill() -> None:
    storage = _storage(head=100, intervals=2)
    for order in (5, 6, 5, 4):
        _commit(storage, order, order, T0 + order * 1000)
    assert _stored(storage) == [(5, 5, 5000, 95), (6, 6, 6000, 94)]
    assert storage.stats().commits_dropped["backfill"] == 2


# ------------------------------------------------------------------------------------------------------------
# Burrow's storage fixture (10.2): HEAD 4321, testgroup full, testgroup2 half full.


def test_burrow_fixture_snapshots() -> None:
    storage = _storage(head=4321)
    _burrow_fixture_group(storage, "testgroup", 10)
    _burrow_fixture_group(storage, "testgroup2", 5)
    full = [Commit(1000 + 100 * i, 10 + i, T0 + 10_000 * i, 3321 - 100 * i, NOW) for i in range(10)]
    assert storage.group_snapshot("testgroup", NOW) == GroupSnapshot(
        "c1", "testgroup", (PartitionSnapshot.of("t", 0, tuple(full), (4321,), 2421),), T0 + 90_000
    )
    assert storage.group_snapshot("testgroup2", NOW) == GroupSnapshot(
        "c1",
        "testgroup2",
        (PartitionSnapshot.of("t", 0, (None,) * 5 + tuple(full[:5]), (4321,), 2921),),
        T0 + 40_000,
    )
    assert storage.group_snapshot("nogroup", NOW) is None
    assert storage.groups() == ["testgroup", "testgroup2"]
    assert storage.groups_for_topic("t") == ["testgroup", "testgroup2"]


def test_current_lag_uses_newest_head_and_is_never_negative() -> None:
    storage = _storage(head=1000)
    _commit(storage, 900, 1, T0)
    storage.add_head_offset("t", 0, 1500, NOW + 1)
    assert _partition(storage).current_lag == 600
    _commit(storage, 2000, 2, T0 + 1000)
    assert _stored(storage) == [(900, 1, 0, 100), (2000, 2, 1000, 0)]
    assert _partition(storage).current_lag == 0


# ------------------------------------------------------------------------------------------------------------
# HEAD offsets


def test_head_history_keeps_the_last_intervals_oldest_first() -> None:
    storage = Storage("c1", intervals=3)
    storage.set_topics({"t": 2}, NOW)
    for i in range(5):
        storage.add_head_offset("t", 1, 100 + i, NOW + i)
    assert storage.head_history("t", 1) == ((102, NOW + 2), (103, NOW + 3), (104, NOW + 4))
    assert storage.head_history("t", 0) == ()
    assert storage.head_history("t", 2) == ()
    assert storage.head_offsets("t") == (None, 104)
    assert storage.head_offsets("other") is None


def test_head_for_unknown_topic_or_partition_is_ignored() -> None:
    storage = _storage()
    storage.add_head_offset("other", 0, 5, NOW)
    storage.add_head_offset("t", 1, 5, NOW)
    storage.add_head_offset("t", -1, 5, NOW)
    assert storage.topics() == ["t"]
    assert storage.head_offsets("t") == (None,)


def test_partition_counts_only_grow() -> None:
    storage = _storage(partitions=3)
    storage.add_head_offset("t", 2, 7, NOW)
    assert storage.set_topics({"t": 2, "u": 1}, NOW) == []
    assert storage.partition_count("t") == 3
    assert storage.set_topics({"t": 5, "u": 1}, NOW) == []
    assert storage.partition_count("t") == 5
    assert storage.head_offsets("t") == (None, None, 7, None, None)
    assert storage.topics() == ["t", "u"]
    assert storage.partition_count("missing") is None


def test_broker_offsets_in_snapshot_are_the_head_history() -> None:
    storage = _storage(head=10, intervals=3)
    _commit(storage, 5, 1, T0)
    for head in (20, 30, 40):
        storage.add_head_offset("t", 0, head, NOW)
    part = _partition(storage)
    assert part.broker_offsets == (20, 30, 40)
    assert part.current_lag == 35


def test_snapshot_hands_the_window_on_as_a_copy_in_the_storage_layout() -> None:
    # An array slice, not a list: a round reads 100,000 windows, and a caught-up partition's rules read
    # none of their integers. A copy: later commits must not change a snapshot taken before them.
    storage = _storage(head=100, intervals=3)
    _commit(storage, 5, 1, T0)
    _commit(storage, 7, 2, T0 + 60_000)
    part = _partition(storage)
    assert isinstance(part.commits, array)
    assert part.commits.typecode == "q"
    assert list(part.commits) == [5, 1, T0, NOW, 95, 7, 2, T0 + 60_000, NOW, 93]
    _commit(storage, 9, 3, T0 + 120_000)
    _commit(storage, 11, 4, T0 + 180_000)
    assert list(part.commits) == [5, 1, T0, NOW, 95, 7, 2, T0 + 60_000, NOW, 93]
    assert part.window == (None, Commit(5, 1, T0, 95, NOW), Commit(7, 2, T0 + 60_000, 93, NOW))


# ------------------------------------------------------------------------------------------------------------
# Improvement: commits before the HEAD (or the metadata) is known are kept with unknown lag.


def test_commit_before_head_is_kept_with_unknown_lag() -> None:
    storage = _storage()
    _commit(storage, 100, 1, T0)
    part = _partition(storage)
    assert part.window[-1] == Commit(100, 1, T0, None, NOW)
    assert part.current_lag is None
    assert part.broker_offsets == ()
    storage.add_head_offset("t", 0, 250, NOW)
    assert _partition(storage).current_lag == 150
    _commit(storage, 200, 2, T0 + 1000)
    assert _stored(storage) == [(100, 1, 0, None), (200, 2, 1000, 50)]


def test_commits_before_first_metadata_are_kept_and_padded_later() -> None:
    storage = Storage("c1")
    _commit(storage, 100, 1, T0, partition=1)
    snapshot = storage.group_snapshot("g", NOW)
    assert snapshot is not None
    assert [(p.partition, len(p.window)) for p in snapshot.partitions] == [(0, 0), (1, 10)]
    assert storage.set_topics({"t": 3}, NOW) == []
    snapshot = storage.group_snapshot("g", NOW)
    assert snapshot is not None
    assert [(p.partition, len(p.window)) for p in snapshot.partitions] == [(0, 0), (1, 10), (2, 0)]
    assert storage.stats().group_partitions == 3


def test_first_metadata_deletes_topics_only_groups_knew() -> None:
    storage = Storage("c1")
    _commit(storage, 100, 1, T0, topic="gone")
    _commit(storage, 100, 2, T0, topic="t")
    assert storage.set_topics({"t": 1}, NOW) == ["gone"]
    assert [p.topic for p in _snapshot(storage).partitions] == ["t"]


def test_partitions_beyond_the_known_count_are_dropped() -> None:
    storage = _storage(partitions=2)
    _commit(storage, 1, 2, T0, partition=2)
    _commit(storage, 1, 3, T0, partition=-1)
    assert storage.groups() == []
    assert storage.stats().commits_dropped["unknown_partition"] == 2


def test_commits_for_a_topic_newer_than_the_metadata_are_kept_until_metadata_decides() -> None:
    storage = _storage(partitions=2)
    assert storage.unconfirmed_topics() == []
    _commit(storage, 5, 1, T0, topic="new")
    _commit(storage, 7, 2, T0, topic="dead", group="ghost")
    assert storage.unconfirmed_topics() == ["dead", "new"]
    assert [(p.topic, p.window[-1]) for p in _snapshot(storage).partitions] == [
        ("new", Commit(5, 1, T0, None, NOW))
    ]
    assert storage.set_topics({"t": 2, "new": 2}, NOW) == ["dead"]
    assert storage.unconfirmed_topics() == []
    assert storage.groups() == ["g"]
    assert [(p.topic, p.partition, len(p.window)) for p in _snapshot(storage).partitions] == [
        ("new", 0, 10),
        ("new", 1, 0),
    ]


# ------------------------------------------------------------------------------------------------------------
# Placeholders (Burrow 2.4) and owned-but-never-committed partitions (Burrow 1.7)


def test_commit_creates_placeholders_for_the_whole_topic() -> None:
    storage = _storage(partitions=4)
    storage.add_head_offset("t", 0, 50, NOW)
    _commit(storage, 10, 1, T0, partition=2)
    snapshot = storage.group_snapshot("g", NOW)
    assert snapshot is not None
    assert [(p.partition, len(p.window), p.broker_offsets, p.current_lag) for p in snapshot.partitions] == [
        (0, 0, (50,), None),
        (1, 0, (), None),
        (2, 10, (), None),
        (3, 0, (), None),
    ]
    assert storage.stats().group_partitions == 4


def test_group_list_grows_only_when_a_commit_lands_beyond_it() -> None:
    storage = _storage(partitions=2)
    _commit(storage, 10, 1, T0, partition=0)
    storage.set_topics({"t": 4}, NOW)
    _commit(storage, 11, 2, T0 + 1, partition=1)
    assert len(_snapshot(storage).partitions) == 2
    _commit(storage, 12, 3, T0 + 2, partition=3)
    assert len(_snapshot(storage).partitions) == 4


def _snapshot(storage: Storage, group: str = "g") -> GroupSnapshot:
    snapshot = storage.group_snapshot(group, NOW)
    assert snapshot is not None
    return snapshot


def _metadata(group: str, *members: Member, protocol_type: str = "consumer") -> GroupMetadata:
    return GroupMetadata(group, protocol_type, 1, "range", members[0].member_id if members else None, members)


def test_group_metadata_sets_owners_and_empty_windows() -> None:
    storage = _storage(partitions=3)
    member = Member("m-1", "client-a", "/10.0.0.5", assignment=(TopicPartitions("t", (1,)),))
    storage.apply(_metadata("g", member), 7, NOW)
    snapshot = _snapshot(storage)
    assert snapshot.last_commit_ms == 0
    assert [(p.partition, p.window, p.owner, p.client_id, p.member_id) for p in snapshot.partitions] == [
        (0, (), "", "", ""),
        (1, (None,) * 10, "/10.0.0.5", "client-a", "m-1"),
        (2, (), "", "", ""),
    ]


def test_an_assignment_for_a_topic_newer_than_the_metadata_is_kept_until_metadata_decides() -> None:
    # A classic group writes its assignment once per rebalance: dropping it because the topic is newer than
    # the last metadata refresh would lose the owners until the next rebalance.
    storage = _storage(partitions=1)
    member = Member("m-1", "client-a", "/10.0.0.5", assignment=(TopicPartitions("new", (1,)),))
    ghost = Member("m-2", "client-b", "/10.0.0.6", assignment=(TopicPartitions("dead", (0,)),))
    storage.apply(_metadata("g", member), 7, NOW)
    storage.apply(_metadata("ghost", ghost), 8, NOW)
    assert storage.unconfirmed_topics() == ["dead", "new"]
    assert storage.set_topics({"t": 1, "new": 3}, NOW) == ["dead"]
    assert storage.groups() == ["g"]
    assert [(p.topic, p.partition, p.owner, p.client_id) for p in _snapshot(storage).partitions] == [
        ("new", 0, "", ""),
        ("new", 1, "/10.0.0.5", "client-a"),
        ("new", 2, "", ""),
    ]


def test_empty_member_list_clears_owners_but_unassigned_partitions_keep_theirs() -> None:
    storage = _storage(partitions=2)
    a = Member("m-1", "client-a", "/h1", assignment=(TopicPartitions("t", (0, 1)),))
    storage.apply(_metadata("g", a), 1, NOW)
    b = Member("m-2", "client-b", "/h2", assignment=(TopicPartitions("t", (1,)),))
    storage.apply(_metadata("g", b), 2, NOW)
    assert [p.owner for p in _snapshot(storage).partitions] == ["/h1", "/h2"]
    storage.apply(_metadata("g"), 3, NOW)
    assert [(p.owner, p.client_id, p.member_id) for p in _snapshot(storage).partitions] == [("", "", "")] * 2


def test_non_consumer_group_metadata_is_ignored() -> None:
    storage = _storage()
    member = Member("m-1", "connect", "/h", assignment=(TopicPartitions("t", (0,)),))
    storage.apply(_metadata("connect-cluster", member, protocol_type="connect"), 1, NOW)
    assert storage.groups() == []


# ------------------------------------------------------------------------------------------------------------
# Expiry (improvement: eager), deletion, tombstones


def test_commits_older_than_expire_group_are_dropped() -> None:
    storage = _storage(head=10, expire_group_ms=DAY)
    _commit(storage, 1, 1, NOW - DAY - 1)
    _commit(storage, 1, 2, NOW - DAY)
    assert _stored(storage) == [(1, 2, DAY * -1 + 100_000, 9)]
    assert storage.stats().commits_dropped["expired"] == 1


def test_expire_removes_stale_groups_at_once() -> None:
    storage = _storage(head=10, expire_group_ms=DAY)
    _commit(storage, 1, 1, NOW - 1000, group="old")
    _commit(storage, 1, 2, NOW, group="new")
    assert storage.expire(NOW + DAY - 1000) == []
    assert storage.expire(NOW + DAY - 999) == ["old"]
    assert storage.groups() == ["new"]
    assert storage.groups_for_topic("t") == ["new"]
    assert storage.stats().group_partitions == 1


def test_snapshot_applies_burrows_lazy_expiry() -> None:
    storage = _storage(head=10, expire_group_ms=DAY)
    _commit(storage, 1, 1, NOW)
    assert storage.group_snapshot("g", NOW + DAY) is not None
    assert storage.group_snapshot("g", NOW + DAY + 1) is None
    assert storage.groups() == ["g"]
    # Time is the caller's: a later write moves no clock of the storage's own.
    storage.add_head_offset("t", 0, 11, NOW + DAY + 1)
    assert storage.group_snapshot("g", NOW + DAY) is not None


def test_group_without_commits_expires_from_first_sighting() -> None:
    storage = _storage(expire_group_ms=DAY)
    member = Member("m-1", "client-a", "/h", assignment=(TopicPartitions("t", (0,)),))
    storage.apply(_metadata("g", member), 1, NOW)
    assert storage.expire(NOW + DAY) == []
    assert storage.expire(NOW + DAY + 1) == ["g"]


def test_last_commit_is_the_newest_append_only() -> None:
    storage = _storage(head=100)
    _commit(storage, 50, 10, T0 + 5000)
    _commit(storage, 40, 5, T0 + 9000)
    assert _snapshot(storage).last_commit_ms == T0 + 5000
    _commit(storage, 60, 11, T0 + 4000)
    assert _snapshot(storage).last_commit_ms == T0 + 4000


def test_topic_deletion_cascades_to_every_group() -> None:
    storage = Storage("c1")
    storage.set_topics({"a": 1, "b": 2}, NOW)
    _commit(storage, 1, 1, T0, group="only-a", topic="a")
    _commit(storage, 1, 2, T0, group="both", topic="a")
    _commit(storage, 1, 3, T0, group="both", topic="b")
    assert storage.set_topics({"b": 2}, NOW) == ["a"]
    assert storage.topics() == ["b"]
    assert storage.head_offsets("a") is None
    assert storage.groups_for_topic("a") == []
    assert [(p.topic, p.partition) for p in _snapshot(storage, "both").partitions] == [("b", 0), ("b", 1)]
    assert _snapshot(storage, "only-a") == GroupSnapshot("c1", "only-a", (), T0)
    stats = storage.stats()
    assert (stats.groups, stats.group_partitions, stats.topics, stats.partitions) == (2, 2, 1, 2)


def test_offset_tombstone_removes_partition_then_topic_then_group() -> None:
    storage = Storage("c1")
    storage.set_topics({"a": 2, "b": 1}, NOW)
    _commit(storage, 1, 1, T0, topic="a", partition=0)
    _commit(storage, 1, 2, T0, topic="a", partition=1)
    _commit(storage, 1, 3, T0, topic="b", partition=0)
    storage.apply(OffsetTombstone("g", "a", 0), 4, NOW)
    assert [(p.topic, p.partition, len(p.window)) for p in _snapshot(storage).partitions] == [
        ("a", 0, 0),
        ("a", 1, 10),
        ("b", 0, 10),
    ]
    storage.apply(OffsetTombstone("g", "a", 1), 5, NOW)
    assert [(p.topic, p.partition) for p in _snapshot(storage).partitions] == [("b", 0)]
    assert storage.groups_for_topic("a") == []
    storage.apply(OffsetTombstone("g", "b", 7), 6, NOW)
    storage.apply(OffsetTombstone("other", "b", 0), 7, NOW)
    assert storage.groups() == ["g"]
    storage.apply(OffsetTombstone("g", "b", 0), 8, NOW)
    assert storage.groups() == []
    assert storage.stats().group_partitions == 0


def test_offset_tombstone_leaves_the_other_windows_of_the_topic_as_they_were() -> None:
    storage = Storage("c1", intervals=3)
    storage.set_topics({"a": 4}, NOW)
    for partition in range(4):
        storage.add_head_offset("a", partition, 1000, NOW)
    order = 0
    for slot in range(3):
        for partition in (2, 0, 3):
            order += 1
            _commit(storage, 100 * partition + slot, order, T0 + 1000 * slot, topic="a", partition=partition)
    before = {p.partition: p for p in _snapshot(storage).partitions}
    storage.apply(OffsetTombstone("g", "a", 2), order + 1, NOW)
    after = {p.partition: p for p in _snapshot(storage).partitions}
    assert after[2].window == ()
    assert after[1].window == ()
    assert (after[0], after[3]) == (before[0], before[3])
    _commit(storage, 777, order + 2, T0 + 5000, topic="a", partition=2)
    assert [c.offset if c else None for c in _partition(storage, topic="a", partition=2).window] == [
        None,
        None,
        777,
    ]
    assert (_partition(storage, topic="a", partition=0), _partition(storage, topic="a", partition=3)) == (
        before[0],
        before[3],
    )


def test_windows_of_a_many_partition_topic_stay_apart_through_growth_and_tombstones() -> None:
    # 400 windows of 11 integers: past the size up to which a group-topic's windows are kept exactly packed.
    storage = Storage("c1", intervals=2)
    storage.set_topics({"big": 400}, NOW)
    order = 0
    for slot in range(2):
        for partition in sorted(range(400), key=lambda p: (p * 7919) % 400):
            order += 1
            _commit(storage, 10 * partition + slot, order, T0 + 1000 * slot, topic="big", partition=partition)
    for partition in range(0, 400, 3):
        order += 1
        storage.apply(OffsetTombstone("g", "big", partition), order, NOW)
    expected = {p: [] if p % 3 == 0 else [10 * p, 10 * p + 1] for p in range(400)}
    found = {p.partition: [c.offset for c in p.window if c] for p in _snapshot(storage).partitions}
    assert found == expected
    assert storage.stats().group_partitions == 400


def test_group_tombstone_deletes_the_group() -> None:
    storage = _storage(head=10)
    _commit(storage, 1, 1, T0)
    storage.apply(GroupTombstone("g"), 2, NOW)
    assert storage.groups() == []
    assert storage.group_snapshot("g", NOW) is None


def test_delete_group_whole_or_one_topic() -> None:
    storage = Storage("c1")
    storage.set_topics({"a": 1, "b": 1}, NOW)
    _commit(storage, 1, 1, T0, topic="a")
    _commit(storage, 1, 2, T0, topic="b")
    assert storage.delete_group("g", "missing") is False
    assert storage.delete_group("g", "a") is True
    assert [p.topic for p in _snapshot(storage).partitions] == ["b"]
    assert storage.delete_group("g", "b") is True
    assert storage.groups() == []
    _commit(storage, 1, 3, T0, topic="a")
    assert storage.delete_group("g") is True
    assert storage.delete_group("g") is False
    assert storage.groups() == []


def test_skipped_and_malformed_records_are_ignored() -> None:
    storage = _storage(head=10)
    storage.apply(SkippedRecord(10), 1, NOW)
    storage.apply(DecodeError(0, "short"), 2, NOW)
    assert storage.groups() == []
    assert storage.stats().commits_stored == 0


# ------------------------------------------------------------------------------------------------------------
# Allow/deny lists at ingest


def test_group_and_topic_filters_drop_at_ingest() -> None:
    storage = Storage(
        "c1", group_filter=NameFilter(deny="^console-"), topic_filter=NameFilter(allow="^orders", deny="dlq")
    )
    assert storage.set_topics({"orders": 1, "orders-dlq": 1, "payments": 1}, NOW) == []
    assert storage.topics() == ["orders"]
    _commit(storage, 1, 1, T0, group="console-123", topic="orders")
    _commit(storage, 1, 2, T0, topic="payments")
    _commit(storage, 1, 3, T0, topic="orders-dlq")
    _commit(storage, 1, 4, T0, topic="orders")
    member = Member("m", "c", "/h", assignment=(TopicPartitions("orders", (0,)),))
    storage.apply(_metadata("console-9", member), 5, NOW)
    storage.apply(ConsumerGroupMember("console-9", "m", "c", "/h"), 6, NOW)
    assert storage.groups() == ["g"]
    stats = storage.stats()
    assert stats.commits_stored == 1
    assert stats.records_filtered == 2
    assert stats.commits_dropped == dict.fromkeys(DROP_REASONS, 0) | {
        "group_filtered": 1,
        "topic_filtered": 2,
    }


# ------------------------------------------------------------------------------------------------------------
# KIP-848 owner attribution

TOPIC_ID = "6Ze4JwEUQk2Z1mB4sQq0cQ"


def _kip848_storage() -> Storage:
    storage = Storage("c1")
    storage.set_topics({"orders": 3}, NOW)
    return storage


def _owners(storage: Storage, group: str = "g") -> list[tuple[int, str, str, str]]:
    return [(p.partition, p.owner, p.client_id, p.member_id) for p in _snapshot(storage, group).partitions]


def test_kip848_assignment_by_topic_id_sets_owners() -> None:
    storage = _kip848_storage()
    storage.apply(ConsumerGroupTopics("g", ((TOPIC_ID, "orders"),)), 1, NOW)
    storage.apply(ConsumerGroupMember("g", "m-a", "client-a", "/10.0.0.1"), 2, NOW)
    storage.apply(
        ConsumerGroupAssignment("g", "m-a", (TopicPartitions(TOPIC_ID, (0, 2), by_id=True),)), 3, NOW
    )
    assert _owners(storage) == [
        (0, "/10.0.0.1", "client-a", "m-a"),
        (1, "", "", ""),
        (2, "/10.0.0.1", "client-a", "m-a"),
    ]
    assert _snapshot(storage).partitions[0].window == (None,) * 10


def test_kip848_member_record_after_assignment_fills_in_client() -> None:
    storage = _kip848_storage()
    storage.set_topic_ids({TOPIC_ID: "orders"}, NOW)
    storage.apply(ConsumerGroupAssignment("g", "m-a", (TopicPartitions(TOPIC_ID, (1,), by_id=True),)), 1, NOW)
    assert _owners(storage)[1] == (1, "", "", "m-a")
    storage.apply(ConsumerGroupMember("g", "m-a", "client-a", "/h"), 2, NOW)
    assert _owners(storage)[1] == (1, "/h", "client-a", "m-a")


@pytest.mark.parametrize("new_owner_first", [True, False])
def test_kip848_partition_moving_between_members_in_either_order(new_owner_first: bool) -> None:
    storage = _kip848_storage()
    storage.set_topic_ids({TOPIC_ID: "orders"}, NOW)
    storage.apply(ConsumerGroupMember("g", "m-a", "client-a", "/a"), 1, NOW)
    storage.apply(ConsumerGroupMember("g", "m-b", "client-b", "/b"), 2, NOW)
    storage.apply(
        ConsumerGroupAssignment("g", "m-a", (TopicPartitions(TOPIC_ID, (0, 1), by_id=True),)), 3, NOW
    )
    to_b = ConsumerGroupAssignment("g", "m-b", (TopicPartitions(TOPIC_ID, (1,), by_id=True),))
    from_a = ConsumerGroupAssignment("g", "m-a", (TopicPartitions(TOPIC_ID, (0,), by_id=True),))
    for order, record in enumerate((to_b, from_a) if new_owner_first else (from_a, to_b), start=4):
        storage.apply(record, order, NOW)
    assert _owners(storage)[:2] == [(0, "/a", "client-a", "m-a"), (1, "/b", "client-b", "m-b")]


def test_kip848_member_leaving_clears_its_partitions() -> None:
    storage = _kip848_storage()
    storage.set_topic_ids({TOPIC_ID: "orders"}, NOW)
    storage.apply(ConsumerGroupMember("g", "m-a", "client-a", "/a"), 1, NOW)
    storage.apply(ConsumerGroupAssignment("g", "m-a", (TopicPartitions(TOPIC_ID, (0,), by_id=True),)), 2, NOW)
    storage.apply(ConsumerGroupMemberLeft("g", "m-a"), 3, NOW)
    assert _owners(storage)[0] == (0, "", "", "")
    assert _snapshot(storage).partitions[0].window == (None,) * 10


def test_kip848_unknown_topic_id_resolves_when_metadata_brings_it() -> None:
    storage = _kip848_storage()
    storage.apply(ConsumerGroupMember("g", "m-a", "client-a", "/a"), 1, NOW)
    storage.apply(ConsumerGroupAssignment("g", "m-a", (TopicPartitions(TOPIC_ID, (2,), by_id=True),)), 2, NOW)
    assert storage.groups() == []
    storage.set_topic_ids({TOPIC_ID: "orders"}, NOW)
    assert _owners(storage)[2] == (2, "/a", "client-a", "m-a")


def test_kip848_empty_assignment_removes_owners() -> None:
    storage = _kip848_storage()
    storage.set_topic_ids({TOPIC_ID: "orders"}, NOW)
    storage.apply(ConsumerGroupMember("g", "m-a", "client-a", "/a"), 1, NOW)
    storage.apply(ConsumerGroupAssignment("g", "m-a", (TopicPartitions(TOPIC_ID, (0,), by_id=True),)), 2, NOW)
    storage.apply(ConsumerGroupAssignment("g", "m-a", ()), 3, NOW)
    assert _owners(storage)[0] == (0, "", "", "")


# ------------------------------------------------------------------------------------------------------------
# Versions for the evaluator cache


def test_group_version_moves_with_everything_that_feeds_evaluation() -> None:
    storage = Storage("c1")
    storage.set_topics({"t": 1, "u": 1}, NOW)
    _commit(storage, 1, 1, T0)
    seen = [storage.group_version("g")]

    def changed() -> bool:
        seen.append(storage.group_version("g"))
        return seen[-1] > seen[-2]

    _commit(storage, 2, 2, T0 + 1)
    assert changed()
    _commit(storage, 2, 2, T0 + 1)  # duplicate: dropped
    assert not changed()
    storage.add_head_offset("u", 0, 5, NOW)
    assert not changed()
    storage.add_head_offset("t", 0, 5, NOW)
    assert changed()
    member = Member("m", "c", "/h", assignment=(TopicPartitions("t", (0,)),))
    storage.apply(_metadata("g", member), 3, NOW)
    assert changed()
    storage.apply(_metadata("g", member), 4, NOW)
    assert not changed()
    storage.delete_group("g")
    assert changed()


def test_unknown_group_version_is_current() -> None:
    storage = _storage(head=1)
    _commit(storage, 1, 1, T0)
    before = storage.group_version("g")
    storage.apply(GroupTombstone("g"), 2, NOW)
    assert storage.group_version("g") > before


def test_invalid_configuration_is_rejected() -> None:
    with pytest.raises(ValueError, match="intervals"):
        Storage("c1", intervals=0)
    with pytest.raises(ValueError, match="expire_group_ms"):
        Storage("c1", expire_group_ms=0)


def test_properties() -> None:
    storage = Storage("c9", intervals=4)
    assert (storage.cluster, storage.intervals) == ("c9", 4)


# ------------------------------------------------------------------------------------------------------------
# Property test: the storage agrees with Burrow's ring code, transcribed literally.


@dataclass
class _Slot:
    offset: int
    order: int
    ts: int
    lag: int | None


class _BurrowRing:
    """inmemory.go's findConsumerOffsetDestination / mergeFrequentCommitIntoPrevious / storeConsumerOffset on
    a circular list of slots; `ptr` is the ring pointer (oldest entry, or next write position)."""

    def __init__(self, size: int, min_distance: int) -> None:
        self.slots: list[_Slot | None] = [None] * size
        self.ptr = 0
        self.min_distance = min_distance

    def _prev(self, i: int) -> int:
        return (i - 1) % len(self.slots)

    def add(self, offset: int, order: int, ts: int, head: int | None) -> None:
        slots, ring = self.slots, self.ptr
        insert: int | None = None
        extend: int | None = ring
        prev_slot = self._prev(ring)
        previous = slots[prev_slot]
        if previous is not None:
            oldest = slots[ring]
            if oldest is not None and oldest.order >= order:
                return
            if previous.order >= order:
                dest = ring
                while True:
                    prev_slot = self._prev(dest)
                    found = slots[prev_slot]
                    if found is None or prev_slot == ring:
                        insert, extend = prev_slot, None
                        break
                    if found.order < order:
                        insert, extend = dest, ring
                        break
                    if found.order == order:
                        return
                    dest = prev_slot
        lag = None
        if insert is None and head is not None:
            lag = max(head - offset, 0)
        target = insert if insert is not None else extend
        assert target is not None
        before = slots[self._prev(target)]
        if before is not None and before.order < order and ts - before.ts < self.min_distance:
            ts = before.ts
            insert, extend = self._prev(target), None
        if insert is not None and extend is not None:
            copy_to = extend
            while copy_to != insert:
                copy_from = self._prev(copy_to)
                slots[copy_to] = slots[copy_from]
                slots[copy_from] = None
                copy_to = copy_from
        target = insert if insert is not None else extend
        assert target is not None
        slots[target] = _Slot(offset, order, ts, lag)
        if extend is not None:
            self.ptr = (extend + 1) % len(slots)

    def window(self) -> list[tuple[int, int, int, int | None] | None]:
        size = len(self.slots)
        read = [self.slots[(self.ptr + i) % size] for i in range(size)]
        return [None if s is None else (s.offset, s.order, s.ts, s.lag) for s in read]


_commits_strategy = st.lists(
    st.tuples(
        st.integers(0, 2000),  # offset
        st.integers(0, 40),  # order: small range, so duplicates and out-of-order commits are common
        st.integers(-3000, 3000),  # timestamp relative to T0
        st.one_of(st.none(), st.integers(0, 2500)),  # HEAD before this commit, None = unchanged
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(
    intervals=st.integers(1, 6),
    min_distance=st.sampled_from([0, 1, 500, 1000]),
    commits=_commits_strategy,
)
def test_placement_matches_burrow_ring(
    intervals: int, min_distance: int, commits: list[tuple[int, int, int, int | None]]
) -> None:
    storage = Storage("c1", intervals=intervals, min_distance_ms=min_distance)
    storage.set_topics({"t": 1}, NOW)
    reference = _BurrowRing(intervals, min_distance)
    head: int | None = None
    for offset, order, ts, new_head in commits:
        if new_head is not None:
            head = new_head
            storage.add_head_offset("t", 0, head, NOW)
        reference.add(offset, order, T0 + ts, head)
        _commit(storage, offset, order, T0 + ts)
    if not commits:
        assert storage.groups() == []
        return
    part = _partition(storage)
    assert [None if c is None else (c.offset, c.order, c.timestamp_ms, c.lag) for c in part.window] == (
        reference.window()
    )
    stored = [c for c in part.window if c is not None]
    assert len(part.window) == intervals
    assert [c.order for c in stored] == sorted({c.order for c in stored})
    assert part.window[: intervals - len(stored)] == (None,) * (intervals - len(stored))
    if head is None:
        assert part.current_lag is None
    else:
        assert part.current_lag == max(head - stored[-1].offset, 0)


_operations = st.lists(
    st.one_of(
        st.tuples(st.just("commit"), st.sampled_from("ab"), st.sampled_from("xyz"), st.integers(-1, 4)),
        st.tuples(st.just("tombstone"), st.sampled_from("ab"), st.sampled_from("xyz"), st.integers(0, 3)),
        st.tuples(
            st.just("topics"), st.sampled_from(["x", "xy", "xyz", "yz"]), st.integers(1, 4), st.just(0)
        ),
        st.tuples(st.just("delete"), st.sampled_from("ab"), st.sampled_from(["x", ""]), st.just(0)),
        st.tuples(st.just("head"), st.just(""), st.sampled_from("xyz"), st.integers(0, 3)),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(operations=_operations)
def test_structure_stays_consistent(operations: list[tuple[str, str, str, int]]) -> None:
    storage = Storage("c1", intervals=3)
    for order, (kind, group, topic, number) in enumerate(operations):
        if kind == "commit":
            _commit(storage, 100 - order, order, T0 + order, group=group, topic=topic, partition=number)
        elif kind == "tombstone":
            storage.apply(OffsetTombstone(group, topic, number), order, NOW)
        elif kind == "topics":
            storage.set_topics(dict.fromkeys(group, number), NOW)
        elif kind == "delete":
            storage.delete_group(group, topic or None)
        else:
            storage.add_head_offset(topic, number, 50 + order, NOW)
    snapshots = [_snapshot(storage, name) for name in storage.groups()]
    stats = storage.stats()
    assert stats.groups == len(snapshots)
    assert stats.group_partitions == sum(len(s.partitions) for s in snapshots)
    for snapshot in snapshots:
        keys = [(p.topic, p.partition) for p in snapshot.partitions]
        assert keys == sorted(set(keys))
        for part in snapshot.partitions:
            assert snapshot.group in storage.groups_for_topic(part.topic)
            assert part.current_lag is None or part.current_lag >= 0
            assert len(part.window) in (0, 3)
    for topic in "xyz":
        assert set(storage.groups_for_topic(topic)) == {
            s.group for s in snapshots if any(p.topic == topic for p in s.partitions)
        }


_expiry_operations = st.lists(
    st.one_of(
        st.tuples(st.sampled_from("abc"), st.integers(-150, 50)),  # commit at now + delta
        st.tuples(st.just(""), st.integers(0, 80)),  # clock moves forward, then expire
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(operations=_expiry_operations)
def test_expire_removes_exactly_the_groups_lazy_expiry_hides(operations: list[tuple[str, int]]) -> None:
    storage = _storage(head=10**6, expire_group_ms=100)
    now = NOW
    for order, (group, delta) in enumerate(operations):
        if group:
            _commit(storage, order, order, now + delta, group=group, now=now)
            continue
        now += delta
        due = [name for name in storage.groups() if storage.group_snapshot(name, now) is None]
        assert storage.expire(now) == due
        assert set(due).isdisjoint(storage.groups())
        assert all(storage.group_snapshot(name, now) is not None for name in storage.groups())


def test_an_idle_partitions_repeated_head_keeps_its_groups_version() -> None:
    storage = _storage(intervals=3)
    _commit(storage, 100, 1, T0)
    for i in range(2):
        storage.add_head_offset("t", 0, 100, NOW + i)
    before = storage.group_version("g")
    storage.add_head_offset("t", 0, 100, NOW + 2)
    assert storage.group_version("g") > before
    full = storage.group_version("g")
    storage.add_head_offset("t", 0, 100, NOW + 3)
    assert storage.group_version("g") == full
    storage.add_head_offset("t", 0, 101, NOW + 4)
    assert storage.group_version("g") > full


# ------------------------------------------------------------------------------------------------------------
# apply_batch: the replay's path must give exactly what applying one record at a time gives. `apply` passes
# an OffsetCommit through apply_batch as a batch of one, so what differs is what a batch carries from one
# record to the next (the group-topic the previous commit resolved): runs of one group-topic, other records in
# between, filters, expiry, groups created and removed mid-batch.

_EXPIRE_MS = 1_000


@st.composite
def _batch_record(draw: st.DrawFn) -> CommitFields | Record:
    group = draw(st.sampled_from(["a", "b", "c-denied"]))
    topic = draw(st.sampled_from(["x", "y", "z", "w-denied"]))
    partition = draw(st.integers(-1, 4))
    match draw(st.sampled_from(["commit"] * 6 + ["record", "tombstone", "group", "metadata", "other"])):
        case "commit" | "record" as form:
            # Timestamps out of order, some older than expire_group.
            fields = (
                group,
                topic,
                partition,
                draw(st.integers(0, 200)),
                NOW + draw(st.integers(-1_200, 50)),
                -1,
                "",
            )
            return fields if form == "commit" else OffsetCommit(*fields)
        case "tombstone":
            return OffsetTombstone(group, topic, partition)
        case "group":
            return GroupTombstone(group)
        case "metadata":
            assignment = (TopicPartitions(topic, (0, max(partition, 1))),)
            return _metadata(group, Member("m1", "client", "/10.0.0.1", assignment=assignment))
        case _:
            return draw(st.sampled_from([SkippedRecord(6), DecodeError(1, "key: truncated int32 at byte 9")]))


_batch_steps = st.lists(
    st.one_of(
        st.tuples(st.just("batch"), st.lists(st.tuples(_batch_record(), st.integers(-2, 3)), max_size=25)),
        st.tuples(st.just("topics"), st.sampled_from([{"x": 2}, {"x": 3, "y": 1}, {"x": 4, "y": 2, "z": 5}])),
        st.tuples(st.just("delete"), st.sampled_from([("a", None), ("b", "x"), ("a", "y")])),
        st.tuples(st.just("head"), st.tuples(st.sampled_from("xyz"), st.integers(0, 3), st.integers(0, 300))),
        st.tuples(st.just("replay_heads"), st.booleans()),
    ),
    max_size=12,
)


def _then(topic: str, partition: int, ts: int) -> int | None:
    return None if partition == 2 else 150 + ts % 7


def _apply_step(storage: Storage, kind: str, argument: object) -> None:
    """A step of `_batch_steps` other than a batch."""
    match kind:
        case "topics":
            storage.set_topics(argument, NOW)  # type: ignore[arg-type]
        case "delete":
            storage.delete_group(*argument)  # type: ignore[misc]
        case "head":
            storage.add_head_offset(*argument, NOW)  # type: ignore[misc]
        case "replay_heads":
            storage.set_replay_heads(_then if argument else None)


def _state(storage: Storage) -> object:
    groups = storage.groups()
    return (
        groups,
        [(storage.group_snapshot(g, NOW), storage.group_version(g)) for g in groups],
        [storage.groups_for_topic(t) for t in "xyzw"],
        storage.stats(),
        storage.unconfirmed_topics(),
        storage.group_version("unknown"),
    )


@settings(max_examples=300, deadline=None)
@given(steps=_batch_steps, min_distance=st.sampled_from([0, 3]))
def test_a_batch_applies_exactly_as_its_records_one_by_one(
    steps: list[tuple[str, object]], min_distance: int
) -> None:
    def storage() -> Storage:
        return Storage(
            "c1",
            intervals=3,
            min_distance_ms=min_distance,
            expire_group_ms=_EXPIRE_MS,
            group_filter=NameFilter(deny="denied"),
            topic_filter=NameFilter(deny="denied"),
        )

    one_by_one, batched = storage(), storage()
    order = 0
    for kind, argument in steps:
        if kind != "batch":
            for s in (one_by_one, batched):
                _apply_step(s, kind, argument)
            continue
        records, orders = [], []
        for record, step in argument:  # type: ignore[attr-defined]
            # Mostly rising, as in one partition of __consumer_offsets; repeated and falling orders too.
            order += step
            records.append(record)
            orders.append(order)
        for record, at in zip(records, orders, strict=True):
            one_by_one.apply(OffsetCommit(*record) if isinstance(record, tuple) else record, at, NOW)
        batched.apply_batch(records, orders, NOW)
        assert _state(batched) == _state(one_by_one)


def test_apply_batch_with_a_run_of_one_group_topic_and_a_group_removed_mid_batch() -> None:
    storage = _storage(partitions=3, head=500)
    storage.apply_batch(
        [
            ("g", "t", 0, 100, T0, -1, ""),
            ("g", "t", 1, 110, T0, -1, ""),
            GroupTombstone("g"),
            ("g", "t", 2, 120, T0 + 1, -1, ""),
            OffsetCommit("g", "t", 0, 130, T0 + 2),
            ("g", "t", 3, 140, T0 + 3, -1, ""),
        ],
        [1, 2, 3, 4, 5, 6],
        NOW,
    )
    snapshot = _snapshot(storage)
    # The tombstone removed what came before it; the commits after it made the group again.
    assert [(p.partition, [c.offset for c in p.window if c is not None]) for p in snapshot.partitions] == [
        (0, [130]),
        (1, []),
        (2, [120]),
    ]
    assert storage.stats().commits_stored == 4
    assert storage.stats().commits_dropped["unknown_partition"] == 1


def test_groups_are_listed_sorted_as_they_come_and_go() -> None:
    storage = _storage()
    for name in ("g-c", "g-a", "g-b"):
        storage.apply(OffsetCommit(name, "t", 0, 10, NOW), 1, NOW)
    listed = storage.groups()
    assert listed == ["g-a", "g-b", "g-c"]
    listed.clear()
    assert storage.groups() == ["g-a", "g-b", "g-c"]
    assert storage.delete_group("g-b")
    storage.apply(OffsetCommit("g-0", "t", 0, 10, NOW), 2, NOW)
    assert storage.groups() == ["g-0", "g-a", "g-c"]


def test_windows_version_moves_with_the_windows_and_not_with_heads() -> None:
    storage = Storage("c1")
    storage.set_topics({"t": 2, "u": 1}, NOW)
    _commit(storage, 1, 1, T0)
    _commit(storage, 1, 2, T0, topic="u")
    seen = [storage.windows_version("g")]

    def changed() -> bool:
        seen.append(storage.windows_version("g"))
        return seen[-1] != seen[-2]

    storage.add_head_offset("t", 0, 5, NOW)
    assert not changed()
    assert storage.group_version("g") > seen[-1]
    storage.set_topics({"t": 3, "u": 1}, NOW)  # a partition more: a placeholder, no window changed
    assert not changed()
    _commit(storage, 2, 3, T0 + 1)
    assert changed()
    _commit(storage, 2, 3, T0 + 1)  # duplicate: dropped
    assert not changed()
    _commit(storage, 3, 4, T0 + 2, partition=1)  # a window opened
    assert changed()
    storage.apply(OffsetTombstone("g", "t", 1), 5, NOW)
    assert changed()
    storage.delete_group("g", "u")
    assert changed()
    storage.delete_group("g")
    assert changed()
    _commit(storage, 1, 6, T0)  # the same name again, a new group
    assert changed()


@settings(max_examples=200, deadline=None)
@given(steps=_batch_steps)
def test_property_while_windows_version_stays_every_window_reads_the_same(
    steps: list[tuple[str, object]],
) -> None:
    # What EvaluationCache relies on to share a status's window ends with the next status.
    storage = Storage("c1", intervals=3, min_distance_ms=3, expire_group_ms=_EXPIRE_MS)
    order = 0

    def windows() -> dict[str, tuple[int, dict[tuple[str, int], list[int]]]]:
        found = {}
        for group in storage.groups():
            snapshot = storage.group_snapshot(group, NOW)
            parts = () if snapshot is None else snapshot.partitions
            found[group] = (
                storage.windows_version(group),
                {(p.topic, p.partition): list(p.commits) for p in parts if p.slots},
            )
        return found

    before = windows()
    for kind, argument in steps:
        if kind != "batch":
            _apply_step(storage, kind, argument)
        else:
            records, orders = [], []
            for record, step in argument:  # type: ignore[attr-defined]
                order += step
                records.append(record)
                orders.append(order)
            storage.apply_batch(records, orders, NOW)
        after = windows()
        for group, (version, parts) in after.items():
            if group in before and before[group][0] == version:
                assert parts == before[group][1]
        before = after
