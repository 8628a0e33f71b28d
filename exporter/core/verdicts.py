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
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter

from exporter.core.model import (
    COMMIT_FIELDS,
    Commit,
    GroupSnapshot,
    GroupStatus,
    PartitionSnapshot,
    PartitionStatus,
    Reason,
    Rule,
    Status,
    commit_at,
    kept,
    not_found,
)
from exporter.core.reasons import EXPLAIN, RULE_STATUS, caught_up, group_reason
from exporter.core.rules import partition_rule, stopped

__all__ = ["PartitionEvaluation", "completeness", "evaluate_group", "evaluate_partition"]

# An enum member lookup costs about 0.1 us on Python 3.11; the hot path uses these.
_OK, _ERR = Status.OK, Status.ERR
_new_status = tuple.__new__
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


def _evaluate(
    slots: int,
    commits: Sequence[int],
    broker_offsets: Sequence[int],
    current_lag: int | None,
    now_s: int,
    allowed_lag: int,
    minimum_complete: float,
    was: PartitionStatus | None = None,
    same_window: bool = False,
    times: dict[int, int] | None = None,
) -> tuple[Status, float, Commit | None, Commit | None, Reason]:
    """Burrow's `evaluatePartitionStatus` on a window in the storage's layout (`PartitionSnapshot.commits`):
    status, complete, start, end and reason of one partition. `was` is a status of the same partition
    before: its reason is returned where equal, and its start, end, and a reason of `_WINDOW_RULES` while
    still lagging and not stopped, when `same_window` says that it was evaluated from this very window with
    the same settings. New window ends share their times through `times` (`commit_at`)."""
    complete = completeness(slots, len(commits) // _F)
    if not commits:
        return _OK, complete, None, None, _NO_COMMITS_REASON
    if same_window and was is not None and was.end is not None:
        # Comparing the fields instead would read four integers of each Commit, memory unused since the
        # round before: that cost more CPU than building new ones.
        start, end = was.start, was.end
    else:
        start, end = commit_at(commits, 0, times), commit_at(commits, len(commits) - _F, times)
    if current_lag is None:
        return _OK, complete, start, end, _LAG_UNKNOWN_REASON
    if current_lag <= allowed_lag and complete >= minimum_complete:
        # The commonest answer, without the columns, the rules' call and the reasons' dispatch.
        reason = caught_up(current_lag, allowed_lag)
        if was is not None:
            reason = kept(reason, was.reason)
        return _OK, complete, start, end, reason
    reason_was = None if was is None or not same_window else was.reason
    if (
        reason_was is not None
        and reason_was.rule in _WINDOW_RULES
        and not stopped((commits[2], commits[-_F + 2]), now_s, commits[-_F], broker_offsets)
    ):
        # The same window, lagging as before and not stopped: the rules after STOP read only the window and
        # the settings, so they settle it as before, with the same figures. Half the groups of a busy
        # cluster commit between two HEAD rounds; the other half's partitions skip the rules here.
        return _STATUS_OF[reason_was.rule], complete, start, end, reason_was
    offsets, timestamps, lags = commits[0::_F], commits[2::_F], commits[4::_F]
    rule = (
        Rule.INCOMPLETE
        if complete < minimum_complete
        else partition_rule(offsets, timestamps, lags, broker_offsets, current_lag, now_s, allowed_lag)
    )
    reason = EXPLAIN[rule](
        rule, offsets, timestamps, lags, broker_offsets, current_lag, allowed_lag, complete, minimum_complete
    )
    if was is not None:
        reason = kept(reason, was.reason)
    return _STATUS_OF[rule], complete, start, end, reason


def evaluate_partition(
    window: Sequence[Commit | None],
    broker_offsets: Sequence[int],
    current_lag: int | None,
    now: float,
    allowed_lag: int = 0,
    minimum_complete: float = 0.0,
) -> PartitionEvaluation:
    """Evaluate one group-partition.

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
    status, complete, start, end, reason = _evaluate(
        snapshot.slots,
        snapshot.commits,
        broker_offsets,
        current_lag,
        math.floor(now),
        allowed_lag,
        minimum_complete,
    )
    return PartitionEvaluation(status, complete, start, end, current_lag, reason)


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

    `previous`, the group's status before, changes no value: a reason, a partition's status or the whole
    status equal to its part there is that object, not a copy. With `same_windows` (the caller vouches that
    `previous` was evaluated from these very commit windows, with the same `allowed_lag` and
    `minimum_complete`, as `EvaluationCache` knows from the storage's `windows_version`) the window ends of a
    partition are its ends there too, and a partition still lagging and not stopped keeps the rule and reason
    it had when these read only the window. So the two rounds alive while
    one replaces the other share what did not change, and the exposition sees by identity what it need not
    write again.
    """
    if snapshot is None:
        return not_found(cluster, group)
    now_s = math.floor(now)
    status = _OK
    totallag = 0
    full = 0
    maxlag: PartitionStatus | None = None
    maxlag_rank = -1
    results: list[PartitionStatus] = []
    before = () if previous is None else previous.partitions
    times: dict[int, int] = {}
    unchanged = len(before) == len(snapshot.partitions)
    for index, part in enumerate(sorted(snapshot.partitions, key=_by_topic_partition)):
        # The same place in the same order is almost always the same partition (a reason or status equal
        # to another partition's would do as well: only equal parts are shared, and the status names the
        # partition); the window ends only of the same partition.
        was = before[index] if index < len(before) else None
        lag = part.current_lag
        same_window = (
            same_windows and was is not None and was.partition == part.partition and was.topic == part.topic
        )
        p_status, complete, start, end, reason = _evaluate(
            part.slots,
            part.commits,
            part.broker_offsets,
            lag,
            now_s,
            allowed_lag,
            minimum_complete,
            was,
            same_window,
            times,
        )
        if (
            was is not None
            and end is was.end
            and start is was.start
            and reason is was.reason
            and lag == was.current_lag
            and p_status == was.status
            and complete == was.complete
            and part.partition == was.partition
            and part.topic == was.topic
            and part.owner == was.owner
            and part.client_id == was.client_id
            and part.member_id == was.member_id
        ):
            result = was
        else:
            unchanged = False
            # In model.PartitionStatus field order, without NamedTuple's Python-level __new__ (twice the
            # cost).
            result = _new_status(
                PartitionStatus,
                (
                    part.topic,
                    part.partition,
                    part.owner,
                    part.client_id,
                    p_status,
                    start,
                    end,
                    lag,
                    complete,
                    part.member_id,
                    reason,
                ),
            )
        results.append(result)
        if p_status > status:
            status = _ERR if p_status > _ERR else p_status
        # An unknown lag ranks below zero: it is only maxlag when no partition's lag is known.
        rank = -1 if lag is None else lag
        if maxlag is None or rank > maxlag_rank:
            maxlag = result
            maxlag_rank = rank
        if rank > 0:
            totallag += rank
        if complete == 1.0:
            full += 1
    count = len(results)
    why = group_reason(status, results)
    if previous is not None:
        # Every partition kept its status: everything computed from them is equal too, the names aside.
        if (
            unchanged
            and previous.reason == why
            and previous.maxlag is maxlag
            and previous.cluster == snapshot.cluster
            and previous.group == snapshot.group
        ):
            return previous
        why = kept(why, previous.reason)
    return GroupStatus(
        cluster=snapshot.cluster,
        group=snapshot.group,
        status=status,
        complete=full / count if count else 0.0,
        partitions=tuple(results),
        partition_count=count,
        maxlag=maxlag,
        totallag=totallag,
        reason=why,
    )
