"""In-memory storage of one Kafka cluster: HEAD offsets, commit windows, owners, expiry. Pure and synchronous.

Burrow's `inmemory` storage (burrow-semantics.md section 2) is reproduced exactly where it decides what the
evaluator sees: window placement by `__consumer_offsets` order (append, out-of-order insert, duplicates
dropped, min-distance merge keeping the older timestamp), lag only for appends, placeholder partitions for a
topic's whole partition count, empty windows for owned-but-never-committed partitions, drop of commits older
than `expire_group`, current lag computed at read time and never negative.

Deliberate differences from Burrow (each pinned by tests/unit/test_storage.py):

* A commit whose partition has no HEAD offset yet is kept with lag None; Burrow drops it (a restart does not
  empty Burrow's windows, though: it fetches HEAD offsets before its consumers start). A commit for a topic
  the metadata does not list (yet) is kept too: the topic may be newer than the last metadata refresh, and
  Burrow's drop would lose up to `topic_refresh` + `offset_refresh` of its commits. `unconfirmed_topics` lists
  such topics so the HEAD poller refreshes the metadata at once; the next `set_topics` confirms them or
  deletes them from every group. Assignments (owners) of such topics are kept the same way: Burrow drops them,
  and a classic group writes its assignment only once per rebalance, so its owners would stay unknown.
  Commits for partitions beyond a known topic's partition count are dropped as in Burrow (reason
  `unknown_partition`).
* Offset tombstones remove the committed offset and the partition; a group with nothing left disappears.
  Burrow ignores them, so deleted or expired offsets linger forever (issue #818).
* `expire` removes stale groups at once, and `group_snapshot` still applies Burrow's lazy check for callers
  that read before `expire` runs. A group known only from membership records (never committed) is readable,
  unlike Burrow's NOTFOUND (issue #323), and expires `expire_group` after it was first seen.
* Topic deletion cascades to every group (as Burrow's StorageSetDeleteTopic); a group left without topics
  survives and evaluates OK with complete 0.
* The topic allow/deny list also applies to metadata, so filtered topics are never tracked or polled.
* KIP-848 consumer groups get owners from their member and assignment records, which Burrow skips.

Memory layout: a group-partition's window is one `array('q')` of `1 + 5 * intervals` integers (count, then
offset, order, timestamp, observed time, lag per slot, oldest first, lag -1 for None), about 0.5 KiB at
intervals 10. `model.Commit` objects are materialised only by `group_snapshot`.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from exporter.core.filters import NameFilter
from exporter.core.model import (
    Commit,
    ConsumerGroupAssignment,
    ConsumerGroupMember,
    ConsumerGroupMemberLeft,
    ConsumerGroupTopics,
    GroupMetadata,
    GroupSnapshot,
    GroupTombstone,
    OffsetCommit,
    OffsetTombstone,
    PartitionSnapshot,
    Record,
    TopicPartitions,
)
from exporter.core.retention import TopicRetention

__all__ = ["DROP_REASONS", "Storage", "StorageStats"]

DROP_REASONS = (
    "expired",
    "group_filtered",
    "topic_filtered",
    "unknown_partition",
    "backfill",
    "duplicate",
)
"""Why `apply` refused an OffsetCommit: older than expire_group, group or topic rejected by the allow/deny
lists, partition beyond the topic's known partition count, older than every commit of a full window, same
order as a stored commit."""

# Slot fields of a window ring, relative to the slot's base index.
_ORDER, _TS, _OBSERVED, _LAG = 1, 2, 3, 4
_SLOT = 5

_APPENDED, _INSERTED, _DUPLICATE, _BACKFILL = 0, 1, 2, 3

_Owner = tuple[str, str, str]
"""(client host, client id, member id) of the member a partition is assigned to."""
_NO_OWNER: _Owner = ("", "", "")


@dataclass(frozen=True, slots=True)
class StorageStats:
    """Sizes and ingest counters of one Storage."""

    groups: int
    group_partitions: int
    """Partition entries over all groups, placeholders included (Burrow's partition_count summed)."""
    topics: int
    partitions: int
    """Partitions of the known topics, from metadata."""
    commits_stored: int
    commits_dropped: dict[str, int]
    """OffsetCommits refused by `apply`, by reason; every reason of DROP_REASONS is present."""
    records_filtered: int
    """Membership records (classic and KIP-848) dropped by the group allow/deny list."""


class _Topic:
    __slots__ = ("count", "heads", "retention", "starts", "version")

    def __init__(self, count: int, version: int) -> None:
        self.count = count
        # Per partition: [n, offset, observed_ms, ...] oldest first; None until a HEAD arrives.
        self.heads: list[array[int] | None] = [None] * count
        # Newest log-start offset per partition; None until one arrives. Not part of the version: statuses do
        # not depend on it (retention headroom is computed beside them).
        self.starts: list[int | None] = [None] * count
        self.retention: TopicRetention | None = None
        self.version = version


class _GroupTopic:
    __slots__ = ("owners", "parts")

    def __init__(self) -> None:
        # Dense by partition id like Burrow's slice; None is a placeholder that never had a window.
        self.parts: list[array[int] | None] = []
        self.owners: dict[int, _Owner] = {}


class _Group:
    __slots__ = ("first_seen", "last_commit", "topics", "version")

    def __init__(self, now_ms: int, version: int) -> None:
        self.topics: dict[str, _GroupTopic] = {}
        self.last_commit = -1
        self.first_seen = now_ms
        self.version = version

    def expiry_reference(self) -> int:
        return self.last_commit if self.last_commit >= 0 else self.first_seen


class _Membership:
    """KIP-848 state of a group: members, their assignments by topic id, and the group's topic id map."""

    __slots__ = ("assignments", "members", "owned", "topic_names")

    def __init__(self) -> None:
        self.members: dict[str, tuple[str, str]] = {}
        self.assignments: dict[str, tuple[TopicPartitions, ...]] = {}
        self.topic_names: dict[str, str] = {}
        self.owned: set[tuple[str, int]] = set()


def _place(
    ring: array[int], cap: int, min_distance: int, offset: int, order: int, ts: int, now: int, head: int
) -> int:
    """Burrow's findConsumerOffsetDestination + mergeFrequentCommitIntoPrevious + storeConsumerOffset on a
    linear ring (oldest first). `head` < 0 means unknown. Returns _APPENDED, _INSERTED, _DUPLICATE or
    _BACKFILL."""
    n = ring[0]
    if n == cap and ring[1 + _ORDER] >= order:
        return _BACKFILL
    newest = 1 + _SLOT * (n - 1)
    if n == 0 or ring[newest + _ORDER] < order:
        lag = -1 if head < 0 else max(head - offset, 0)
        if n and ts - ring[newest + _TS] < min_distance:
            # The slot keeps the burst's first timestamp, or a commit rate above min-distance would never
            # open a new slot.
            ring[newest] = offset
            ring[newest + _ORDER] = order
            ring[newest + _OBSERVED] = now
            ring[newest + _LAG] = lag
            return _APPENDED
        if n == cap:
            ring[1:newest] = ring[1 + _SLOT : newest + _SLOT]
            base = newest
        else:
            ring[0] = n + 1
            base = newest + _SLOT
        ring[base] = offset
        ring[base + _ORDER] = order
        ring[base + _TS] = ts
        ring[base + _OBSERVED] = now
        ring[base + _LAG] = lag
        return _APPENDED

    i = n - 1
    while i >= 0 and ring[_SLOT * i + 1 + _ORDER] > order:
        i -= 1
    prev = _SLOT * i + 1
    if i < 0:
        # Older than everything stored; a full ring already returned _BACKFILL, so there is a free slot.
        ring[1 + _SLOT : _SLOT * n + 1 + _SLOT] = ring[1 : _SLOT * n + 1]
        ring[0] = n + 1
        base = 1
    elif ring[prev + _ORDER] == order:
        return _DUPLICATE
    elif ts - ring[prev + _TS] < min_distance and not (n == cap and i == 0):
        # Burrow replaces the oldest slot of a full ring outright: its predecessor in the ring is the newest
        # commit, whose order is higher, so the merge check never looks at the slot being replaced.
        ring[prev] = offset
        ring[prev + _ORDER] = order
        ring[prev + _OBSERVED] = now
        ring[prev + _LAG] = -1
        return _INSERTED
    elif n == cap:
        ring[1:prev] = ring[1 + _SLOT : prev + _SLOT]
        base = prev
    else:
        ring[prev + 2 * _SLOT : _SLOT * n + 1 + _SLOT] = ring[prev + _SLOT : _SLOT * n + 1]
        ring[0] = n + 1
        base = prev + _SLOT
    ring[base] = offset
    ring[base + _ORDER] = order
    ring[base + _TS] = ts
    ring[base + _OBSERVED] = now
    ring[base + _LAG] = -1
    return _INSERTED


def _window(ring: array[int], unfilled: tuple[None, ...]) -> tuple[Commit | None, ...]:
    """The ring as `intervals` slots, oldest first, leading Nones for the unfilled ones."""
    n = ring[0]
    fields = iter(ring[1 : _SLOT * n + 1].tolist())
    # zip of one iterator five times walks the flat slots five fields at a time, without index arithmetic.
    return (
        *unfilled[n:],
        *[
            _new_tuple(Commit, (offset, order, ts, lag if lag >= 0 else None, observed))
            for offset, order, ts, observed, lag in zip(fields, fields, fields, fields, fields, strict=True)
        ],
    )


# A NamedTuple's own constructor is a Python-level lambda around tuple.__new__; calling tuple.__new__ directly
# halves the cost of the million Commits an evaluation round of 100,000 partitions materialises.
_new_tuple = tuple.__new__


class Storage:
    """Offsets of one Kafka cluster. Single-threaded: call it from the event loop only."""

    def __init__(
        self,
        cluster: str,
        *,
        intervals: int = 10,
        min_distance_ms: int = 0,
        expire_group_ms: int = 604_800_000,
        group_filter: NameFilter | None = None,
        topic_filter: NameFilter | None = None,
    ) -> None:
        if intervals < 1:
            raise ValueError(f"intervals must be at least 1, not {intervals}")
        if expire_group_ms < 1:
            raise ValueError(f"expire_group_ms must be positive, not {expire_group_ms}")
        self._cluster = cluster
        self._intervals = intervals
        self._min_distance = min_distance_ms
        self._expire = expire_group_ms
        self._accept_group = group_filter or NameFilter()
        self._accept_topic = topic_filter or NameFilter()
        self._empty_ring = array("q", bytes(8 * (1 + _SLOT * intervals)))
        self._empty_heads = array("q", bytes(8 * (1 + 2 * intervals)))

        self._topics: dict[str, _Topic] = {}
        self._metadata_known = False
        self._topic_ids: dict[str, str] = {}
        self._groups: dict[str, _Group] = {}
        self._topic_groups: dict[str, set[str]] = {}
        self._members: dict[str, _Membership] = {}
        self._unresolved: set[str] = set()
        self._replay_heads: Callable[[str, int, int], int | None] | None = None

        # Group and topic versions come from one counter, so `group_version` can take the largest of a group's
        # own version and its topics' versions, and an unknown group can report the current value.
        self._seq = 0

        self._clock = 0
        self._min_reference = 0
        self._group_partitions = 0
        self._stored = 0
        self._dropped = dict.fromkeys(DROP_REASONS, 0)
        self._filtered = 0

    # --------------------------------------------------------------------------------------------------------
    # Write side: HEAD offsets

    def set_topics(self, partitions: Mapping[str, int], now_ms: int) -> list[str]:
        """Replace the topic map with metadata (topic -> partition count). Topics absent from it are deleted
        from the HEAD map and from every group; partition counts only grow. Returns the deleted topic names,
        sorted."""
        self._tick(now_ms)
        self._metadata_known = True
        wanted = {t: c for t, c in partitions.items() if self._accept_topic(t)}
        gone = {t for t in self._topics if t not in wanted}
        gone.update(t for t in self._topic_groups if t not in wanted)
        for name in gone:
            self._delete_topic(name)
        for name, count in wanted.items():
            topic = self._topics.get(name)
            if topic is None:
                self._topics[name] = _Topic(count, self._next_version())
                # Groups that committed before the metadata arrived get Burrow's placeholders now.
                for group in self._topic_groups.get(name, ()):
                    self._pad(self._groups[group].topics[name], count)
            elif count > topic.count:
                topic.heads.extend([None] * (count - topic.count))
                topic.starts.extend([None] * (count - topic.count))
                topic.count = count
                topic.version = self._next_version()
        return sorted(gone)

    def add_head_offset(self, topic: str, partition: int, offset: int, now_ms: int) -> None:
        """Record a partition's HEAD (log-end) offset; the last `intervals` are kept. Unknown topics and
        partitions outside the known count are ignored."""
        self._tick(now_ms)
        known = self._topics.get(topic)
        if known is None or not 0 <= partition < known.count:
            return
        history = known.heads[partition]
        if history is None:
            history = known.heads[partition] = self._empty_heads[:]
        n = history[0]
        # An idle partition's full history of one repeated offset reads the same after another sample: keep
        # the version, so the groups of quiet topics are not re-evaluated every round for nothing.
        unchanged = n == self._intervals and history[1 : 2 * n : 2].count(offset) == n
        if n < self._intervals:
            history[0] = n + 1
            base = 2 * n + 1
        else:
            base = 2 * n - 1
            history[1:base] = history[3 : base + 2]
        history[base] = offset
        history[base + 1] = now_ms
        if not unchanged:
            known.version = self._next_version()

    def set_start_offset(self, topic: str, partition: int, offset: int) -> None:
        """Record a partition's log-start offset (the oldest offset retention has kept). Unknown topics and
        partitions outside the known count are ignored."""
        known = self._topics.get(topic)
        if known is not None and 0 <= partition < known.count:
            known.starts[partition] = offset

    def set_topic_retention(self, retention: Mapping[str, TopicRetention | None]) -> None:
        """Set the retention settings of the topics listed (None: unknown, e.g. DescribeConfigs denied);
        unlisted topics keep theirs."""
        for name, value in retention.items():
            known = self._topics.get(name)
            if known is not None:
                known.retention = value

    def set_replay_heads(self, lookup: Callable[[str, int, int], int | None] | None) -> None:
        """While a lookup is set, a commit's lag is computed against `lookup(topic, partition, commit
        timestamp ms)`, the HEAD as it was when the commit was made (None: the lag is unknown), instead of the
        newest HEAD. For the replay of `__consumer_offsets` at start-up, whose commits are old: against
        today's HEAD their lags would all look as if the consumer had been catching up (Burrow #740)."""
        self._replay_heads = lookup

    def set_topic_ids(self, ids: Mapping[str, str]) -> None:
        """Replace the cluster's topic id (UUID string) -> name map, used for KIP-848 assignments."""
        self._topic_ids = dict(ids)
        for group in sorted(self._unresolved):
            self._attribute_members(group, self._clock)

    # --------------------------------------------------------------------------------------------------------
    # Write side: records from __consumer_offsets or the admin API

    def apply(self, record: Record, order: int, now_ms: int) -> None:
        """Apply one record. `order` is the record's position in `__consumer_offsets` (or the admin-API poll
        sequence); it places commits in windows and is ignored for other records."""
        self._tick(now_ms)
        if type(record) is OffsetCommit:
            self._commit(record, order, now_ms)
            return
        match record:
            case OffsetCommit():
                self._commit(record, order, now_ms)
            case OffsetTombstone(group=group, topic=topic, partition=partition):
                self._forget_offset(group, topic, partition)
            case GroupMetadata():
                self._group_metadata(record, now_ms)
            case GroupTombstone(group=group):
                self._remove_group(group)
            case ConsumerGroupMember(group=group, member_id=member, client_id=client, client_host=host):
                if self._membership_accepted(group):
                    self._membership(group).members[member] = (client, host)
                    self._attribute_members(group, now_ms)
            case ConsumerGroupMemberLeft(group=group, member_id=member):
                if self._membership_accepted(group):
                    state = self._membership(group)
                    state.members.pop(member, None)
                    state.assignments.pop(member, None)
                    self._attribute_members(group, now_ms)
            case ConsumerGroupAssignment(group=group, member_id=member, partitions=assigned):
                if self._membership_accepted(group):
                    state = self._membership(group)
                    if assigned:
                        state.assignments[member] = assigned
                    else:
                        state.assignments.pop(member, None)
                    self._attribute_members(group, now_ms)
            case ConsumerGroupTopics(group=group, topic_names=pairs):
                if self._membership_accepted(group):
                    self._membership(group).topic_names = dict(pairs)
                    self._attribute_members(group, now_ms)
            case _:
                # SkippedRecord and DecodeError: the source counts them.
                pass

    def delete_group(self, group: str, topic: str | None = None) -> bool:
        """Burrow's DELETE: remove one topic from the group (and the group once no topic is left), or the
        whole group. Returns whether anything was removed."""
        stored = self._groups.get(group)
        if stored is None:
            return False
        if topic is None:
            self._remove_group(group)
            return True
        if topic not in stored.topics:
            return False
        self._drop_group_topic(group, stored, topic)
        if stored.topics:
            self._touch(stored)
        else:
            self._remove_group(group)
        return True

    def expire(self, now_ms: int) -> list[str]:
        """Remove groups whose newest appended commit (or, never committed, first sighting) is older than
        expire_group. Returns their names, sorted. Costs O(1) unless some group is due."""
        self._tick(now_ms)
        cutoff = now_ms - self._expire
        if self._min_reference >= cutoff:
            return []
        due: list[str] = []
        oldest_kept = now_ms
        for name, group in self._groups.items():
            reference = group.expiry_reference()
            if reference < cutoff:
                due.append(name)
            elif reference < oldest_kept:
                oldest_kept = reference
        for name in due:
            self._remove_group(name)
        self._min_reference = oldest_kept
        return sorted(due)

    # --------------------------------------------------------------------------------------------------------
    # Read side

    @property
    def cluster(self) -> str:
        return self._cluster

    @property
    def intervals(self) -> int:
        return self._intervals

    def topics(self) -> list[str]:
        return sorted(self._topics)

    def unconfirmed_topics(self) -> list[str]:
        """Topics that groups committed to but the last metadata did not list, sorted; empty before the first
        metadata. The HEAD poller refreshes the metadata while there are any."""
        if not self._metadata_known:
            return []
        return sorted(t for t in self._topic_groups if t not in self._topics)

    def partition_count(self, topic: str) -> int | None:
        known = self._topics.get(topic)
        return None if known is None else known.count

    def head_offsets(self, topic: str) -> tuple[int | None, ...] | None:
        """Newest HEAD offset per partition (None where none arrived yet); None for an unknown topic."""
        known = self._topics.get(topic)
        if known is None:
            return None
        return tuple(None if h is None else h[2 * h[0] - 1] for h in known.heads)

    def start_offsets(self, topic: str) -> tuple[int | None, ...] | None:
        """Newest log-start offset per partition (None where none arrived yet); None for an unknown topic."""
        known = self._topics.get(topic)
        return None if known is None else tuple(known.starts)

    def topic_retention(self, topic: str) -> TopicRetention | None:
        """The topic's retention settings; None while unknown."""
        known = self._topics.get(topic)
        return None if known is None else known.retention

    def head_history(self, topic: str, partition: int) -> tuple[tuple[int, int], ...]:
        """(offset, observed_ms) pairs of a partition's recent HEAD offsets, oldest first."""
        history = self._history(topic, partition)
        if history is None:
            return ()
        return tuple((history[i], history[i + 1]) for i in range(1, 2 * history[0] + 1, 2))

    def groups(self) -> list[str]:
        return sorted(self._groups)

    def groups_for_topic(self, topic: str) -> list[str]:
        return sorted(self._topic_groups.get(topic, ()))

    def group_snapshot(self, group: str, now_ms: int | None = None) -> GroupSnapshot | None:
        """The group as stored, partitions sorted by (topic, partition); None if unknown or past expire_group
        at `now_ms` (default: the newest time any write was given), as Burrow's lazy expiry."""
        stored = self._groups.get(group)
        if stored is None:
            return None
        now = self._clock if now_ms is None else now_ms
        if stored.expiry_reference() < now - self._expire:
            return None
        unfilled = (None,) * self._intervals
        partitions: list[PartitionSnapshot] = []
        for name in sorted(stored.topics):
            entry = stored.topics[name]
            known = self._topics.get(name)
            heads = () if known is None else known.heads
            for partition, ring in enumerate(entry.parts):
                history = heads[partition] if partition < len(heads) else None
                brokers = () if history is None else tuple(history[1 : 2 * history[0] + 1 : 2])
                host, client, member = entry.owners.get(partition, _NO_OWNER)
                lag: int | None = None
                if ring is None:
                    window: tuple[Commit | None, ...] = ()
                else:
                    window = _window(ring, unfilled)
                    if ring[0] and brokers:
                        lag = max(brokers[-1] - ring[1 + _SLOT * (ring[0] - 1)], 0)
                partitions.append(
                    PartitionSnapshot(name, partition, window, brokers, lag, host, client, member)
                )
        return GroupSnapshot(self._cluster, group, tuple(partitions), max(stored.last_commit, 0))

    def group_version(self, group: str) -> int:
        """A number that grows whenever a commit, owner, deletion or HEAD offset of one of its topics changes
        what `group_snapshot` returns for the group. Time passing does not change it: the STOP rule and lazy
        expiry depend on `now`, so caches must still age out. An unknown group reports the current version."""
        stored = self._groups.get(group)
        if stored is None:
            return self._seq
        version = stored.version
        for name in stored.topics:
            known = self._topics.get(name)
            if known is not None and known.version > version:
                version = known.version
        return version

    def stats(self) -> StorageStats:
        return StorageStats(
            groups=len(self._groups),
            group_partitions=self._group_partitions,
            topics=len(self._topics),
            partitions=sum(t.count for t in self._topics.values()),
            commits_stored=self._stored,
            commits_dropped=dict(self._dropped),
            records_filtered=self._filtered,
        )

    # --------------------------------------------------------------------------------------------------------
    # Commits

    def _commit(self, record: OffsetCommit, order: int, now: int) -> None:
        name = record.group
        topic_name = record.topic
        partition = record.partition
        ts = record.timestamp_ms
        if ts < now - self._expire:
            self._dropped["expired"] += 1
            return
        group = self._groups.get(name)
        if group is None and not self._accept_group(name):
            self._dropped["group_filtered"] += 1
            return
        entry = None if group is None else group.topics.get(topic_name)
        if entry is None and not self._accept_topic(topic_name):
            self._dropped["topic_filtered"] += 1
            return
        known = self._topics.get(topic_name)
        if partition < 0 or (known is not None and partition >= known.count):
            self._dropped["unknown_partition"] += 1
            return
        if known is None:
            count, head = 0, -1
        else:
            count = known.count
            history = known.heads[partition]
            head = -1 if history is None else history[2 * history[0] - 1]
        if self._replay_heads is not None:
            then = self._replay_heads(topic_name, partition, ts)
            head = -1 if then is None else then

        if group is None:
            group = self._new_group(name, now)
        if entry is None:
            entry = self._new_group_topic(name, group, topic_name)
        ring = self._ring(entry, partition, count)
        outcome = _place(ring, self._intervals, self._min_distance, record.offset, order, ts, now, head)
        if outcome == _DUPLICATE:
            self._dropped["duplicate"] += 1
            return
        if outcome == _BACKFILL:
            self._dropped["backfill"] += 1
            return
        if outcome == _APPENDED:
            group.last_commit = ts
            if ts < self._min_reference:
                self._min_reference = ts
        self._stored += 1
        self._touch(group)

    def _forget_offset(self, name: str, topic: str, partition: int) -> None:
        group = self._groups.get(name)
        entry = None if group is None else group.topics.get(topic)
        if group is None or entry is None or not 0 <= partition < len(entry.parts):
            return
        if entry.parts[partition] is None:
            return
        entry.parts[partition] = None
        entry.owners.pop(partition, None)
        if any(ring is not None for ring in entry.parts):
            self._touch(group)
            return
        self._drop_group_topic(name, group, topic)
        if group.topics:
            self._touch(group)
        else:
            self._remove_group(name)

    # --------------------------------------------------------------------------------------------------------
    # Owners

    def _group_metadata(self, record: GroupMetadata, now: int) -> None:
        if record.protocol_type != "consumer":
            return
        if not self._accept_group(record.group):
            self._filtered += 1
            return
        if not record.members:
            group = self._groups.get(record.group)
            if group is not None and any(entry.owners for entry in group.topics.values()):
                for entry in group.topics.values():
                    entry.owners.clear()
                self._touch(group)
            return
        changed = False
        for member in record.members:
            owner = (member.client_host, member.client_id, member.member_id)
            for assigned in member.assignment:
                topic = self._topic_ids.get(assigned.topic) if assigned.by_id else assigned.topic
                if topic is None:
                    continue
                for partition in assigned.partitions:
                    changed |= self._set_owner(record.group, topic, partition, owner, now)
        if changed:
            self._touch(self._groups[record.group])

    def _membership_accepted(self, group: str) -> bool:
        if group in self._groups or group in self._members or self._accept_group(group):
            return True
        self._filtered += 1
        return False

    def _membership(self, group: str) -> _Membership:
        state = self._members.get(group)
        if state is None:
            state = self._members[group] = _Membership()
        return state

    def _attribute_members(self, name: str, now: int) -> None:
        """Recompute a KIP-848 group's owners from all its members' current assignments: a partition moving
        from one member to another may be written in either order, so per-record updates could clear the new
        owner."""
        state = self._members.get(name)
        if state is None:
            return
        wanted: dict[tuple[str, int], _Owner] = {}
        unresolved = False
        for member, assigned in state.assignments.items():
            client, host = state.members.get(member, ("", ""))
            owner = (host, client, member)
            for topic_partitions in assigned:
                topic: str | None = topic_partitions.topic
                if topic_partitions.by_id:
                    topic = state.topic_names.get(topic_partitions.topic) or self._topic_ids.get(
                        topic_partitions.topic
                    )
                if topic is None:
                    unresolved = True
                    continue
                for partition in topic_partitions.partitions:
                    wanted[(topic, partition)] = owner
        if unresolved:
            self._unresolved.add(name)
        else:
            self._unresolved.discard(name)

        changed = False
        group = self._groups.get(name)
        if group is not None:
            for topic, partition in state.owned.difference(wanted):
                entry = group.topics.get(topic)
                if entry is not None and entry.owners.pop(partition, None) is not None:
                    changed = True
        for (topic, partition), owner in wanted.items():
            changed |= self._set_owner(name, topic, partition, owner, now)
        state.owned = set(wanted)
        if not (state.members or state.assignments or state.topic_names):
            del self._members[name]
        if changed:
            self._touch(self._groups[name])

    def _set_owner(self, name: str, topic: str, partition: int, owner: _Owner, now: int) -> bool:
        """Burrow's addConsumerOwner: creates the group, the topic's placeholders and the partition's (empty)
        window. Returns whether the snapshot changed; the caller bumps the version."""
        group = self._groups.get(name)
        entry = None if group is None else group.topics.get(topic)
        if entry is None and not self._accept_topic(topic):
            return False
        known = self._topics.get(topic)
        # An assignment for a topic the metadata does not list (yet) is kept like a commit would be: the
        # topic is usually newer than the last metadata refresh (a group joined right after creating it),
        # and the group writes no new assignment until it rebalances. The next metadata confirms it.
        if partition < 0 or (known is not None and partition >= known.count):
            return False
        count = 0 if known is None else known.count
        if group is None:
            group = self._new_group(name, now)
        if entry is None:
            entry = self._new_group_topic(name, group, topic)
        had_ring = partition < len(entry.parts) and entry.parts[partition] is not None
        self._ring(entry, partition, count)
        if entry.owners.get(partition) == owner:
            return not had_ring
        entry.owners[partition] = owner
        return True

    # --------------------------------------------------------------------------------------------------------
    # Structure and versions

    def _tick(self, now_ms: int) -> None:
        if now_ms > self._clock:
            self._clock = now_ms

    def _history(self, topic: str, partition: int) -> array[int] | None:
        known = self._topics.get(topic)
        if known is None or not 0 <= partition < known.count:
            return None
        return known.heads[partition]

    def _new_group(self, name: str, now: int) -> _Group:
        group = self._groups[name] = _Group(now, self._next_version())
        if now < self._min_reference:
            self._min_reference = now
        return group

    def _new_group_topic(self, name: str, group: _Group, topic: str) -> _GroupTopic:
        entry = group.topics[topic] = _GroupTopic()
        members = self._topic_groups.get(topic)
        if members is None:
            members = self._topic_groups[topic] = set()
        members.add(name)
        return entry

    def _ring(self, entry: _GroupTopic, partition: int, count: int) -> array[int]:
        """The partition's window, creating it and, like Burrow's getConsumerPartition, placeholders up to the
        topic's partition count when the group's list is too short."""
        if partition >= len(entry.parts):
            self._pad(entry, max(count, partition + 1))
        ring = entry.parts[partition]
        if ring is None:
            ring = entry.parts[partition] = self._empty_ring[:]
        return ring

    def _pad(self, entry: _GroupTopic, count: int) -> None:
        missing = count - len(entry.parts)
        if missing > 0:
            entry.parts.extend([None] * missing)
            self._group_partitions += missing

    def _drop_group_topic(self, name: str, group: _Group, topic: str) -> None:
        entry = group.topics.pop(topic)
        self._group_partitions -= len(entry.parts)
        members = self._topic_groups[topic]
        members.discard(name)
        if not members:
            del self._topic_groups[topic]

    def _delete_topic(self, topic: str) -> None:
        # A topic the metadata never listed was not deleted in Kafka: its commits came from history (or a
        # mistyped assign()), so a group it leaves empty never consumed anything that exists and goes with it.
        confirmed = self._topics.pop(topic, None) is not None
        for name in self._topic_groups.get(topic, set()).copy():
            group = self._groups[name]
            self._drop_group_topic(name, group, topic)
            if not confirmed and not group.topics:
                self._remove_group(name)
            else:
                self._touch(group)

    def _remove_group(self, name: str) -> None:
        self._members.pop(name, None)
        self._unresolved.discard(name)
        group = self._groups.pop(name, None)
        if group is None:
            return
        for topic in list(group.topics):
            self._drop_group_topic(name, group, topic)
        # An unknown group reports the current version: make it exceed the removed group's last version.
        self._seq += 1

    def _touch(self, group: _Group) -> None:
        group.version = self._next_version()

    def _next_version(self) -> int:
        self._seq += 1
        return self._seq
