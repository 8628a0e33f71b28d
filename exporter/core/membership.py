"""Who owns which partition of a consumer group: classic groups' assignments from GroupMetadata, KIP-848
groups' from their member, assignment and topic records, and the cluster's topic id map that both may need;
`Owners` keeps the stored groups' owners (beside their windows) in line with them. Pure and synchronous.

A KIP-848 group's owners are recomputed from all its members' current assignments on every record: a
partition moving from one member to another may be written in either order, so per-record updates could clear
the new owner. Burrow skips these groups' records."""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from exporter.core.filters import NameFilter
from exporter.core.groups import Groups
from exporter.core.model import (
    ConsumerGroupAssignment,
    ConsumerGroupMember,
    ConsumerGroupMemberLeft,
    ConsumerGroupTopics,
    GroupMetadata,
    TopicPartitions,
)
from exporter.core.topics import Topic
from exporter.core.windows import Owner

__all__ = ["Attribution", "Membership", "MembershipRecord", "Owners"]

MembershipRecord = (
    ConsumerGroupMember | ConsumerGroupMemberLeft | ConsumerGroupAssignment | ConsumerGroupTopics
)
"""The KIP-848 records `Membership.apply` takes."""


class _Kip848:
    """A KIP-848 group: members, their assignments by topic id or name, the group's topic id map, and the
    partitions it attributed last."""

    __slots__ = ("assignments", "members", "owned", "topic_names")

    def __init__(self) -> None:
        self.members: dict[str, tuple[str, str]] = {}
        self.assignments: dict[str, tuple[TopicPartitions, ...]] = {}
        self.topic_names: dict[str, str] = {}
        self.owned: set[tuple[str, int]] = set()


@dataclass(frozen=True, slots=True)
class Attribution:
    """A KIP-848 group's owners now, and the partitions it attributed before but no longer does."""

    owners: dict[tuple[str, int], Owner]
    released: set[tuple[str, int]]


class Membership:
    """The membership state of every KIP-848 group of a cluster, and its topic ids."""

    def __init__(self) -> None:
        self._groups: dict[str, _Kip848] = {}
        self._unresolved: set[str] = set()
        self._topic_ids: dict[str, str] = {}

    def __contains__(self, group: str) -> bool:
        return group in self._groups

    def set_topic_ids(self, ids: Mapping[str, str]) -> list[str]:
        """Replace the topic id (UUID string) -> name map. Returns the groups whose assignments named topic
        ids that were unknown, sorted: their owners need attributing again."""
        self._topic_ids = dict(ids)
        return sorted(self._unresolved)

    def classic_owners(self, record: GroupMetadata) -> Iterator[tuple[str, int, Owner]]:
        """(topic, partition, owner) of each partition a classic group's members were assigned; assignments
        by an unknown topic id are skipped."""
        for member in record.members:
            owner = (member.client_host, member.client_id, member.member_id)
            for assigned in member.assignment:
                topic = self._topic_ids.get(assigned.topic) if assigned.by_id else assigned.topic
                if topic is None:
                    continue
                for partition in assigned.partitions:
                    yield topic, partition, owner

    def apply(self, record: MembershipRecord) -> None:
        """Update a KIP-848 group's state with one of its records; `attribute` then says who owns what."""
        state = self._groups.get(record.group)
        if state is None:
            state = self._groups[record.group] = _Kip848()
        match record:
            case ConsumerGroupMember(member_id=member, client_id=client, client_host=host):
                state.members[member] = (client, host)
            case ConsumerGroupMemberLeft(member_id=member):
                state.members.pop(member, None)
                state.assignments.pop(member, None)
            case ConsumerGroupAssignment(member_id=member, partitions=assigned):
                if assigned:
                    state.assignments[member] = assigned
                else:
                    state.assignments.pop(member, None)
            case ConsumerGroupTopics(topic_names=pairs):
                state.topic_names = dict(pairs)

    def attribute(self, group: str) -> Attribution | None:
        """The group's owners from all its members' current assignments; None for a group without KIP-848
        state. A group whose state became empty is forgotten."""
        state = self._groups.get(group)
        if state is None:
            return None
        wanted: dict[tuple[str, int], Owner] = {}
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
            self._unresolved.add(group)
        else:
            self._unresolved.discard(group)
        released = state.owned.difference(wanted)
        state.owned = set(wanted)
        if not (state.members or state.assignments or state.topic_names):
            del self._groups[group]
        return Attribution(wanted, released)

    def forget(self, group: str) -> None:
        """Drop the group's state (the group was deleted)."""
        self._groups.pop(group, None)
        self._unresolved.discard(group)


class Owners:
    """Keeps the owners of the stored groups' partitions in line with the membership records: Burrow's
    addConsumerOwner for classic groups, and the same for KIP-848 groups, which Burrow skips. An owned
    partition gets a window (empty until its first commit), its group and topic placeholders as a commit
    would."""

    def __init__(
        self,
        groups: Groups,
        topics: Mapping[str, Topic],
        accept_group: NameFilter,
        accept_topic: NameFilter,
        empty: array[int],
    ) -> None:
        """`empty` is a window without commits; `groups` and `topics` are the storage's own."""
        self._groups = groups
        self._topics = topics
        self._accept_group = accept_group
        self._accept_topic = accept_topic
        self._empty = empty
        self.membership = Membership()
        self.filtered = 0
        """Membership records dropped by the group allow/deny list."""

    def group_metadata(self, record: GroupMetadata, now: int) -> None:
        """A classic group's GroupMetadata."""
        if record.protocol_type != "consumer":
            return
        if not self._accept_group(record.group):
            self.filtered += 1
            return
        if not record.members:
            group = self._groups.by_name.get(record.group)
            if group is not None:
                cleared = [entry.disown_all() for entry in group.topics.values()]
                if any(cleared):
                    self._groups.touch(group)
            return
        changed = False
        for topic, partition, owner in self.membership.classic_owners(record):
            changed |= self._set_owner(record.group, topic, partition, owner, now)
        if changed:
            self._groups.touch(self._groups.by_name[record.group])

    def kip848(self, record: MembershipRecord, now: int) -> None:
        """A KIP-848 group's member, assignment or topics record."""
        group = record.group
        if group in self._groups.by_name or group in self.membership or self._accept_group(group):
            self.membership.apply(record)
            self.attribute(group, now)
        else:
            self.filtered += 1

    def attribute(self, name: str, now: int) -> None:
        """Bring a KIP-848 group's stored owners in line with its membership."""
        attribution = self.membership.attribute(name)
        if attribution is None:
            return
        changed = False
        group = self._groups.by_name.get(name)
        if group is not None:
            for topic, partition in attribution.released:
                entry = group.topics.get(topic)
                if entry is not None and entry.disown(partition):
                    changed = True
        for (topic, partition), owner in attribution.owners.items():
            changed |= self._set_owner(name, topic, partition, owner, now)
        if changed:
            self._groups.touch(self._groups.by_name[name])

    def _set_owner(self, name: str, topic: str, partition: int, owner: Owner, now: int) -> bool:
        """Returns whether the snapshot changed; the caller bumps the version."""
        group = self._groups.by_name.get(name)
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
        group, entry = self._groups.reach(name, group, entry, topic, partition, count, now)
        had_window = entry.has(partition)
        entry.open(partition, self._empty)
        return entry.own(partition, owner) or not had_window
