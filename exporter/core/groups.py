"""The consumer groups of one cluster as the storage holds them: each group's topics (windows and owners), the
groups of each topic, the count of group-partitions, expiry and versions. Pure and synchronous."""

from __future__ import annotations

from exporter.core.windows import GroupTopic

__all__ = ["Group", "Groups"]


class Group:
    """One group: its topics, its newest appended commit's timestamp (-1 before any), when it was first seen
    and its version."""

    __slots__ = ("first_seen", "last_commit", "topics", "version")

    def __init__(self, now_ms: int, version: int) -> None:
        self.topics: dict[str, GroupTopic] = {}
        self.last_commit = -1
        self.first_seen = now_ms
        self.version = version

    def expiry_reference(self) -> int:
        """The instant expire_group counts from: the newest appended commit, or the first sighting."""
        return self.last_commit if self.last_commit >= 0 else self.first_seen


class Groups:
    """Every group by name, the groups of each topic, and the version counter.

    Group and topic versions come from one counter, so a group's version can be the largest of its own and
    its topics' versions, and an unknown group can report the current value."""

    __slots__ = (
        "_sorted",
        "by_name",
        "by_topic",
        "containers_seq",
        "min_reference",
        "partitions",
        "seq",
        "stride",
    )

    def __init__(self, stride: int) -> None:
        self.stride = stride
        """Integers per window."""
        self.by_name: dict[str, Group] = {}
        self.by_topic: dict[str, set[str]] = {}
        self.partitions = 0
        """Partition entries over all groups, placeholders included."""
        self.min_reference = 0
        """At most the oldest expiry reference of any group, so `expire` costs O(1) while none is due."""
        self.seq = 0
        self.containers_seq = 0
        """Grows whenever `containers()` may hold something it did not (a new set, the names sorted again) or
        one of them may be tracked again (a dict takes itself back into the collector's lists when a group or
        a set goes in): unlike `seq`, commits do not move it."""
        self._sorted: list[str] | None = []
        """The names sorted, kept until a group comes or goes; None when they must be sorted again."""

    def names(self) -> list[str]:
        """The groups' names, sorted (a new list). Sorting 100,000 names took 50-100 ms, twice per evaluation
        round, where groups come and go far more rarely than rounds run."""
        if self._sorted is None:
            self._sorted = sorted(self.by_name)
            self.containers_seq += 1
        return self._sorted[:]

    def containers(self) -> list[object]:
        """The containers that grow with the groups: every group by name, the groups of each topic, the names
        sorted. They hold names and groups, and a group nothing that refers back to them."""
        kept: list[object] = [self.by_name, self.by_topic, *self.by_topic.values()]
        if self._sorted is not None:
            kept.append(self._sorted)
        return kept

    def next_version(self) -> int:
        self.seq += 1
        return self.seq

    def touch(self, group: Group) -> None:
        """The group's snapshot changed."""
        self.seq += 1
        group.version = self.seq

    def add(self, name: str, now_ms: int) -> Group:
        group = self.by_name[name] = Group(now_ms, self.next_version())
        self._sorted = None
        self.containers_seq += 1
        if now_ms < self.min_reference:
            self.min_reference = now_ms
        return group

    def add_topic(self, name: str, group: Group, topic: str) -> GroupTopic:
        entry = group.topics[topic] = GroupTopic(self.stride)
        members = self.by_topic.get(topic)
        if members is None:
            members = self.by_topic[topic] = set()
            self.containers_seq += 1
        members.add(name)
        return entry

    def pad(self, entry: GroupTopic, count: int) -> None:
        """Placeholders up to `count` partitions."""
        self.partitions += entry.pad(count)

    def reach(
        self,
        name: str,
        group: Group | None,
        entry: GroupTopic | None,
        topic: str,
        partition: int,
        count: int,
        now_ms: int,
    ) -> tuple[Group, GroupTopic]:
        """The group and group-topic (`group`, `entry` if not None) that hold `partition`, creating them, and
        like Burrow's getConsumerPartition, placeholders up to the topic's partition `count`, as needed."""
        if group is None:
            group = self.add(name, now_ms)
        if entry is None:
            entry = self.add_topic(name, group, topic)
        if partition >= entry.size:
            self.partitions += entry.pad(max(count, partition + 1))
        return group, entry

    def drop_topic(self, name: str, group: Group, topic: str) -> None:
        entry = group.topics.pop(topic)
        self.partitions -= entry.size
        members = self.by_topic[topic]
        members.discard(name)
        if not members:
            del self.by_topic[topic]

    def remove(self, name: str) -> None:
        group = self.by_name.pop(name, None)
        if group is None:
            return
        self._sorted = None
        for topic in list(group.topics):
            self.drop_topic(name, group, topic)
        # An unknown group reports the current version: make it exceed the removed group's last version.
        self.seq += 1

    def delete_topic(self, topic: str, *, confirmed: bool) -> list[str]:
        """Remove the topic from every group; returns the groups it left empty that must go too. A topic the
        metadata never listed (`confirmed` false) was not deleted in Kafka: its commits came from history (or
        a mistyped assign()), so a group it leaves empty never consumed anything that exists."""
        emptied: list[str] = []
        for name in self.by_topic.get(topic, set()).copy():
            group = self.by_name[name]
            self.drop_topic(name, group, topic)
            if not confirmed and not group.topics:
                emptied.append(name)
            else:
                self.touch(group)
        return emptied

    def due(self, now_ms: int, expire_ms: int) -> list[str]:
        """The groups whose expiry reference is older than `now_ms - expire_ms`, sorted. Costs O(1) unless
        some group is due; the caller removes them."""
        cutoff = now_ms - expire_ms
        if self.min_reference >= cutoff:
            return []
        due: list[str] = []
        oldest_kept = now_ms
        for name, group in self.by_name.items():
            reference = group.expiry_reference()
            if reference < cutoff:
                due.append(name)
            elif reference < oldest_kept:
                oldest_kept = reference
        self.min_reference = oldest_kept
        return sorted(due)
