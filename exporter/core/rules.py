"""Burrow's partition rules, one small named predicate per rule, and the order in which they settle a lagging
partition (`partition_rule`): Burrow v1.9.5's `calculatePartitionStatus` (burrow-semantics.md section 1).

The predicates state each rule as Burrow does, and the rule table's tests pin each one. `partition_rule`
applies them fused, in fewer passes over the window (its docstring says how); it calls a predicate itself
only for the rare windows, and tests/unit/test_rules_fused.py holds it to the predicates one by one.

Pure: `now_s` is an argument in whole seconds since the epoch, compared as `now_s * 1000` with the millisecond
commit timestamps, like Burrow's `time.Now().Unix()`.

A deliberate difference from Burrow, with its test: a commit whose lag is unknown is evidence of nothing about
lag. STOP and REWIND, which read timestamps and offsets only, see every commit; STALL and WARN, which read the
lags, are decided only on a window whose every commit has a known lag (`lags_known`), so an unknown lag can
only make a status better, never worse. Burrow skips unknown lags, which turns a window of them into STALL or
WARN with no lag measured.
"""

from __future__ import annotations

from collections.abc import Sequence

from exporter.core.model import Rule

__all__ = [
    "first_rewind_index",
    "lag_always_nonzero",
    "lag_never_decreases",
    "lags_known",
    "offsets_all_equal",
    "offsets_stopped",
    "partition_rule",
    "recent_lag_zero",
    "rewind_recovered",
    "stopped",
]

# An enum member lookup costs about 0.1 us on Python 3.11, a third of a rule; the hot path uses these.
_CAUGHT_UP, _STOPPED, _REWOUND, _STALLED = Rule.CAUGHT_UP, Rule.STOPPED, Rule.REWOUND, Rule.STALLED
_ZERO_IN_WINDOW, _LAGS_UNKNOWN, _NOT_DECREASING, _DECREASED = (
    Rule.LAG_ZERO_IN_WINDOW,
    Rule.LAGS_UNKNOWN_IN_WINDOW,
    Rule.LAG_NOT_DECREASING,
    Rule.LAG_DECREASED,
)


# The rules. Each takes columns of the window without its unfilled leading slots (at least one commit), oldest
# first: the offsets, the timestamps, and the lags with -1 for an unknown lag (the storage's own encoding).


def lag_always_nonzero(lags: Sequence[int], allowed_lag: int = 0) -> bool:
    """Rule 1 (`isLagAlwaysNotZero`): no commit in the window had a lag at or below `allowed_lag`.

    Unknown lags are ignored, so a window whose lags are all unknown counts as always non-zero."""
    # A loop, not all(): this runs for every lagging partition and the generator triples its cost.
    for lag in lags:  # noqa: SIM110
        if 0 <= lag <= allowed_lag:
            return False
    return True


def first_rewind_index(offsets: Sequence[int]) -> int:
    """Rule 2 (`checkIfOffsetsRewind`): index of the first commit whose offset went back, or -1."""
    previous = offsets[0]
    # Without enumerate, which cost a quarter of a call that almost always finds nothing: the index is looked
    # for again only once there is one.
    for offset in offsets:
        if offset < previous:
            return next(i for i in range(1, len(offsets)) if offsets[i] < offsets[i - 1])
        previous = offset
    return -1


def rewind_recovered(offsets: Sequence[int], index: int) -> bool:
    """Rule 2, part 2 (`checkIfRewindRecovered`): after the rewind at `index` (>= 1) the consumer got back to
    the offset it had before the rewind, so the remaining rules decide."""
    return max(offsets[index:]) >= offsets[index - 1]


def offsets_stopped(timestamps: Sequence[int], now_s: int) -> bool:
    """Rule 3 (`checkIfOffsetsStopped`): the time since the newest commit exceeds the time the window spans.

    Strictly greater, so a single-commit window (span 0) is stopped from the first whole second after the
    commit. Timestamps are used in window order even when they are out of order, as Burrow does."""
    first_ts = timestamps[0]
    last_ts = timestamps[-1]
    return now_s * 1000 - last_ts > last_ts - first_ts


