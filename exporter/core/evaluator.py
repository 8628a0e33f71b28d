"""Burrow's consumer-lag evaluation: partition rules, the group roll-up, and when evaluation runs.

The rules are Burrow v1.9.5's `calculatePartitionStatus` (burrow-semantics.md section 1), one small predicate
per rule. Everything here is pure: `now` is an argument in seconds since the epoch, truncated to whole seconds
and compared as `now * 1000` with the millisecond commit timestamps, like Burrow's `time.Now().Unix()`.

Deliberate differences from Burrow, each with a test:
- A partition whose current lag is unknown (HEAD not fetched yet) is kept and reported OK with `current_lag`
  None. Burrow drops such commits at ingest, so the partition would not exist at all.
- A commit whose lag is unknown is evidence of nothing about lag. STOP and REWIND, which read timestamps
  and offsets only, see every commit; STALL and WARN, which read the lags, are decided only on a window
  whose every commit has a known lag (`lags_known`), so an unknown lag can only make a status better, never
  worse. Burrow skips unknown lags, which turns a window of them into STALL or WARN with no lag measured.
- Partitions are evaluated and reported in (topic, partition) order, so `maxlag` ties go to the first one in
  that order; Burrow walks a Go map and picks an arbitrary one. An unknown lag never beats a known one.
- Burrow evaluates on request and caches for `expire-cache` seconds; `EvaluationCache` re-evaluates a group
  when its data changed or when the clock reaches the instant at which the STOP rule could flip.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from types import MappingProxyType
from typing import Protocol, cast

from exporter.core.model import (
    Commit,
    GroupSnapshot,
    GroupStatus,
    PartitionSnapshot,
    PartitionStatus,
    Reason,
    Rule,
    Status,
    not_found,
)
from exporter.core.reasons import EXPLAIN, RULE_STATUS, caught_up, group_reason

__all__ = [
    "EvaluationCache",
    "GroupSource",
    "PartitionEvaluation",
    "evaluate_group",
    "evaluate_partition",
    "first_rewind_index",
    "lag_always_nonzero",
    "lag_never_decreases",
    "lags_known",
    "offsets_all_equal",
    "offsets_stopped",
    "recent_lag_zero",
    "rewind_recovered",
]

# An enum member lookup costs about 0.1 us on Python 3.11, a third of a rule; the hot path uses these.
_OK, _ERR = Status.OK, Status.ERR
_CAUGHT_UP, _STOPPED, _REWOUND, _STALLED = Rule.CAUGHT_UP, Rule.STOPPED, Rule.REWOUND, Rule.STALLED
_ZERO_IN_WINDOW, _LAGS_UNKNOWN, _NOT_DECREASING, _DECREASED = (
    Rule.LAG_ZERO_IN_WINDOW,
    Rule.LAGS_UNKNOWN_IN_WINDOW,
    Rule.LAG_NOT_DECREASING,
    Rule.LAG_DECREASED,
)
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
# The rules. Each takes the window without its unfilled leading slots (at least one commit), oldest first.


def lag_always_nonzero(window: Sequence[Commit], allowed_lag: int = 0) -> bool:
    """Rule 1 (`isLagAlwaysNotZero`): no commit in the window had a lag at or below `allowed_lag`.

    Unknown lags are ignored, so a window whose lags are all unknown counts as always non-zero."""
    for commit in window:
        lag = commit.lag
        if lag is not None and lag <= allowed_lag:
            return False
    return True


def first_rewind_index(window: Sequence[Commit]) -> int:
    """Rule 2 (`checkIfOffsetsRewind`): index of the first commit whose offset went back, or -1."""
    previous = window[0].offset
    for index, commit in enumerate(window):
        offset = commit.offset
        if offset < previous:
            return index
        previous = offset
    return -1


def rewind_recovered(window: Sequence[Commit], index: int) -> bool:
    """Rule 2, part 2 (`checkIfRewindRecovered`): after the rewind at `index` (>= 1) the consumer got back to
    the offset it had before the rewind, so the remaining rules decide."""
    before = window[index - 1].offset
    return any(commit.offset >= before for commit in window[index:])


def offsets_stopped(window: Sequence[Commit], now_s: int) -> bool:
    """Rule 3 (`checkIfOffsetsStopped`): the time since the newest commit exceeds the time the window spans.

    Strictly greater, so a single-commit window (span 0) is stopped from the first whole second after the
    commit. Timestamps are used in window order even when they are out of order, as Burrow does."""
    first_ts = window[0].timestamp_ms
    last_ts = window[-1].timestamp_ms
    return now_s * 1000 - last_ts > last_ts - first_ts


def recent_lag_zero(window: Sequence[Commit], broker_offsets: Sequence[int]) -> bool:
    """Veto of Rule 3 (`checkIfRecentLagZero`): some recent HEAD offset was at or below the newest committed
    offset: the consumer was caught up within the HEAD history, so an idle topic is not reported as STOP."""
    last_offset = window[-1].offset
    return any(head <= last_offset for head in broker_offsets)


def offsets_all_equal(window: Sequence[Commit]) -> bool:
    """Rule 4 (`checkIfOffsetsStalled`): every commit has the same offset (trivially true for one commit)."""
    offset = window[0].offset
    # A loop, not all(): this runs for every lagging partition and the generator triples its cost.
    for commit in window:  # noqa: SIM110
        if commit.offset != offset:
            return False
    return True


def lag_never_decreases(window: Sequence[Commit]) -> bool:
    """Rule 5 (`checkIfLagNotDecreasing`): no known lag is strictly below the known lag before it.

    Unknown lags are skipped, so a drop is seen across them; equal lags do not count as a decrease."""
    previous = -1  # lags are never negative
    for commit in window:
        lag = commit.lag
        if lag is not None:
            if lag < previous:
                return False
            previous = lag
    return True


def lags_known(window: Sequence[Commit]) -> bool:
    """Gate of Rules 4 and 5 (lagwatch's own): every commit of the window has a known lag.

    An unknown lag might have been zero (which vetoes STALL and WARN) or a dip (which vetoes WARN), so a
    window with one is never STALL or WARN."""
    # A loop, not all(): this runs for every lagging partition.
    for commit in window:  # noqa: SIM110
        if commit.lag is None:
            return False
    return True


def _partition_rule(
    window: Sequence[Commit],
    broker_offsets: Sequence[int],
    current_lag: int,
    now_s: int,
    allowed_lag: int,
) -> Rule:
    """Burrow's `calculatePartitionStatus`: the rules in order, gated by current_lag > allowed_lag; returns
    the rule that settled the status (`RULE_STATUS` maps it to the status)."""
    if current_lag <= allowed_lag:
        return _CAUGHT_UP
    # STOP comes first and ignores zero lags in the window: an old zero lag must not hide a dead consumer.
    if offsets_stopped(window, now_s) and not recent_lag_zero(window, broker_offsets):
        return _STOPPED
    index = first_rewind_index(window)
    if index > 0 and not rewind_recovered(window, index):
        return _REWOUND
    if not lag_always_nonzero(window, allowed_lag):
        return _ZERO_IN_WINDOW
    if not lags_known(window):
        return _LAGS_UNKNOWN
    if offsets_all_equal(window):
        return _STALLED
    if lag_never_decreases(window):
        return _NOT_DECREASING
    return _DECREASED


# ------------------------------------------------------------------------------------------------------------
# One partition.

_NO_COMMITS: tuple[Commit, ...] = ()


def _trim(window: Sequence[Commit | None]) -> tuple[Sequence[Commit], float]:
    """The window without its unfilled leading slots, and Burrow's `complete` for it.

    Burrow's quirk is kept: a window of only empty slots counts as one slot filled (complete 1/len), with no
    commit to evaluate. An empty window is a placeholder partition: complete 0.0."""
    size = len(window)
    if size == 0:
        return _NO_COMMITS, 0.0
    if window[0] is not None:
        return cast("Sequence[Commit]", window), 1.0
    first = next((i for i in range(1, size) if window[i] is not None), size - 1)
    complete = (size - first) / size
    if window[first] is None:
        return _NO_COMMITS, complete
    return cast("Sequence[Commit]", window[first:]), complete


_NO_COMMITS_REASON = Reason(Rule.NO_COMMITS)
_LAG_UNKNOWN_REASON = Reason(Rule.LAG_UNKNOWN)


def _evaluate(
    window: Sequence[Commit | None],
    broker_offsets: Sequence[int],
    current_lag: int | None,
    now_s: int,
    allowed_lag: int,
    minimum_complete: float,
) -> tuple[Status, float, Commit | None, Commit | None, Reason]:
    """Burrow's `evaluatePartitionStatus`: status, complete, start, end and reason of one partition."""
    commits, complete = _trim(window)
    if not commits:
        return _OK, complete, None, None, _NO_COMMITS_REASON
    if current_lag is None:
        return _OK, complete, commits[0], commits[-1], _LAG_UNKNOWN_REASON
    if complete < minimum_complete:
        rule = Rule.INCOMPLETE
    elif current_lag <= allowed_lag:
        # The commonest answer, without the rules' call and the reasons' dispatch.
        return _OK, complete, commits[0], commits[-1], caught_up(current_lag, allowed_lag)
    else:
        rule = _partition_rule(commits, broker_offsets, current_lag, now_s, allowed_lag)
    reason = EXPLAIN[rule](
        rule, commits, broker_offsets, current_lag, allowed_lag, complete, minimum_complete
    )
    return _STATUS_OF[rule], complete, commits[0], commits[-1], reason


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
    status, complete, start, end, reason = _evaluate(
        window, broker_offsets, current_lag, math.floor(now), allowed_lag, minimum_complete
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
) -> GroupStatus:
    """Evaluate every partition of a group and roll them up (Burrow's `evaluateConsumerStatus`).

    The group status is the worst partition status, with STOP, STALL and REWIND reported as ERR. `complete` is
    the share of partitions whose window is full (0.0 without partitions); placeholder partitions count.
    `totallag` sums the known current lags. `maxlag` is the partition with the greatest known current lag, the
    first in (topic, partition) order on a tie. `cluster` and `group` only name the NOTFOUND result.
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
    for part in sorted(snapshot.partitions, key=_by_topic_partition):
        lag = part.current_lag
        p_status, complete, start, end, reason = _evaluate(
            part.window, part.broker_offsets, lag, now_s, allowed_lag, minimum_complete
        )
        # Positional, in model.PartitionStatus field order: keywords cost a third more on this hot path.
        result = PartitionStatus(
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
    return GroupStatus(
        cluster=snapshot.cluster,
        group=snapshot.group,
        status=status,
        complete=full / count if count else 0.0,
        partitions=tuple(results),
        partition_count=count,
        maxlag=maxlag,
        totallag=totallag,
        reason=group_reason(status, results),
    )


# ------------------------------------------------------------------------------------------------------------
# When evaluation runs.


class GroupSource(Protocol):
    """What `EvaluationCache` reads; the storage provides it. `group_version` must change whenever anything in
    the group's snapshot changes (commits, owners, HEAD offsets of its partitions)."""

    def groups(self) -> list[str]: ...

    def group_version(self, group: str) -> int: ...

    def group_snapshot(self, group: str, now_ms: int) -> GroupSnapshot | None:
        """The group as stored; None if unknown or past its expiry at `now_ms`."""
        ...


def _stop_deadline(partition: PartitionSnapshot, allowed_lag: int, minimum_complete: float) -> float:
    """First whole second at which Rule 3 makes this partition STOP without new data; inf if time cannot.

    Rule 3 holds from the first second s with s * 1000 - last_ts > last_ts - first_ts and stays true after it;
    every other input of the rules is data, which bumps the group version when it changes."""
    lag = partition.current_lag
    if lag is None or lag <= allowed_lag:
        return math.inf
    window, complete = _trim(partition.window)
    if not window or complete < minimum_complete or recent_lag_zero(window, partition.broker_offsets):
        return math.inf
    last_ts = window[-1].timestamp_ms
    return (2 * last_ts - window[0].timestamp_ms) // 1000 + 1


@dataclass(frozen=True, slots=True)
class _Entry:
    version: int
    evaluated_s: int
    deadline_s: float
    """The earliest whole second at which the cached status may be wrong without a version change."""


class EvaluationCache:
    """Group statuses kept between refreshes, re-evaluated only when they could have changed.

    `refresh` is meant to run after each HEAD refresh round; scrapes and API calls read `status`/`statuses`.
    A group is re-evaluated when its version changed, when `now` reaches its STOP deadline, or when the clock
    went backwards; a group the source no longer lists is dropped.
    """

    def __init__(self, allowed_lag: int = 0, minimum_complete: float = 0.0, *, cluster: str = "") -> None:
        self._allowed_lag = allowed_lag
        self._minimum_complete = minimum_complete
        self._cluster = cluster
        self._entries: dict[str, _Entry] = {}
        self._statuses: dict[str, GroupStatus] = {}
        self._overrides: dict[str, tuple[_Entry, GroupStatus] | None] | None = None
        """While a round runs: the groups `refresh_group` handled meanwhile, and their results."""

    @property
    def cluster(self) -> str:
        """The cluster whose groups are cached (it names NOTFOUND answers)."""
        return self._cluster

    def refresh(self, source: GroupSource, now: float) -> int:
        """Bring every group of `source` up to date at `now`; returns how many groups were evaluated."""
        steps = self.refresh_in_steps(source, now)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                evaluated: int = done.value
                return evaluated

    def refresh_in_steps(
        self, source: GroupSource, now: float, batch: int = 1000
    ) -> Generator[int, None, int]:
        """`refresh`, yielding after every `batch` groups checked, so that the caller can let other work
        run in between. The new statuses replace the old ones in the step that ends the generator, never
        before a yield; it returns how many groups were evaluated."""
        now_s = math.floor(now)
        entries: dict[str, _Entry] = {}
        statuses: dict[str, GroupStatus] = {}
        evaluated = 0
        overrides: dict[str, tuple[_Entry, GroupStatus] | None] = {}
        self._overrides = overrides
        try:
            for checked, group in enumerate(source.groups(), 1):
                version = source.group_version(group)
                entry = self._entries.get(group)
                if (
                    entry is not None
                    and entry.version == version
                    and entry.evaluated_s <= now_s < entry.deadline_s
                ):
                    entries[group] = entry
                    statuses[group] = self._statuses[group]
                else:
                    entries[group], statuses[group] = self._evaluate(source, group, version, now)
                    evaluated += 1
                if checked % batch == 0:
                    yield checked
        finally:
            # A round that fails or is abandoned leaves the cache as it was, and no override window open.
            self._overrides = None
        # What happened between the yields wins over what this round saw before: groups deleted meanwhile
        # must not come back, and a group `refresh_group` re-evaluated keeps that newer result.
        alive = set(source.groups())
        for gone in [g for g in statuses if g not in alive]:
            del statuses[gone], entries[gone]
        for group, result in overrides.items():
            if result is None:
                statuses.pop(group, None)
                entries.pop(group, None)
            else:
                entries[group], statuses[group] = result
        # New dicts, not in-place updates: a mapping handed out by `statuses` stays one consistent round.
        self._entries = entries
        self._statuses = statuses
        return evaluated

    def refresh_group(self, source: GroupSource, group: str, now: float) -> GroupStatus | None:
        """Re-evaluate one group at once (after an admin deletion) and return its status; a group the source
        lost is dropped (None). A round in progress keeps this result."""
        result = (
            self._evaluate(source, group, source.group_version(group), now)
            if group in source.groups()
            else None
        )
        if self._overrides is not None:
            self._overrides[group] = result
        entries = dict(self._entries)
        statuses = dict(self._statuses)
        if result is None:
            entries.pop(group, None)
            statuses.pop(group, None)
        else:
            entries[group], statuses[group] = result
        self._entries = entries
        self._statuses = statuses
        return None if result is None else result[1]

    def _evaluate(
        self, source: GroupSource, group: str, version: int, now: float
    ) -> tuple[_Entry, GroupStatus]:
        snapshot = source.group_snapshot(group, int(now * 1000))
        status = evaluate_group(
            snapshot,
            now,
            allowed_lag=self._allowed_lag,
            minimum_complete=self._minimum_complete,
            cluster=self._cluster,
            group=group,
        )
        now_s = math.floor(now)
        return _Entry(version, now_s, self._deadline(snapshot, now_s)), status

    def _deadline(self, snapshot: GroupSnapshot | None, now_s: int) -> float:
        if snapshot is None:
            return math.inf
        deadlines = (
            _stop_deadline(part, self._allowed_lag, self._minimum_complete) for part in snapshot.partitions
        )
        return min((d for d in deadlines if d > now_s), default=math.inf)

    def status(self, group: str) -> GroupStatus:
        """The cached status of `group`, NOTFOUND if the last refresh did not see it."""
        found = self._statuses.get(group)
        return found if found is not None else not_found(self._cluster, group)

    def statuses(self) -> Mapping[str, GroupStatus]:
        """Every cached status by group name, as of the last refresh (a read-only view)."""
        return MappingProxyType(self._statuses)
