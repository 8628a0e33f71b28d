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

`Storage` is the one face the sources and the evaluator use; its parts live beside it: `windows` (a
group-topic's commit windows and their placement), `groups` (the groups, their topics, expiry and versions),
`topics` (HEAD history), `membership` (owners of classic and KIP-848 groups, topic ids). Time is always an
argument: the storage keeps no clock of its own.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from exporter.core.filters import NameFilter
from exporter.core.groups import Groups
from exporter.core.membership import Owners
from exporter.core.model import (
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
)
from exporter.core.retention import TopicRetention
from exporter.core.topics import Topic
from exporter.core.windows import APPENDED, BACKFILL, DUPLICATE, place

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
        self._empty_ring = array("q", bytes(8 * (1 + 5 * intervals)))
        self._empty_heads = array("q", bytes(8 * (1 + 2 * intervals)))

        self._topics: dict[str, Topic] = {}
        self._metadata_known = False
        self._groups = Groups(len(self._empty_ring))
        # The groups by name, read on every commit and snapshot: one attribute lookup less.
        self._by_name = self._groups.by_name
        self._owners = Owners(
            self._groups, self._topics, self._accept_group, self._accept_topic, self._empty_ring
        )
        self._replay_heads: Callable[[str, int, int], int | None] | None = None

        self._stored = 0
        self._dropped = dict.fromkeys(DROP_REASONS, 0)

    # --------------------------------------------------------------------------------------------------------
    # Write side: topics and HEAD offsets

    def set_topics(self, partitions: Mapping[str, int], now_ms: int) -> list[str]:
        """Replace the topic map with metadata (topic -> partition count). Topics absent from it are deleted
        from the HEAD map and from every group; partition counts only grow. Returns the deleted topic names,
        sorted."""
        self._metadata_known = True
        wanted = {t: c for t, c in partitions.items() if self._accept_topic(t)}
        gone = {t for t in self._topics if t not in wanted}
        gone.update(t for t in self._groups.by_topic if t not in wanted)
        for name in gone:
            self._delete_topic(name)
        for name, count in wanted.items():
            topic = self._topics.get(name)
            if topic is None:
                self._topics[name] = Topic(count, self._groups.next_version())
                # Groups that committed before the metadata arrived get Burrow's placeholders now.
                for group in self._groups.by_topic.get(name, ()):
                    self._groups.pad(self._by_name[group].topics[name], count)
            elif count > topic.count:
                topic.grow(count, self._groups.next_version())
        return sorted(gone)

    def add_head_offset(self, topic: str, partition: int, offset: int, now_ms: int) -> None:
        """Record a partition's HEAD (log-end) offset; the last `intervals` are kept. Unknown topics and
        partitions outside the known count are ignored."""
        known = self._topics.get(topic)
        if (
            known is not None
            and 0 <= partition < known.count
            and known.add_head(partition, offset, now_ms, self._empty_heads)
        ):
            known.version = self._groups.next_version()

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

    def set_topic_ids(self, ids: Mapping[str, str], now_ms: int) -> None:
        """Replace the cluster's topic id (UUID string) -> name map, used for KIP-848 assignments. A group
        first stored because the map resolves its assignments counts as first seen at `now_ms`."""
        for group in self._owners.membership.set_topic_ids(ids):
            self._owners.attribute(group, now_ms)

    # --------------------------------------------------------------------------------------------------------
    # Write side: records from __consumer_offsets or the admin API

    def apply(self, record: Record, order: int, now_ms: int) -> None:
        """Apply one record. `order` is the record's position in `__consumer_offsets` (or the admin-API poll
        sequence); it places commits in windows and is ignored for other records."""
        if type(record) is OffsetCommit:
            self._commit(record, order, now_ms)
            return
        match record:
            case OffsetCommit():
                self._commit(record, order, now_ms)
            case OffsetTombstone(group=group, topic=topic, partition=partition):
                self._forget_offset(group, topic, partition)
            case GroupMetadata():
                self._owners.group_metadata(record, now_ms)
            case GroupTombstone(group=group):
                self._remove_group(group)
            case (
                ConsumerGroupMember()
                | ConsumerGroupMemberLeft()
                | ConsumerGroupAssignment()
                | ConsumerGroupTopics()
            ):
                self._owners.kip848(record, now_ms)
            case _:
                # SkippedRecord and DecodeError: the source counts them.
                pass

    def delete_group(self, group: str, topic: str | None = None) -> bool:
        """Burrow's DELETE: remove one topic from the group (and the group once no topic is left), or the
        whole group. Returns whether anything was removed."""
        stored = self._by_name.get(group)
        if stored is None:
            return False
        if topic is None:
            self._remove_group(group)
            return True
        if topic not in stored.topics:
            return False
        self._groups.drop_topic(group, stored, topic)
        if stored.topics:
            self._groups.touch(stored)
        else:
            self._remove_group(group)
        return True

    def expire(self, now_ms: int) -> list[str]:
        """Remove groups whose newest appended commit (or, never committed, first sighting) is older than
        expire_group. Returns their names, sorted. Costs O(1) unless some group is due."""
        due = self._groups.due(now_ms, self._expire)
        for name in due:
            self._remove_group(name)
        return due

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
        return sorted(t for t in self._groups.by_topic if t not in self._topics)

    def partition_count(self, topic: str) -> int | None:
        known = self._topics.get(topic)
        return None if known is None else known.count

    def head_offsets(self, topic: str) -> tuple[int | None, ...] | None:
        """Newest HEAD offset per partition (None where none arrived yet); None for an unknown topic."""
        known = self._topics.get(topic)
        return None if known is None else known.head_offsets()

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
        known = self._topics.get(topic)
        return () if known is None else known.head_history(partition)

    def groups(self) -> list[str]:
        return sorted(self._by_name)

    def groups_for_topic(self, topic: str) -> list[str]:
        return sorted(self._groups.by_topic.get(topic, ()))

    def group_snapshot(self, group: str, now_ms: int) -> GroupSnapshot | None:
        """The group as stored, partitions sorted by (topic, partition); None if unknown or past expire_group
        at `now_ms`, as Burrow's lazy expiry."""
        stored = self._by_name.get(group)
        if stored is None:
            return None
        if stored.expiry_reference() < now_ms - self._expire:
            return None
        unfilled = (None,) * self._intervals
        partitions: list[PartitionSnapshot] = []
        for name in sorted(stored.topics):
            known = self._topics.get(name)
            stored.topics[name].snapshot(name, [] if known is None else known.heads, unfilled, partitions)
        return GroupSnapshot(self._cluster, group, tuple(partitions), max(stored.last_commit, 0))

    def group_version(self, group: str) -> int:
        """A number that grows whenever a commit, owner, deletion or HEAD offset of one of its topics changes
        what `group_snapshot` returns for the group. Time passing does not change it: the STOP rule and lazy
        expiry depend on `now`, so caches must still age out. An unknown group reports the current version."""
        stored = self._by_name.get(group)
        if stored is None:
            return self._groups.seq
        version = stored.version
        for name in stored.topics:
            known = self._topics.get(name)
            if known is not None and known.version > version:
                version = known.version
        return version

    def stats(self) -> StorageStats:
        return StorageStats(
            groups=len(self._by_name),
            group_partitions=self._groups.partitions,
            topics=len(self._topics),
            partitions=sum(t.count for t in self._topics.values()),
            commits_stored=self._stored,
            commits_dropped=dict(self._dropped),
            records_filtered=self._owners.filtered,
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
        group = self._by_name.get(name)
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
            # Topic.head inlined: apply runs once per replayed record.
            count = known.count
            history = known.heads[partition]
            head = -1 if history is None else history[2 * history[0] - 1]
        if self._replay_heads is not None:
            then = self._replay_heads(topic_name, partition, ts)
            head = -1 if then is None else then

        if group is None or entry is None or partition >= entry.size:
            group, entry = self._groups.reach(name, group, entry, topic_name, partition, count, now)
        data = entry.data
        base = partition * entry.stride
        if base >= len(data) or data[base] < 0:
            base = entry.open(partition, self._empty_ring)
            data = entry.data
        outcome = place(data, base, self._intervals, self._min_distance, record.offset, order, ts, now, head)
        if outcome == DUPLICATE:
            self._dropped["duplicate"] += 1
            return
        if outcome == BACKFILL:
            self._dropped["backfill"] += 1
            return
        if outcome == APPENDED:
            group.last_commit = ts
            if ts < self._groups.min_reference:
                self._groups.min_reference = ts
        self._stored += 1
        self._groups.touch(group)

    def _forget_offset(self, name: str, topic: str, partition: int) -> None:
        group = self._by_name.get(name)
        entry = None if group is None else group.topics.get(topic)
        if group is None or entry is None or not entry.forget(partition):
            return
        if not entry.windowless():
            self._groups.touch(group)
            return
        self._groups.drop_topic(name, group, topic)
        if group.topics:
            self._groups.touch(group)
        else:
            self._remove_group(name)

    # --------------------------------------------------------------------------------------------------------
    # Structure and versions

    def _delete_topic(self, topic: str) -> None:
        confirmed = self._topics.pop(topic, None) is not None
        for name in self._groups.delete_topic(topic, confirmed=confirmed):
            self._remove_group(name)

    def _remove_group(self, name: str) -> None:
        self._owners.membership.forget(name)
        self._groups.remove(name)