def recent_lag_zero(last_offset: int, broker_offsets: Sequence[int]) -> bool:
    """Veto of Rule 3 (`checkIfRecentLagZero`): some recent HEAD offset was at or below the newest committed
    offset `last_offset`: the consumer was caught up within the HEAD history, so an idle topic is not reported
    as STOP."""
    return bool(broker_offsets) and min(broker_offsets) <= last_offset


def stopped(timestamps: Sequence[int], now_s: int, last_offset: int, broker_offsets: Sequence[int]) -> bool:
    """Rule 3 with its veto: the offsets stopped and the consumer was not caught up within the HEAD history.
    `timestamps` needs only the window's first and newest commit's."""
    return offsets_stopped(timestamps, now_s) and not recent_lag_zero(last_offset, broker_offsets)


def offsets_all_equal(offsets: Sequence[int]) -> bool:
    """Rule 4 (`checkIfOffsetsStalled`): every commit has the same offset (trivially true for one commit)."""
    offset = offsets[0]
    # A loop, not all(): this runs for every lagging partition and the generator triples its cost.
    for other in offsets:  # noqa: SIM110
        if other != offset:
            return False
    return True


def lag_never_decreases(lags: Sequence[int]) -> bool:
    """Rule 5 (`checkIfLagNotDecreasing`): no known lag is strictly below the known lag before it.

    Unknown lags are skipped, so a drop is seen across them; equal lags do not count as a decrease."""
    previous = -1  # known lags are never negative
    for lag in lags:
        if lag >= 0:
            if lag < previous:
                return False
            previous = lag
    return True


def lags_known(lags: Sequence[int]) -> bool:
    """Gate of Rules 4 and 5 (lagwatch's own): every commit of the window has a known lag.

    An unknown lag might have been zero (which vetoes STALL and WARN) or a dip (which vetoes WARN), so a
    window with one is never STALL or WARN."""
    return min(lags) >= 0


def partition_rule(
    offsets: list[int],
    timestamps: Sequence[int],
    lags: list[int],
    broker_offsets: Sequence[int],
    current_lag: int,
    now_s: int,
    allowed_lag: int,
) -> Rule:
    """Burrow's `calculatePartitionStatus` on the window's columns: the rules in order, gated by
    current_lag > allowed_lag; returns the rule that settled the status (`RULE_STATUS` maps it to the
    status).

    The rules above, fused: every lagging partition of a fresh evaluation runs them, and a Python loop per
    rule was two fifths of that evaluation's CPU. The offsets and the lags are each sorted once, in C (a
    window is short and almost always in order already), and the sorted copies answer the rules: a column
    equal to its sorted copy never goes back (no rewind; lags never decrease), the copy's first item is the
    column's lowest (a lag within `allowed_lag`, or -1: an unknown lag), and its first equal to its last
    means one offset throughout (stalled). Only the rare windows run a rule's own loop: a rewind (recovered
    or not), and unknown lags (is a known one within `allowed_lag`). `offsets` and `lags` must be lists:
    a sorted copy is a list, and equal to no other sequence."""
    if current_lag <= allowed_lag:
        return _CAUGHT_UP
    # STOP comes first and ignores zero lags in the window: an old zero lag must not hide a dead consumer.
    # `offsets_stopped` inline: its call was a tenth of these rules' time.
    last_ts = timestamps[-1]
    if now_s * 1000 - last_ts > last_ts - timestamps[0] and not recent_lag_zero(offsets[-1], broker_offsets):
        return _STOPPED
    by_offset = sorted(offsets)
    if by_offset != offsets and not rewind_recovered(offsets, first_rewind_index(offsets)):
        return _REWOUND
    by_lag = sorted(lags)
    lowest = by_lag[0]
    if lowest <= allowed_lag or lowest < 0:
        # A known lowest lag is within allowed_lag: Rule 1. An unknown one (-1) may hide a known lag that is.
        if lowest >= 0 or not lag_always_nonzero(lags, allowed_lag):
            return _ZERO_IN_WINDOW
        return _LAGS_UNKNOWN
    if by_offset[0] == by_offset[-1]:
        return _STALLED
    if by_lag == lags:
        return _NOT_DECREASING
    return _DECREASED
