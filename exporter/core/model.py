"""The shared vocabulary of lagwatch: frozen value types, standard library only.

Every other module imports this one; this one imports nothing of lagwatch. Sources produce the record
types, storage keeps commits and produces snapshots, the evaluator turns snapshots into statuses, and
exposition renders statuses. See docs/architecture.md.
"""

from __future__ import annotations

import operator
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import NamedTuple, TypeVar, overload


class Status(IntEnum):
    """Burrow's status codes, ordered by severity. Group statuses are NOTFOUND, OK, WARN, ERR; partition
    statuses are OK, WARN, STOP, STALL, REWIND."""

    NOTFOUND = 0
    OK = 1
    WARN = 2
    ERR = 3
    STOP = 4
    STALL = 5
    REWIND = 6


class Commit(NamedTuple):
    """One committed offset of a group-partition, as kept in its window.

    A NamedTuple rather than a frozen dataclass: snapshots build ten of these per partition on every
    evaluation, and a NamedTuple is built three times faster."""

    offset: int
    """The committed offset: the next record the group will read."""
    order: int
    """Position of the commit in `__consumer_offsets` (or the poll sequence of the admin-API source)."""
    timestamp_ms: int
    """Commit time from the broker, in milliseconds since the epoch."""
    lag: int | None
    """HEAD minus offset when the commit was stored; None when the HEAD was unknown or the commit came out of
    order."""
    observed_ms: int = 0
    """Wall-clock time lagwatch stored the commit (Burrow's `observedAt`)."""


# ----------------------------------------------------------------------------------------------------
# Records decoded from __consumer_offsets (or synthesised by the admin-API source). The storage applies them.


@dataclass(frozen=True, slots=True)
class OffsetCommit:
    """Key types 0/1 with a value: a group committed an offset for a partition."""

    group: str
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    leader_epoch: int = -1
    metadata: str = ""


@dataclass(frozen=True, slots=True)
class OffsetTombstone:
    """Key types 0/1 without a value: the committed offset was deleted or expired."""

    group: str
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class TopicPartitions:
    """Partitions of one topic, as in an assignment. `topic` is a name, or for KIP-848 records a topic id
    (UUID string) when `by_id` is true."""

    topic: str
    partitions: tuple[int, ...]
    by_id: bool = False


@dataclass(frozen=True, slots=True)
class Member:
    """A group member and what it was assigned."""

    member_id: str
    client_id: str
    client_host: str
    group_instance_id: str | None = None
    rebalance_timeout_ms: int = -1
    session_timeout_ms: int = -1
    assignment: tuple[TopicPartitions, ...] = ()


@dataclass(frozen=True, slots=True)
class GroupMetadata:
    """Key type 2 with a value: a classic group's generation and members."""

    group: str
    protocol_type: str
    generation: int
    protocol: str | None
    leader: str | None
    members: tuple[Member, ...]
    current_state_timestamp_ms: int = -1


@dataclass(frozen=True, slots=True)
class GroupTombstone:
    """Key type 2 (or 3, the KIP-848 group record) without a value: the group was deleted."""

    group: str


@dataclass(frozen=True, slots=True)
class ConsumerGroupMember:
    """KIP-848 member metadata (key type 5 with a value)."""

    group: str
    member_id: str
    client_id: str
    client_host: str
    instance_id: str | None = None
    rack_id: str | None = None


@dataclass(frozen=True, slots=True)
class ConsumerGroupMemberLeft:
    """KIP-848 member metadata tombstone (key type 5 without a value)."""

    group: str
    member_id: str


@dataclass(frozen=True, slots=True)
class ConsumerGroupAssignment:
    """KIP-848 current member assignment (key type 8): partitions by topic id. Empty on a tombstone."""

    group: str
    member_id: str
    partitions: tuple[TopicPartitions, ...]


@dataclass(frozen=True, slots=True)
class ConsumerGroupTopics:
    """KIP-848 partition metadata (key type 4): the topic id to name map the group subscribed to."""

    group: str
    topic_names: tuple[tuple[str, str], ...]
    """Pairs of (topic id, topic name)."""


