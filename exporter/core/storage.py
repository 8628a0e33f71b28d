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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from exporter.core.filters import NameFilter
from exporter.core.groups import Group, Groups
from exporter.core.membership import Owners
from exporter.core.model import (
    CommitFields,
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
from exporter.core.windows import APPENDED, BACKFILL, DUPLICATE, GroupTopic, place

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
        self._topics_version = 0
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
        self._topics_version += 1
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
            self._topics_version += 1

    def set_start_offset(self, topic: str, partition: int, offset: int) -> None:
        """Record a partition's log-start offset (the oldest offset retention has kept). Unknown topics and
        partitions outside the known count are ignored."""
        known = self._topics.get(topic)
        if known is not None and 0 <= partition < known.count and known.starts[partition] != offset:
            known.starts[partition] = offset
            self._topics_version += 1

    def set_topic_retention(self, retention: Mapping[str, TopicRetention | None]) -> None:
        """Set the retention settings of the topics listed (None: unknown, e.g. DescribeConfigs denied);
        unlisted topics keep theirs."""
        for name, value in retention.items():
            known = self._topics.get(name)
            if known is not None and known.retention != value:
                known.retention = value
                self._topics_version += 1

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
        match record:
            case OffsetCommit():
                fields = (
                    record.group,
                    record.topic,
                    record.partition,
                    record.offset,
                    record.timestamp_ms,
                    record.leader_epoch,
                    record.metadata,
                )
                self.apply_batch((fields,), (order,), now_ms)
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

    def apply_batch(
        self, records: Sequence[CommitFields | Record], orders: Sequence[int], now_ms: int
    ) -> None:
        """Apply `records[i]` at `orders[i]`, in order: exactly what `apply` one record at a time does. Offset
        commits may come as `CommitFields` (as `decoder.decode_batch` gives them), and take the short way:
        placed in the same loop, and a run of commits of one group-topic (a consumer commits a topic's
        partitions together) looks the group, its topic and the filters up once. This is the replay's path:
        it runs once per record of `__consumer_offsets`."""
        expired_before = now_ms - self._expire
        dropped = self._dropped
        groups = self._groups
        by_name = self._by_name
        topics = self._topics
        accept_group, accept_topic = self._accept_group, self._accept_topic
        replay_heads = self._replay_heads
        intervals, min_distance, empty = self._intervals, self._min_distance, self._empty_ring
        stored = 0
        # What the previous commit resolved: valid until a record other than a commit changes the structure
        # (a commit only creates groups and group-topics, and `reach` hands them back). The filters are pure
        # functions of the names, so a name that passed them once passes again.
        last_group: str | None = None
        last_topic: str | None = None
        group: Group | None = None
        entry: GroupTopic | None = None
        known: Topic | None = None
        for record, order in zip(records, orders, strict=True):
            if not isinstance(record, tuple):
                self._stored += stored
                stored = 0
                self.apply(record, order, now_ms)
                last_group = None
                continue
            name, topic_name, partition, offset, ts, _, _ = record
            if ts < expired_before:
                dropped["expired"] += 1
                continue
            if name != last_group or topic_name != last_topic:
                # Forgotten first: a commit the filters reject leaves the locals half resolved.
                last_group = None
                group = by_name.get(name)
                if group is None and not accept_group(name):
                    dropped["group_filtered"] += 1
                    continue
                entry = None if group is None else group.topics.get(topic_name)
                if entry is None and not accept_topic(topic_name):
                    dropped["topic_filtered"] += 1
                    continue
                known = topics.get(topic_name)
                last_group, last_topic = name, topic_name
            if partition < 0 or (known is not None and partition >= known.count):
                dropped["unknown_partition"] += 1
                continue
            if known is None:
                count, head = 0, -1
            else:
                # Topic.head inlined.
                count = known.count
                history = known.heads[partition]
                head = -1 if history is None else history[2 * history[0] - 1]
            if replay_heads is not None:
                then = replay_heads(topic_name, partition, ts)
                head = -1 if then is None else then

            if group is None or entry is None or partition >= entry.size:
                group, entry = groups.reach(name, group, entry, topic_name, partition, count, now_ms)
            data = entry.data
            base = partition * entry.stride
            if base >= len(data) or data[base] < 0:
                base = entry.open(partition, empty)
                data = entry.data
            outcome = place(data, base, intervals, min_distance, offset, order, ts, now_ms, head)
            if outcome == DUPLICATE:
                dropped["duplicate"] += 1
                continue
            if outcome == BACKFILL:
                dropped["backfill"] += 1
                continue
            if outcome == APPENDED:
                group.last_commit = ts
                if ts < groups.min_reference:
                    groups.min_reference = ts
            stored += 1
            # Groups.touch inlined.
            groups.seq += 1
            group.version = groups.seq
        self._stored += stored

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

    @property
    def topics_version(self) -> int:
        """Changes whenever what `topics`, `head_offsets`, `start_offsets` or `topic_retention` answer may
        have: a reader may keep what it built from them while it stays the same."""
        return self._topics_version

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
        return self._groups.names()

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
        partitions: list[PartitionSnapshot] = []
        for name in sorted(stored.topics):
            known = self._topics.get(name)
            stored.topics[name].snapshot(
                name, [] if known is None else known.heads, self._intervals, partitions
            )
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

    def windows_version(self, group: str) -> int:
        """A number that grows whenever a commit window of the group changes (a commit stored, an offset
        forgotten, a topic dropped), as do its owners; unlike `group_version`, HEAD offsets do not change it.
        An unknown group reports the current version."""
        stored = self._by_name.get(group)
        return self._groups.seq if stored is None else stored.version

    def containers(self) -> list[object]:
        """Its containers that grow with the groups (a group by name, the groups of each topic, the names
        sorted), which hold nothing that could refer back to them: at 1,000,000 group-partitions some 400,000
        references that the shell takes out of the cycle collector's walk (`gc_pause.untrack`)."""
        return self._groups.containers()

    @property
    def containers_version(self) -> int:
        """A number that grows whenever `containers()` may hold a container it did not, or one it held may be
        back in the cycle collector's lists (a group or a topic arrived, the names were sorted again). Commits
        and HEAD offsets do not move it: in the steady state it stays put."""
        return self._groups.containers_seq

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
