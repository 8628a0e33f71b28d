"""The verdicts on one partition and one group: Burrow's `evaluatePartitionStatus` (the window trimmed, its
completeness, the rules of `rules.partition_rule` and the reason in figures) and `evaluateConsumerStatus`
(the group roll-up). Pure: `now` is an argument in seconds since the epoch, truncated to whole seconds.

Deliberate differences from Burrow, each with a test:
- A partition whose current lag is unknown (HEAD not fetched yet) is kept and reported OK with `current_lag`
  None. Burrow drops such commits at ingest, so the partition would not exist at all.
- Partitions are evaluated and reported in (topic, partition) order, so `maxlag` ties go to the first one in
  that order; Burrow walks a Go map and picks an arbitrary one. An unknown lag never beats a known one.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter
from typing import Any, cast

from exporter.core.model import (
    COMMIT_FIELDS,
    END,
    ENDS,
    NO_PARTITIONS,
    START,
    Commit,
    GroupSnapshot,
    GroupStatus,
    Partitions,
    PartitionSnapshot,
    PartitionStatus,
    Reason,
    Rule,
    Status,
    kept,
    not_found,
)
from exporter.core.reasons import EXPLAIN, RULE_STATUS, caught_up, group_reason
from exporter.core.rules import partition_rule, stopped

__all__ = ["PartitionEvaluation", "completeness", "evaluate_group", "evaluate_partition"]

# An enum member lookup costs about 0.1 us on Python 3.11; the hot path uses these.
_OK, _ERR = Status.OK, Status.ERR
_STATUS_OF = dict(RULE_STATUS)
"""A plain dict: a lookup through the public read-only view costs twice as much."""


@dataclass(frozen=True, slots=True)
class PartitionEvaluation:
    """The verdict on one partition window (Burrow's PartitionStatus without the identifying fields)."""

    status: Status
    complete: float
    """Share of the window's slots holding a commit; 1.0 when full, 0.0 for a placeholder partition."""
    start: Commit | None
    end: Commit | None
    current_lag: int | None
    reason: Reason
    """The rule that settled `status` and the figures it used (exporter.core.reasons puts them in words)."""


# ------------------------------------------------------------------------------------------------------------
# One partition.


def completeness(slots: int, stored: int) -> float:
    """Burrow's `complete` of a window of `slots` slots holding `stored` commits: the share of slots filled.

    Burrow's quirk is kept: a window of only empty slots counts as one slot filled (complete 1/slots), with no
    commit to evaluate. A window of no slots is a placeholder partition: complete 0.0."""
    if not slots:
        return 0.0
    if stored == slots:
        # The commonest answer, as the code's constant: a round would otherwise make a float per partition.
        return 1.0
    return max(stored, 1) / slots


_WINDOW_RULES = frozenset(
    {
        Rule.REWOUND,
        Rule.LAG_ZERO_IN_WINDOW,
        Rule.LAGS_UNKNOWN_IN_WINDOW,
        Rule.LAG_NOT_DECREASING,
        Rule.LAG_DECREASED,
    }
)
"""The rules that settle a lagging partition after STOP, from its window's columns and the settings alone, and
whose reasons' figures come from those alone (STALLED's name the current lag)."""
_NO_COMMITS_REASON = Reason(Rule.NO_COMMITS)
_LAG_UNKNOWN_REASON = Reason(Rule.LAG_UNKNOWN)
_F = COMMIT_FIELDS


def _lagging(
    commits: Sequence[int],
    broker_offsets: Sequence[int],
    current_lag: int,
    now_s: int,
    allowed_lag: int,
    minimum_complete: float,
    complete: float,
    was: Reason | None,
    same_window: bool,
) -> tuple[Status, Reason]:
    """Status and reason of a partition with commits and a known lag that is not simply caught up (lagging,
    or its window less complete than `minimum_complete`): Burrow's rules on the window in the storage's layout
    (`PartitionSnapshot.commits`). `was` is the partition's reason before, returned where equal; with
    `same_window` (it was settled from this very window with the same settings) a reason of `_WINDOW_RULES`
    stands while the partition is still not stopped."""
    if (
        same_window
        and was is not None
        and was.rule in _WINDOW_RULES
        and not stopped((commits[2], commits[-_F + 2]), now_s, commits[-_F], broker_offsets)
    ):
        # The same window, lagging as before and not stopped: the rules after STOP read only the window and
        # the settings, so they settle it as before, with the same figures. Half the groups of a busy
        # cluster commit between two HEAD rounds; the other half's partitions skip the rules here.
        return _STATUS_OF[was.rule], was
    # The rules take the offsets and the lags as lists (they compare each with its sorted copy); the storage
    # hands a window on as an `array('q')`, whose `tolist` is a fifth faster than list().
    window = cast("array[int]", commits)
    offsets, timestamps, lags = window[0::_F].tolist(), commits[2::_F], window[4::_F].tolist()
    rule = (
        Rule.INCOMPLETE
        if complete < minimum_complete
        else partition_rule(offsets, timestamps, lags, broker_offsets, current_lag, now_s, allowed_lag)
    )
    reason = EXPLAIN[rule](
        rule, offsets, timestamps, lags, broker_offsets, current_lag, allowed_lag, complete, minimum_complete
    )
    return _STATUS_OF[rule], reason if was is None else kept(reason, was)


def evaluate_partition(
    window: Sequence[Commit | None],
    broker_offsets: Sequence[int],
    current_lag: int | None,
    now: float,
    allowed_lag: int = 0,
    minimum_complete: float = 0.0,
) -> PartitionEvaluation:
    """Evaluate one group-partition (as `evaluate_group` evaluates each of a group's).

    Args:
        window: the stored commits, oldest first; None only for the not-yet-filled leading slots. Empty for a
            placeholder partition (OK, complete 0.0).
        broker_offsets: the recent HEAD offsets of the partition, oldest first.
        current_lag: newest HEAD minus newest committed offset; None while the HEAD is unknown (then OK).
        now: seconds since the epoch; truncated to whole seconds.
        allowed_lag: lags at or below this count as zero (Burrow's `allowed-lag`).
        minimum_complete: windows less complete than this are OK without evaluation (`minimum-complete`).
    """
    snapshot = PartitionSnapshot.of("", 0, window, tuple(broker_offsets), current_lag)
    group = GroupSnapshot("", "", (snapshot,), 0)
    (p,) = evaluate_group(group, now, allowed_lag=allowed_lag, minimum_complete=minimum_complete).partitions
    assert p.reason is not None  # evaluate_group gives every partition it evaluated a reason
    return PartitionEvaluation(p.status, p.complete, p.start, p.end, p.current_lag, p.reason)


# ------------------------------------------------------------------------------------------------------------
# One group.

_by_topic_partition = attrgetter("topic", "partition")


def evaluate_group(
    snapshot: GroupSnapshot | None,
    now: float,
    *,
    allowed_lag: int = 0,
    minimum_complete: float = 0.0,
    cluster: str = "",
    group: str = "",
    previous: GroupStatus | None = None,
    same_windows: bool = False,
) -> GroupStatus:
    """Evaluate every partition of a group and roll them up (Burrow's `evaluateConsumerStatus`).

    The group status is the worst partition status, with STOP, STALL and REWIND reported as ERR. `complete` is
    the share of partitions whose window is full (0.0 without partitions); placeholder partitions count.
    `totallag` sums the known current lags. `maxlag` is the partition with the greatest known current lag, the
    first in (topic, partition) order on a tie. `cluster` and `group` only name the NOTFOUND result.

    `previous`, the group's status before, changes no value: a reason, a column of the partitions, the
    partitions or the whole status equal to its part there is that object, not a copy. With `same_windows`
    (the caller vouches that `previous` was evaluated from these very commit windows, with the same
    `allowed_lag` and `minimum_complete`, as `EvaluationCache` knows from the storage's `windows_version`) a
    partition still lagging and not stopped keeps the rule and reason it had when these read only the window.
    So the two rounds alive while one replaces the other share what did not change, and the exposition sees by
    identity what it need not write again.
    """
    if snapshot is None:
        return not_found(cluster, group)
    now_s = math.floor(now)
    status = _OK
    totallag = 0
    full = 0
    maxlag = -1
    maxlag_rank = -1
    before = NO_PARTITIONS if previous is None else previous.partitions
    parts = sorted(snapshot.partitions, key=_by_topic_partition)
    count = len(parts)
    # The snapshots' fields as columns, transposed in C: the names are the status's columns as they are.
    topics, numbers, slot_counts, windows, heads, current_lags, owners, client_ids, member_ids = (
        zip(*parts, strict=True) if count else _NO_FIELDS
    )
    # The same partitions in the same order as before (almost always): a reason can be the one before.
    same_layout = numbers == before.numbers and topics == before.topics
    # Then with the caller's word the window columns are the ones before, and so is a partition's reason
    # where only the window and the settings settled it.
    same_window = same_windows and same_layout
    ends, present, completes = (
        (before.ends, before.present, before.completes)
        if same_window
        else _window_columns(slot_counts, windows)
    )
    statuses = bytearray()
    lags = array("q")
    reasons: list[Reason] = []
    for index, (commits, broker_offsets, lag, complete, was) in enumerate(
        zip(
            windows,
            heads,
            current_lags,
            completes,
            before.reasons if same_layout else repeat(None, count),
            strict=True,
        )
    ):
        # Burrow's `evaluatePartitionStatus`, its commonest answers here without a call per partition.
        if not commits:
            p_status, reason = _OK, _NO_COMMITS_REASON
        elif lag is None:
            p_status, reason = _OK, _LAG_UNKNOWN_REASON
        elif lag <= allowed_lag and complete >= minimum_complete:
            # Caught up: without the columns, the rules' call and the reasons' dispatch.
            p_status, reason = _OK, caught_up(lag, allowed_lag)
            if was is not None:
                reason = kept(reason, was)
        else:
            p_status, reason = _lagging(
                commits, broker_offsets, lag, now_s, allowed_lag, minimum_complete, complete, was, same_window
            )
        statuses.append(p_status)
        reasons.append(reason)
        if p_status > status:
            status = _ERR if p_status > _ERR else p_status
        # An unknown lag ranks below zero: it is only maxlag when no partition's lag is known.
        if lag is None:
            lags.append(-1)
            rank = -1
        else:
            lags.append(lag)
            rank = lag
            totallag += lag
        if rank > maxlag_rank or maxlag < 0:
            maxlag = index
            maxlag_rank = rank
        if complete == 1.0:
            full += 1
    partitions = Partitions(
        kept(topics, before.topics),
        kept(numbers, before.numbers),
        kept(owners, before.owners),
        kept(client_ids, before.client_ids),
        kept(member_ids, before.member_ids),
        kept(bytes(statuses), before.statuses),
        kept(present, before.present),
        kept(ends, before.ends),
        kept(lags, before.lags),
        kept(completes, before.completes),
        kept(tuple(reasons), before.reasons),
    )
    if previous is not None and all(
        getattr(partitions, column) is getattr(before, column) for column in _COLUMNS
    ):
        # Every partition kept its status: the roll-up is equal too, the names aside.
        partitions = before
        if previous.cluster == snapshot.cluster and previous.group == snapshot.group:
            return previous
    why = group_reason(status, partitions)
    top = partitions[maxlag] if maxlag >= 0 else None
    if previous is not None:
        why = kept(why, previous.reason)
        top = _kept_ends(top, previous.maxlag)
    return GroupStatus(
        cluster=snapshot.cluster,
        group=snapshot.group,
        status=status,
        complete=full / count if count else 0.0,
        partitions=partitions,
        partition_count=count,
        maxlag=top,
        totallag=totallag,
        reason=why,
    )


def _kept_ends(top: PartitionStatus | None, was: PartitionStatus | None) -> PartitionStatus | None:
    """`top`, the group's maxlag, with the window ends of `was` (its maxlag before) where equal, or `was`
    itself: the lag of the partition moves at every HEAD round, its window ends only when it commits."""
    if top is None or was is None:
        return top
    if top == was:
        return was
    if top.start == was.start and top.end == was.end:
        return top._replace(start=was.start, end=was.end)
    return top


def _window_columns(
    slot_counts: Sequence[int], windows: Sequence[Sequence[int]]
) -> tuple[array[int], bytes, tuple[float, ...]]:
    """`Partitions.ends`, `.present` and `.completes` of these windows (`PartitionSnapshot.commits`)."""
    ends = array("q")
    present = bytearray()
    for commits in windows:
        if commits:
            present.append(_BOTH)
            ends.extend(commits[:_F])
            ends.extend(commits[-_F:])
        else:
            present.append(0)
            ends.extend(_NO_ENDS)
    return ends, bytes(present), tuple(map(completeness, slot_counts, [len(c) // _F for c in windows]))


_NO_FIELDS: tuple[tuple[Any, ...], ...] = ((),) * len(PartitionSnapshot._fields)
"""The snapshot's fields as columns, of a group without partitions."""
_FIRST = ("lags", "statuses", "reasons", "ends")
"""The columns most likely to differ from the status before, looked at first: a HEAD round moves every lag."""
_COLUMNS = (*_FIRST, *(column for column in Partitions.__slots__ if column not in _FIRST))
_BOTH = START | END
_NO_ENDS = (0,) * ENDS