@dataclass(frozen=True, slots=True)
class SkippedRecord:
    """A record of a type lagwatch does not interpret (share groups, streams groups, future types)."""

    key_type: int


@dataclass(frozen=True, slots=True)
class DecodeError:
    """A malformed record: counted and logged, never raised."""

    key_type: int | None
    reason: str


CommitFields = tuple[str, str, int, int, int, int, str]
"""An offset commit as a plain tuple, `OffsetCommit`'s fields in their order (group, topic, partition,
offset, timestamp_ms, leader_epoch, metadata; `OffsetCommit(*fields)` is the record): how a decoded batch
carries commits, one tuple per record instead of a frozen dataclass (`decoder.decode_batch`,
`Storage.apply_batch`)."""

Record = (
    OffsetCommit
    | OffsetTombstone
    | GroupMetadata
    | GroupTombstone
    | ConsumerGroupMember
    | ConsumerGroupMemberLeft
    | ConsumerGroupAssignment
    | ConsumerGroupTopics
    | SkippedRecord
    | DecodeError
)


# ----------------------------------------------------------------------------------------------------
# Read side: what the storage hands to the evaluator, and what the evaluator hands to exposition.


class PartitionSnapshot(NamedTuple):
    """One group-partition as stored, read at one instant.

    The window is columnar, as the storage keeps it: `commits` holds five integers per stored commit, oldest
    first (`COMMIT_FIELDS`: offset, order, timestamp, observed time, lag with -1 for unknown), and `slots` is
    the window's size. A round reads 100,000 of these and its rules want columns (every offset, every lag), so
    `Commit` objects are built only where asked for: the window's two ends, and `window` for the API.
    A NamedTuple rather than a frozen dataclass, like `Commit`: a frozen dataclass's `__init__` (one
    `object.__setattr__` per field) took 2.1 us against 0.3 us."""

    topic: str
    partition: int
    slots: int
    """The window's size (`intervals`); 0 for a placeholder partition."""
    commits: Sequence[int]
    """The stored commits, oldest first, `COMMIT_FIELDS` integers each; at most `slots` of them. An
    `array('q')` copied from the storage's: integer objects are made only for what the rules read."""
    broker_offsets: tuple[int, ...]
    """The recent HEAD offsets of the partition, oldest first."""
    current_lag: int | None
    """Newest HEAD minus newest committed offset, never negative; None while the HEAD is unknown."""
    owner: str = ""
    client_id: str = ""
    member_id: str = ""

    @property
    def window(self) -> tuple[Commit | None, ...]:
        """The window as `Commit`s: `slots` of them oldest first, leading Nones for unfilled slots; empty for
        a placeholder partition."""
        commits = self.commits
        stored = [commit_at(commits, i) for i in range(0, len(commits), COMMIT_FIELDS)]
        return (*(None,) * (self.slots - len(stored)), *stored)

    @classmethod
    def of(
        cls,
        topic: str,
        partition: int,
        window: Sequence[Commit | None],
        broker_offsets: tuple[int, ...],
        current_lag: int | None,
        owner: str = "",
        client_id: str = "",
        member_id: str = "",
    ) -> PartitionSnapshot:
        """The snapshot of a window of `Commit`s (leading Nones for unfilled slots)."""
        stored = [c for c in window if c is not None]
        fields = (
            (c.offset, c.order, c.timestamp_ms, c.observed_ms, -1 if c.lag is None else c.lag) for c in stored
        )
        commits = array("q", [field for commit in fields for field in commit])
        return cls(
            topic, partition, len(window), commits, broker_offsets, current_lag, owner, client_id, member_id
        )


COMMIT_FIELDS = 5
"""Integers per commit in `PartitionSnapshot.commits`: offset, order, timestamp, observed time, lag (-1 for
unknown), the storage's own layout."""


def commit_at(commits: Sequence[int], start: int) -> Commit:
    """The `Commit` whose fields start at `commits[start]`."""
    offset, order, ts, observed, lag = commits[start : start + COMMIT_FIELDS]
    return _new_commit(Commit, (offset, order, ts, None if lag < 0 else lag, observed))


_new_commit = _new_status = tuple.__new__


_T = TypeVar("_T")


def same_objects(was: Sequence[object], now: Sequence[object]) -> bool:
    """Whether `now` holds the very objects `was` holds, in the same order (compared by identity, in C)."""
    return was is now or (len(was) == len(now) and all(map(operator.is_, was, now)))


def kept(new: _T, old: _T | None) -> _T:
    """`old` when it equals `new`, else `new`: a value kept from the round before instead of an equal copy,
    so that two rounds alive at once share what did not change."""
    return old if old is not None and old == new else new


@dataclass(frozen=True, slots=True)
class GroupSnapshot:
    """A consumer group as stored, partitions sorted by topic then partition."""

    cluster: str
    group: str
    partitions: tuple[PartitionSnapshot, ...]
    last_commit_ms: int


class Rule(Enum):
    """What settled a partition's status (exporter.core.reasons has the words); the value is its API name."""

    # Members are singletons compared by identity, so the identity's hash will do: Enum's own hashes the name
    # in Python, a call on every lookup of a rule's status and explainer, twice per lagging partition.
    __hash__ = object.__hash__

    NO_COMMITS = "no_commits"
    """OK: the partition has no stored commit (a placeholder, or assigned but never committed)."""
    LAG_UNKNOWN = "lag_unknown"
    """OK: the partition's HEAD offset is not known yet, so neither is its lag."""
    INCOMPLETE = "incomplete"
    """OK: the window is less complete than `minimum_complete`, so the rules do not run."""
    CAUGHT_UP = "caught_up"
    """OK: the current lag is at or below `allowed_lag`."""
    STOPPED = "stopped"
    """STOP (Burrow's rule 3): no commit for longer than the window spans, and HEAD moved past the commit."""
    REWOUND = "rewound"
    """REWIND (rule 2): the committed offset went back and has not returned to where it was."""
    STALLED = "stalled"
    """STALL (rule 4): the same offset committed over the whole window while messages wait."""
    LAG_NOT_DECREASING = "lag_not_decreasing"
    """WARN (rule 5): the lag never fell over the window."""
    LAG_ZERO_IN_WINDOW = "lag_zero_in_window"
    """OK (rule 1): some commit of the window had a lag at or below `allowed_lag`."""
    LAGS_UNKNOWN_IN_WINDOW = "lags_unknown_in_window"
    """OK (lagwatch's gate of rules 4 and 5): some commit of the window has an unknown lag."""
    LAG_DECREASED = "lag_decreased"
    """OK (rule 5 does not hold): the lag fell at some commit of the window."""


class Reason(NamedTuple):
    """Why a partition has its status: the rule that settled it and the figures that rule used, in the
    order `exporter.core.reasons.FIGURES[rule]` names them.
    A NamedTuple: one is built per partition per evaluation."""

    rule: Rule
    figures: tuple[int | None, ...] = ()


class GroupReason(NamedTuple):
    """Why a group has its status: its partitions with the worst status, and the first one's reason."""

    status: Status
    partition_count: int
    worst_status: Status
    worst: tuple[tuple[str, int], ...]
    """(topic, partition) of the first few partitions with `worst_status`, in topic, partition order."""
    worst_count: int
    """How many partitions have `worst_status`."""
    first: Reason | None
    """The reason of the first partition with `worst_status`; None when it has none or there is none."""


class PartitionStatus(NamedTuple):
    """The evaluator's verdict on one group-partition (Burrow's PartitionStatus).

    A NamedTuple for the reason `PartitionSnapshot` is one: a round builds one per group-partition."""

    topic: str
    partition: int
    owner: str
    client_id: str
    status: Status
    start: Commit | None
    end: Commit | None
    current_lag: int | None
    complete: float
    member_id: str = ""
    reason: Reason | None = None
    """None only where the status came from elsewhere (a Burrow server, read by `lagwatch status`)."""


STATUS_BY_CODE = tuple(Status)
"""Each `Status` at its code, as `Partitions.statuses` holds them: indexing it costs a tenth of calling
`Status(code)`."""
START, END = 1, 2
"""Bits of `Partitions.present`: the partition has a start, an end `Commit`."""
ENDS = 2 * COMMIT_FIELDS
"""Integers per partition in `Partitions.ends`."""


class Partitions(Sequence[PartitionStatus]):
    """A group's partition statuses as columns, one item per partition in (topic, partition) order; a sequence
    of `PartitionStatus`, each built when it is read.

    A round holds the statuses of every group-partition, and the one before stays published while it is
    built: a `PartitionStatus` with its two window-end `Commit`s and their integers was 8 objects and some 400
    bytes per group-partition, made anew for every partition whose lag moved. As columns a group is a dozen
    objects whatever its partitions, a column that did not change is the column before (`kept`), and what the
    exposition reads by the million (statuses, lags, committed offsets) is read column by column."""

    __slots__ = (
        "client_ids",
        "completes",
        "ends",
        "lags",
        "member_ids",
        "numbers",
        "owners",
        "present",
        "reasons",
        "statuses",
        "topics",
    )

    topics: tuple[str, ...]
    numbers: tuple[int, ...]
    """The partitions' numbers."""
    owners: tuple[str, ...]
    client_ids: tuple[str, ...]
    member_ids: tuple[str, ...]
    statuses: bytes
    """Each partition's `Status` as its code."""
    present: bytes
    """Which window ends each partition has: `START` and `END` bits (both or neither, as the evaluator makes
    them)."""
    ends: array[int]
    """`ENDS` integers per partition: its start and its end `Commit` in the storage's layout
    (`COMMIT_FIELDS`: offset, order, timestamp, observed time, lag with -1 for unknown); zeros where `present`
    has no such end."""
    lags: array[int]
    """Each partition's current lag, -1 while unknown."""
    completes: tuple[float, ...]
    reasons: tuple[Reason | None, ...]

    def __init__(
        self,
        topics: tuple[str, ...],
        numbers: tuple[int, ...],
        owners: tuple[str, ...],
        client_ids: tuple[str, ...],
        member_ids: tuple[str, ...],
        statuses: bytes,
        present: bytes,
        ends: array[int],
        lags: array[int],
        completes: tuple[float, ...],
        reasons: tuple[Reason | None, ...],
    ) -> None:
        self.topics = topics
        self.numbers = numbers
        self.owners = owners
        self.client_ids = client_ids
        self.member_ids = member_ids
        self.statuses = statuses
        self.present = present
        self.ends = ends
        self.lags = lags
        self.completes = completes
        self.reasons = reasons

    @classmethod
    def of(cls, partitions: Iterable[PartitionStatus]) -> Partitions:
        """The columns of these statuses, in their order."""
        parts = tuple(partitions)
        ends = array("q")
        for p in parts:
            for end in (p.start, p.end):
                ends.extend(_NO_END if end is None else _fields(end))
        return cls(
            tuple(p.topic for p in parts),
            tuple(p.partition for p in parts),
            tuple(p.owner for p in parts),
            tuple(p.client_id for p in parts),
            tuple(p.member_id for p in parts),
            bytes(p.status for p in parts),
            bytes((p.start is not None) * START | (p.end is not None) * END for p in parts),
            ends,
            array("q", (-1 if p.current_lag is None else p.current_lag for p in parts)),
            tuple(p.complete for p in parts),
            tuple(p.reason for p in parts),
        )

    def __len__(self) -> int:
        return len(self.numbers)

    @overload
    def __getitem__(self, index: int) -> PartitionStatus: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[PartitionStatus, ...]: ...

    def __getitem__(self, index: int | slice) -> PartitionStatus | tuple[PartitionStatus, ...]:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self))))
        if index < 0:
            index += len(self)
        present, lag, at = self.present[index], self.lags[index], index * ENDS
        # In PartitionStatus field order, without NamedTuple's Python-level __new__ (twice the cost).
        return _new_status(
            PartitionStatus,
            (
                self.topics[index],
                self.numbers[index],
                self.owners[index],
                self.client_ids[index],
                STATUS_BY_CODE[self.statuses[index]],
                commit_at(self.ends, at) if present & START else None,
                commit_at(self.ends, at + COMMIT_FIELDS) if present & END else None,
                None if lag < 0 else lag,
                self.completes[index],
                self.member_ids[index],
                self.reasons[index],
            ),
        )

    def __iter__(self) -> Iterator[PartitionStatus]:
        return map(self.__getitem__, range(len(self)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Partitions):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in Partitions.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Partitions({list(self)!r})"

    def current_lags(self) -> list[int | None]:
        """Each partition's current lag, None while unknown."""
        return [None if lag < 0 else lag for lag in self.lags]

    def committed(self) -> list[int | None]:
        """Each partition's newest committed offset (its end's), None without commits."""
        return [
            offset if present & END else None
            for offset, present in zip(self.ends[COMMIT_FIELDS::ENDS], self.present, strict=True)
        ]

    def commit_times_ms(self) -> list[int | None]:
        """The broker timestamp of each partition's newest commit, None without commits."""
        return [
            ts if present & END else None
            for ts, present in zip(self.ends[COMMIT_FIELDS + 2 :: ENDS], self.present, strict=True)
        ]


_NO_END = (0,) * COMMIT_FIELDS
"""`Partitions.ends` of a missing window end."""


def _fields(commit: Commit) -> tuple[int, int, int, int, int]:
    """A `Commit` in the storage's layout."""
    return (
        commit.offset,
        commit.order,
        commit.timestamp_ms,
        commit.observed_ms,
        -1 if commit.lag is None else commit.lag,
    )


NO_PARTITIONS = Partitions((), (), (), (), (), b"", b"", array("q"), array("q"), (), ())
"""The partitions of a group without any."""


@dataclass(frozen=True, slots=True)
class GroupStatus:
    """The evaluator's verdict on a group (Burrow's ConsumerGroupStatus); partitions sorted by topic, then
    partition."""

    cluster: str
    group: str
    status: Status
    complete: float
    partitions: Partitions
    partition_count: int
    maxlag: PartitionStatus | None
    totallag: int
    reason: GroupReason | None = None
    """None only where the status came from elsewhere (a Burrow server, read by `lagwatch status`)."""


_NOT_FOUND_REASON = GroupReason(Status.NOTFOUND, 0, Status.OK, (), 0, None)


def not_found(cluster: str, group: str) -> GroupStatus:
    """Burrow's answer for a group (or cluster) it does not have: NOTFOUND, complete, without partitions."""
    return GroupStatus(
        cluster=cluster,
        group=group,
        status=Status.NOTFOUND,
        complete=1.0,
        partitions=NO_PARTITIONS,
        partition_count=0,
        maxlag=None,
        totallag=0,
        reason=_NOT_FOUND_REASON,
    )


@dataclass(frozen=True, slots=True)
class ClusterState:
    """How far the statuses of one cluster can be trusted: readiness, reachability and their age, for
    `/-/ready`, the Burrow API's extra field and `lagwatch status`. Times are seconds since the epoch."""

    ready: bool
    """The committed offsets were replayed, HEAD offsets fetched and every group evaluated, at least once."""
    waiting_for: str
    """Why the cluster is not ready yet, one phrase; empty once it is."""
    reachable: bool
    unreachable_since: float | None
    """Since when lagwatch cannot reach the cluster; None while it can."""
    cause: str
    """Why it cannot reach the cluster or read its committed offsets, one line; empty while it can."""
    statuses_as_of: float | None
    """When the statuses were last evaluated; None before the first evaluation."""
