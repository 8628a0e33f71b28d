"""Tests of the evaluator: Burrow's rules in Burrow's table shape, the group roll-up, EvaluationCache.

Unless a case says otherwise, windows hold ten commits made every 60 s at T, T+60, ..., T+540 and are
evaluated at T+600, as in Burrow's Consumer-Lag-Evaluation-Rules examples.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Generator, Sequence
from dataclasses import dataclass, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.core import verdicts
from exporter.core.evaluator import EvaluationCache
from exporter.core.model import (
    NO_PARTITIONS,
    Commit,
    GroupReason,
    GroupSnapshot,
    GroupStatus,
    OffsetCommit,
    Partitions,
    PartitionSnapshot,
    Reason,
    Rule,
    Status,
)
from exporter.core.reasons import EXPLAIN, RULE_STATUS, text
from exporter.core.rules import (
    first_rewind_index,
    lag_always_nonzero,
    lag_never_decreases,
    lags_known,
    offsets_all_equal,
    offsets_stopped,
    recent_lag_zero,
    rewind_recovered,
)
from exporter.core.storage import Storage
from exporter.core.verdicts import PartitionEvaluation, evaluate_group, evaluate_partition

T = 1_700_000_000
OFFSETS = (10, 20, 30, 40, 50, 60, 70, 80, 90, 100)


def window(offsets: tuple[int, ...], lags: tuple[int | None, ...], *, start: int = T) -> tuple[Commit, ...]:
    """Commits every 60 s from `start` (seconds), orders 0, 1, ..."""
    return tuple(
        Commit(offset=offset, order=i, timestamp_ms=(start + 60 * i) * 1000, lag=lag)
        for i, (offset, lag) in enumerate(zip(offsets, lags, strict=True))
    )


def partition(
    topic: str,
    number: int,
    commits: tuple[Commit | None, ...],
    current_lag: int | None,
    broker_offsets: tuple[int, ...] = (),
) -> PartitionSnapshot:
    return PartitionSnapshot.of(
        topic=topic,
        partition=number,
        window=commits,
        broker_offsets=broker_offsets,
        current_lag=current_lag,
        owner=f"/10.0.0.{number}",
        client_id=f"client-{number}",
        member_id=f"member-{number}",
    )


def columns(commits: Sequence[Commit]) -> tuple[list[int], list[int], list[int]]:
    """The window's columns as the rules read them: offsets, timestamps, lags (-1 where unknown)."""
    return (
        [c.offset for c in commits],
        [c.timestamp_ms for c in commits],
        [-1 if c.lag is None else c.lag for c in commits],
    )


def group_of(*partitions: PartitionSnapshot, name: str = "g") -> GroupSnapshot:
    return GroupSnapshot(cluster="local", group=name, partitions=partitions, last_commit_ms=0)


# ------------------------------------------------------------------------------------------------------------
# Rules, in Burrow's table shape: the expected value of every predicate, then the final status.

EX1 = window(OFFSETS, (0, 0, 0, 0, 0, 0, 1, 3, 5, 5))
EX2 = window((10,) * 10, (5,) * 10)
EX3 = window(OFFSETS, (1, 1, 2, 2, 2, 3, 4, 5, 5, 6))
EX4 = window(OFFSETS, (10, 20, 30, 25, 30, 35, 40, 45, 50, 55))
UNRECOVERED = window((10, 20, 30, 40, 50, 25, 30, 35, 40, 45), (5, 5, 5, 5, 5, 30, 25, 20, 15, 10))
SINGLE = (Commit(offset=100, order=0, timestamp_ms=(T + 540) * 1000, lag=5),)
# Orders rise while timestamps fall (T+300, T+200, T+100): the window spans -200 s.
BACKWARDS = tuple(
    Commit(offset=10 * (i + 1), order=i, timestamp_ms=(T + 300 - 100 * i) * 1000, lag=4 + i) for i in range(3)
)


@dataclass(frozen=True)
class RuleCase:
    name: str
    commits: tuple[Commit, ...]
    broker_offsets: tuple[int, ...]
    now: float
    current_lag: int
    # Expected predicate values; `recovered` is None when there is no rewind to recover from.
    stopped: bool
    recent_zero: bool
    rewind_index: int
    recovered: bool | None
    always_nonzero: bool
    all_equal: bool
    never_decreases: bool
    status: Status
    allowed_lag: int = 0


# Columns: name, commits, broker offsets, now, current lag;
#   stopped, recent lag zero, rewind index, recovered, always non-zero, all equal, never decreases; status.
RULE_CASES = [
    # The five worked examples.
    RuleCase("ex1 zero lag in window", EX1, (102, 104, 105), T + 600, 5,
             False, False, -1, None, False, False, True, Status.OK),
    RuleCase("ex2 offsets unchanged", EX2, (20, 25, 30), T + 600, 20,
             False, False, -1, None, True, True, True, Status.STALL),
    RuleCase("ex3 lag never decreases", EX3, (104, 105, 106), T + 600, 6,
             False, False, -1, None, True, False, True, Status.WARN),
    RuleCase("ex4 lag dipped W3 to W4", EX4, (150, 155), T + 600, 55,
             False, False, -1, None, True, False, False, Status.OK),
    RuleCase("ex5 ex4 at T+1200 stopped", EX4, (150, 155), T + 1200, 55,
             True, False, -1, None, True, False, False, Status.STOP),
    # STOP: strict comparison, whole seconds, the recent-HEAD veto, and its place before every other rule.
    RuleCase("idle exactly one span is not stopped", EX4, (150, 155), T + 1080, 55,
             False, False, -1, None, True, False, False, Status.OK),
    RuleCase("idle one second over the span", EX4, (150, 155), T + 1081, 55,
             True, False, -1, None, True, False, False, Status.STOP),
    RuleCase("now truncated to whole seconds", EX4, (150, 155), T + 1080.999, 55,
             False, False, -1, None, True, False, False, Status.OK),
    RuleCase("HEAD equal to last commit vetoes STOP", EX3, (100, 104, 106), T + 1200, 6,
             True, True, -1, None, True, False, True, Status.WARN),
    RuleCase("HEAD one past last commit: no veto", EX3, (101, 104, 106), T + 1200, 6,
             True, False, -1, None, True, False, True, Status.STOP),
    RuleCase("no HEAD history: no veto", EX3, (), T + 1200, 6,
             True, False, -1, None, True, False, True, Status.STOP),
    RuleCase("STOP despite a zero lag in window", EX1, (102, 104, 105), T + 1200, 5,
             True, False, -1, None, False, False, True, Status.STOP),
    RuleCase("STOP before REWIND", UNRECOVERED, (60, 61), T + 1200, 16,
             True, False, 5, False, True, False, False, Status.STOP),
    RuleCase("commit from the future is not stopped", EX3, (104, 105, 106), T + 500, 6,
             False, False, -1, None, True, False, True, Status.WARN),
    RuleCase("out-of-order timestamps used as-is", BACKWARDS, (40,), T + 100, 10,
             True, False, -1, None, True, False, True, Status.STOP),
    # REWIND: only the first rewind counts, and a recovered one falls through to the other rules.
    RuleCase("rewind not recovered", UNRECOVERED, (60, 61), T + 600, 16,
             False, False, 5, False, True, False, False, Status.REWIND),
    RuleCase("rewind recovered at exactly the old offset", window(
        (10, 20, 30, 40, 50, 25, 35, 45, 50, 50), (5, 5, 5, 5, 5, 30, 30, 30, 30, 31)), (70, 81), T + 600, 31,
             False, False, 5, True, True, False, True, Status.WARN),
    RuleCase("rewind one short of recovery", window(
        (10, 20, 30, 40, 50, 25, 35, 45, 49, 49), (5, 5, 5, 5, 5, 30, 30, 30, 30, 31)), (70, 80), T + 600, 31,
             False, False, 5, False, True, False, True, Status.REWIND),
    RuleCase("rewind at index 1", window((20, 10, 11, 12), (1, 11, 11, 12)), (25,), T + 300, 13,
             False, False, 1, False, True, False, True, Status.REWIND),
    RuleCase("only the first rewind is examined", window(
        (10, 20, 5, 20, 30, 40, 50, 15, 16, 17), (1, 1, 16, 1, 1, 1, 1, 36, 35, 34)), (60,), T + 600, 43,
             False, False, 2, True, True, False, False, Status.OK),
    RuleCase("REWIND despite a zero lag in window", window(
        (10, 20, 30, 40, 50, 25, 30, 35, 40, 45), (0, 5, 5, 5, 5, 30, 25, 20, 15, 10)), (60, 61), T + 600, 16,
             False, False, 5, False, False, False, False, Status.REWIND),
    # allowed_lag: current lag and window lags at or below it count as zero.
    RuleCase("window lag equal to allowed_lag", EX3, (104, 105, 106), T + 600, 6,
             False, False, -1, None, False, False, True, Status.OK, allowed_lag=1),
    RuleCase("window lags one above allowed_lag", window(OFFSETS, (2, 2, 3, 3, 3, 4, 5, 6, 6, 7)), (107,),
             T + 600, 7,
             False, False, -1, None, True, False, True, Status.WARN, allowed_lag=1),
    RuleCase("current lag equal to allowed_lag", EX4, (150, 155), T + 1200, 3,
             True, False, -1, None, True, False, False, Status.OK, allowed_lag=3),
    RuleCase("current lag one above allowed_lag", EX4, (150, 155), T + 1200, 4,
             True, False, -1, None, True, False, False, Status.STOP, allowed_lag=3),
    RuleCase("current lag 0 is OK on a stalled window", EX2, (10,), T + 600, 0,
             False, True, -1, None, True, True, True, Status.OK),
    # Unknown (null) per-commit lags: Burrow's predicates skip them, and lagwatch decides STALL and WARN only
    # on windows without any (a deliberate difference: Burrow says WARN, STALL and WARN in the three cases
    # marked "Burrow:").
    RuleCase("Burrow: all lags unknown count as non-zero", window(OFFSETS, (None,) * 10), (104,),
             T + 600, 4,
             False, False, -1, None, True, False, True, Status.OK),
    RuleCase("a drop across an unknown lag", window(OFFSETS, (1, 2, 3, 4, 5, None, 4, 5, 6, 7)), (107,),
             T + 600, 7,
             False, False, -1, None, True, False, False, Status.OK),
    RuleCase("Burrow: a rise across an unknown lag", window(OFFSETS, (1, 2, 3, 4, 5, None, 5, 6, 7, 8)),
             (108,), T + 600, 8,
             False, False, -1, None, True, False, True, Status.OK),
    RuleCase("an unknown lag does not hide a zero", window(OFFSETS, (None, 0, 1, 2, 3, 4, 5, 6, 7, 8)),
             (108,), T + 600, 8,
             False, False, -1, None, False, False, True, Status.OK),
    RuleCase("equal lags with advancing offsets", window(OFFSETS, (5,) * 10), (105,), T + 600, 5,
             False, False, -1, None, True, False, True, Status.WARN),
    RuleCase("Burrow: equal offsets with unknown lags", window((10,) * 10, (None,) * 10), (15,), T + 600, 5,
             False, False, -1, None, True, True, True, Status.OK),
    RuleCase("unknown lags do not hide a STOP", window(OFFSETS, (None,) * 10), (104,), T + 1200, 4,
             True, False, -1, None, True, False, True, Status.STOP),
    RuleCase("unknown lags do not hide a REWIND",
             window((10, 20, 30, 40, 50, 25, 30, 35, 40, 45), (None,) * 10), (60, 61), T + 600, 16,
             False, False, 5, False, True, False, True, Status.REWIND),
    # Single-commit windows (span 0).
    RuleCase("single commit one second later", SINGLE, (105,), T + 541, 5,
             True, False, -1, None, True, True, True, Status.STOP),
    RuleCase("single commit in the same second", SINGLE, (105,), T + 540.9, 5,
             False, False, -1, None, True, True, True, Status.STALL),
    RuleCase("single commit, STOP vetoed", SINGLE, (100, 105), T + 600, 5,
             True, True, -1, None, True, True, True, Status.STALL),
    RuleCase("single commit, vetoed, lag within allowed", SINGLE, (100, 105), T + 600, 7,
             True, True, -1, None, False, True, True, Status.OK, allowed_lag=5),
]  # fmt: skip


# The reason of every case above, in the words docs/reasons.md lists (T+300 is 22:18:20 UTC).
RULE_REASONS = {
    "ex1 zero lag in window": "OK: lag was 0 at 22:18:20 UTC",
    "ex2 offsets unchanged": "STALL: offset 10 committed 10 times while 20 messages wait",
    "ex3 lag never decreases": "WARN: lag never fell over the last 10 commits (1 -> 6)",
    "ex4 lag dipped W3 to W4": "OK: lag fell from 30 to 25 at 22:16:20 UTC",
    "ex5 ex4 at T+1200 stopped": (
        "STOP: no commit since 22:22:20 UTC, longer than the window's span of 540 s, and the "
        "partition's HEAD moved past the last commit (offset 100, HEAD 155)"
    ),
    "idle exactly one span is not stopped": "OK: lag fell from 30 to 25 at 22:16:20 UTC",
    "idle one second over the span": (
        "STOP: no commit since 22:22:20 UTC, longer than the window's span of 540 s, and the "
        "partition's HEAD moved past the last commit (offset 100, HEAD 155)"
    ),
    "now truncated to whole seconds": "OK: lag fell from 30 to 25 at 22:16:20 UTC",
    "HEAD equal to last commit vetoes STOP": "WARN: lag never fell over the last 10 commits (1 -> 6)",
    "HEAD one past last commit: no veto": (
        "STOP: no commit since 22:22:20 UTC, longer than the window's span of 540 s, and the "
        "partition's HEAD moved past the last commit (offset 100, HEAD 106)"
    ),
    "no HEAD history: no veto": (
        "STOP: no commit since 22:22:20 UTC, longer than the window's span of 540 s, and the "
        "partition's HEAD moved past the last commit (offset 100, HEAD unknown)"
    ),
    "STOP despite a zero lag in window": (
        "STOP: no commit since 22:22:20 UTC, longer than the window's span of 540 s, and the "
        "partition's HEAD moved past the last commit (offset 100, HEAD 105)"
    ),
    "STOP before REWIND": (
        "STOP: no commit since 22:22:20 UTC, longer than the window's span of 540 s, and the "
        "partition's HEAD moved past the last commit (offset 45, HEAD 61)"
    ),
    "commit from the future is not stopped": "WARN: lag never fell over the last 10 commits (1 -> 6)",
    "out-of-order timestamps used as-is": (
        "STOP: no commit since 22:15:00 UTC, longer than the window's span of -200 s, and the "
        "partition's HEAD moved past the last commit (offset 30, HEAD 40)"
    ),
    "rewind not recovered": (
        "REWIND: committed offset went back from 50 to 25 at 22:18:20 UTC and has not returned to 50 since"
    ),
    "rewind recovered at exactly the old offset": "WARN: lag never fell over the last 10 commits (5 -> 31)",
    "rewind one short of recovery": (
        "REWIND: committed offset went back from 50 to 25 at 22:18:20 UTC and has not returned to 50 since"
    ),
    "rewind at index 1": (
        "REWIND: committed offset went back from 20 to 10 at 22:14:20 UTC and has not returned to 20 since"
    ),
    "only the first rewind is examined": "OK: lag fell from 35 to 34 at 22:22:20 UTC",
    "REWIND despite a zero lag in window": (
        "REWIND: committed offset went back from 50 to 25 at 22:18:20 UTC and has not returned to 50 since"
    ),
    "window lag equal to allowed_lag": "OK: lag was 1 (within allowed_lag 1) at 22:14:20 UTC",
    "window lags one above allowed_lag": "WARN: lag never fell over the last 10 commits (2 -> 7)",
    "current lag equal to allowed_lag": "OK: lag 3 is within allowed_lag 3",
    "current lag one above allowed_lag": (
        "STOP: no commit since 22:22:20 UTC, longer than the window's span of 540 s, and the "
        "partition's HEAD moved past the last commit (offset 100, HEAD 155)"
    ),
    "current lag 0 is OK on a stalled window": "OK: lag is 0",
    "Burrow: all lags unknown count as non-zero": (
        "OK: lag unknown at 10 of the last 10 commits (it might have been 0), so neither STALL nor WARN is "
        "shown"
    ),
    "a drop across an unknown lag": (
        "OK: lag unknown at 1 of the last 10 commits (it might have been 0), so neither STALL nor WARN is "
        "shown"
    ),
    "Burrow: a rise across an unknown lag": (
        "OK: lag unknown at 1 of the last 10 commits (it might have been 0), so neither STALL nor WARN is "
        "shown"
    ),
    "an unknown lag does not hide a zero": "OK: lag was 0 at 22:14:20 UTC",
    "equal lags with advancing offsets": "WARN: lag never fell over the last 10 commits (5 -> 5)",
    "Burrow: equal offsets with unknown lags": (
        "OK: lag unknown at 10 of the last 10 commits (it might have been 0), so neither STALL nor WARN is "
        "shown"
    ),
    "single commit one second later": (
        "STOP: no commit since 22:22:20 UTC, longer than the window's span of 0 s, and the "
        "partition's HEAD moved past the last commit (offset 100, HEAD 105)"
    ),
    "single commit in the same second": "STALL: offset 100 committed once while 5 messages wait",
    "single commit, STOP vetoed": "STALL: offset 100 committed once while 5 messages wait",
    "single commit, vetoed, lag within allowed": "OK: lag was 5 (within allowed_lag 5) at 22:22:20 UTC",
    "unknown lags do not hide a STOP": (
        "STOP: no commit since 22:22:20 UTC, longer than the window's span of 540 s, and the partition's "
        "HEAD moved past the last commit (offset 100, HEAD 104)"
    ),
    "unknown lags do not hide a REWIND": (
        "REWIND: committed offset went back from 50 to 25 at 22:18:20 UTC and has not returned to 50 since"
    ),
}


@pytest.mark.parametrize("case", [pytest.param(case, id=case.name) for case in RULE_CASES])
def test_rules(case: RuleCase) -> None:
    commits = case.commits
    offsets, timestamps, lags = columns(commits)
    index = first_rewind_index(offsets)
    assert offsets_stopped(timestamps, math.floor(case.now)) is case.stopped
    assert recent_lag_zero(offsets[-1], case.broker_offsets) is case.recent_zero
    assert index == case.rewind_index
    assert (rewind_recovered(offsets, index) if index > 0 else None) is case.recovered
    assert lag_always_nonzero(lags, case.allowed_lag) is case.always_nonzero
    assert offsets_all_equal(offsets) is case.all_equal
    assert lag_never_decreases(lags) is case.never_decreases
    result = evaluate_partition(commits, case.broker_offsets, case.current_lag, case.now, case.allowed_lag)
    assert result == PartitionEvaluation(
        case.status, 1.0, commits[0], commits[-1], case.current_lag, result.reason
    )
    assert RULE_STATUS[result.reason.rule] is case.status
    assert text(result.reason) == RULE_REASONS[case.name]


@pytest.mark.parametrize(
    ("commits", "broker_offsets", "current_lag", "now", "partition_status", "group_status"),
    [
        pytest.param(EX1, (102, 105), 5, T + 600, Status.OK, Status.OK, id="ex1"),
        pytest.param(EX2, (20, 30), 20, T + 600, Status.STALL, Status.ERR, id="ex2"),
        pytest.param(EX3, (104, 106), 6, T + 600, Status.WARN, Status.WARN, id="ex3"),
        pytest.param(EX4, (150, 155), 55, T + 600, Status.OK, Status.OK, id="ex4"),
        pytest.param(EX4, (150, 155), 55, T + 1200, Status.STOP, Status.ERR, id="ex5"),
    ],
)
def test_worked_examples_at_group_level(
    commits: tuple[Commit, ...],
    broker_offsets: tuple[int, ...],
    current_lag: int,
    now: int,
    partition_status: Status,
    group_status: Status,
) -> None:
    result = evaluate_group(group_of(partition("t", 0, commits, current_lag, broker_offsets)), now)
    assert [p.status for p in result.partitions] == [partition_status]
    assert result.status is group_status


# ------------------------------------------------------------------------------------------------------------
# One partition: the window's unfilled slots, completeness, and inputs the rules never see.

STOPPED_HALF = (None,) * 5 + window(OFFSETS[:5], (5,) * 5, start=T + 300)


def test_placeholder_partition_is_ok_with_complete_zero() -> None:
    assert evaluate_partition((), (500,), 7, T + 600) == PartitionEvaluation(
        Status.OK, 0.0, None, None, 7, Reason(Rule.NO_COMMITS)
    )


@pytest.mark.parametrize(("slots", "complete"), [(10, 0.1), (4, 0.25), (1, 1.0)])
def test_window_of_empty_slots_keeps_burrows_one_slot_quirk(slots: int, complete: float) -> None:
    result = evaluate_partition((None,) * slots, (500,), 50, T + 600)
    assert result == PartitionEvaluation(Status.OK, complete, None, None, 50, Reason(Rule.NO_COMMITS))


def test_incomplete_window_is_evaluated_by_default() -> None:
    # Commits at T+300..T+540: 360 s idle at T+900 is more than the 240 s span.
    result = evaluate_partition(STOPPED_HALF, (60,), 10, T + 900)
    assert result == PartitionEvaluation(
        Status.STOP, 0.5, STOPPED_HALF[5], STOPPED_HALF[9], 10, result.reason
    )
    assert result.reason.rule is Rule.STOPPED


@pytest.mark.parametrize(
    ("minimum_complete", "status", "rule"),
    [(0.5, Status.STOP, Rule.STOPPED), (0.51, Status.OK, Rule.INCOMPLETE), (1.0, Status.OK, Rule.INCOMPLETE)],
)
def test_minimum_complete_gates_evaluation_but_keeps_start_and_end(
    minimum_complete: float, status: Status, rule: Rule
) -> None:
    result = evaluate_partition(STOPPED_HALF, (60,), 10, T + 900, minimum_complete=minimum_complete)
    assert result == PartitionEvaluation(status, 0.5, STOPPED_HALF[5], STOPPED_HALF[9], 10, result.reason)
    assert result.reason.rule is rule


def test_full_window_meets_minimum_complete_of_one() -> None:
    assert evaluate_partition(EX4, (150,), 55, T + 1200, minimum_complete=1.0).status is Status.STOP


def test_unknown_current_lag_is_ok_and_keeps_the_window() -> None:
    # Burrow drops commits until the HEAD is known; lagwatch keeps the partition and reports it OK.
    result = evaluate_partition(EX4, (), None, T + 1200)
    assert result == PartitionEvaluation(Status.OK, 1.0, EX4[0], EX4[-1], None, Reason(Rule.LAG_UNKNOWN))


# ------------------------------------------------------------------------------------------------------------
# Burrow's evaluator fixtures (burrow-semantics.md 10.2): broker offset 4321, T0 = now - 100 s.

NOW_MS = T * 1000
T0_MS = NOW_MS - 100_000


def _fixture_window(count: int) -> tuple[Commit | None, ...]:
    commits = tuple(
        Commit(
            offset=1000 + 100 * i, order=10 + i, timestamp_ms=T0_MS + 10_000 * i, lag=4321 - 1000 - 100 * i
        )
        for i in range(count)
    )
    return (None,) * (10 - count) + commits


def test_burrow_fixture_testgroup_is_ok() -> None:
    snapshot = group_of(partition("testtopic", 0, _fixture_window(10), 2421, (4321,)))
    result = evaluate_group(snapshot, T)
    assert (result.status, result.complete, result.partition_count, result.totallag) == (
        Status.OK,
        1.0,
        1,
        2421,
    )


def test_burrow_fixture_testgroup2_is_stopped() -> None:
    snapshot = group_of(partition("testtopic", 0, _fixture_window(5), 2921, (4321,)))
    result = evaluate_group(snapshot, T)
    assert (result.status, result.complete, result.partition_count, result.totallag) == (
        Status.ERR,
        0.0,
        1,
        2921,
    )
    (only,) = result.partitions
    assert (only.status, only.complete) == (Status.STOP, 0.5)
    assert result.maxlag == only
    assert [c.offset for c in (only.start, only.end) if c is not None] == [1000, 1400]


# ------------------------------------------------------------------------------------------------------------
# The group roll-up.


def test_unknown_group_is_notfound() -> None:
    assert evaluate_group(None, T, cluster="local", group="gone") == GroupStatus(
        cluster="local",
        group="gone",
        status=Status.NOTFOUND,
        complete=1.0,
        partitions=NO_PARTITIONS,
        partition_count=0,
        maxlag=None,
        totallag=0,
        reason=GroupReason(Status.NOTFOUND, 0, Status.OK, (), 0, None),
    )


def test_group_without_partitions_is_ok_with_complete_zero() -> None:
    result = evaluate_group(group_of(), T, cluster="ignored", group="ignored")
    assert result == GroupStatus(
        "local",
        "g",
        Status.OK,
        0.0,
        NO_PARTITIONS,
        0,
        None,
        0,
        GroupReason(Status.OK, 0, Status.OK, (), 0, None),
    )


@pytest.mark.parametrize(
    ("worst", "expected"),
    [
        (EX1, Status.OK),
        (EX3, Status.WARN),
        (EX2, Status.ERR),
        (UNRECOVERED, Status.ERR),
        (window(OFFSETS, (5,) * 10, start=T - 1200), Status.ERR),
    ],
    ids=["OK", "WARN", "STALL", "REWIND", "STOP"],
)
def test_worst_partition_wins_and_partition_errors_become_err(
    worst: tuple[Commit, ...], expected: Status
) -> None:
    ok = partition("a", 0, EX4, 55, (150,))
    warn = partition("b", 0, EX3, 6, (106,))
    result = evaluate_group(group_of(ok, partition("a", 1, worst, 30, (500,)), warn), T + 600)
    assert result.status is max(expected, Status.WARN)
    alone = evaluate_group(group_of(partition("a", 1, worst, 30, (500,))), T + 600)
    assert alone.status is expected


def test_partitions_are_reported_in_topic_partition_order() -> None:
    parts = [partition("b", 0, EX1, 5), partition("a", 2, EX1, 5), partition("a", 10, EX1, 5)]
    result = evaluate_group(group_of(*parts), T + 600)
    assert [(p.topic, p.partition) for p in result.partitions] == [("a", 2), ("a", 10), ("b", 0)]


def test_maxlag_tie_goes_to_the_first_topic_partition() -> None:
    parts = [partition("b", 0, EX1, 9), partition("a", 1, EX1, 9), partition("a", 0, EX1, 3)]
    maxlag = evaluate_group(group_of(*parts), T + 600).maxlag
    assert maxlag is not None
    assert (maxlag.topic, maxlag.partition, maxlag.current_lag) == ("a", 1, 9)


def test_unknown_lag_never_beats_a_known_lag_and_counts_zero() -> None:
    result = evaluate_group(group_of(partition("a", 0, EX1, None), partition("a", 1, EX1, 0)), T + 600)
    assert result.maxlag == result.partitions[1]
    assert result.totallag == 0


def test_maxlag_of_unknown_lags_only_is_the_first_partition() -> None:
    result = evaluate_group(group_of(partition("a", 0, EX1, None), partition("a", 1, EX1, None)), T + 600)
    assert result.maxlag == result.partitions[0]


def test_totallag_sums_known_current_lags() -> None:
    parts = [partition("a", 0, EX1, 5), partition("a", 1, EX1, None), partition("a", 2, (), 7)]
    assert evaluate_group(group_of(*parts), T + 600).totallag == 12


def test_placeholders_count_and_only_full_windows_are_complete() -> None:
    parts = [partition("t", 0, EX4, 55, (150,)), partition("t", 1, STOPPED_HALF, 10, (60,))]
    parts += [partition("t", n, (), 0) for n in range(2, 10)]
    result = evaluate_group(group_of(*parts), T + 600)
    assert (result.partition_count, result.complete) == (10, 0.1)
    assert [p.complete for p in result.partitions] == [1.0, 0.5] + [0.0] * 8


def test_partition_status_carries_identity_window_and_lag() -> None:
    result = evaluate_group(group_of(partition("t", 3, EX3, 6, (104, 106))), T + 600)
    (only,) = result.partitions
    assert (only.topic, only.partition, only.owner, only.client_id, only.member_id) == (
        "t",
        3,
        "/10.0.0.3",
        "client-3",
        "member-3",
    )
    assert (only.status, only.start, only.end, only.current_lag, only.complete) == (
        Status.WARN,
        EX3[0],
        EX3[-1],
        6,
        1.0,
    )


def test_group_passes_allowed_lag_and_minimum_complete_on() -> None:
    snapshot = group_of(partition("t", 0, EX3, 6, (104,)), partition("t", 1, STOPPED_HALF, 10, (60,)))
    assert evaluate_group(snapshot, T + 900).status is Status.ERR
    assert evaluate_group(snapshot, T + 900, allowed_lag=1, minimum_complete=0.6).status is Status.OK


# ------------------------------------------------------------------------------------------------------------
# EvaluationCache.


class FakeSource:
    """A GroupSource over a dict: set() replaces a group's snapshot and bumps its version, and its windows
    version unless told that only the HEADs moved."""

    def __init__(self) -> None:
        self.data: dict[str, tuple[int, GroupSnapshot | None]] = {}
        self.windows: dict[str, int] = {}

    def set(self, group: str, snapshot: GroupSnapshot | None, *, heads_only: bool = False) -> None:
        version = self.data[group][0] + 1 if group in self.data else 1
        self.data[group] = (version, snapshot)
        if not heads_only:
            self.windows[group] = version

    def windows_version(self, group: str) -> int:
        return self.windows.get(group, 0)

    def groups(self) -> list[str]:
        return sorted(self.data)

    def group_version(self, group: str) -> int:
        # Like the storage: a group deleted after groups() was read has a version and no snapshot.
        return self.data[group][0] if group in self.data else 0

    def group_snapshot(self, group: str, now_ms: int) -> GroupSnapshot | None:
        return self.data[group][1] if group in self.data else None


def test_cache_evaluates_unchanged_groups_once() -> None:
    source = FakeSource()
    source.set("a", group_of(partition("t", 0, EX3, 6, (106,)), name="a"))
    source.set("b", group_of(partition("t", 0, EX1, 5, (105,)), name="b"))
    cache = EvaluationCache()
    assert cache.refresh(source, T + 600) == 2
    first = cache.status("a")
    assert cache.refresh(source, T + 610) == 0
    assert cache.refresh(source, T + 700.5) == 0
    assert cache.status("a") is first
    assert {g: s.status for g, s in cache.statuses().items()} == {"a": Status.WARN, "b": Status.OK}


def test_cache_re_evaluates_a_group_whose_version_changed() -> None:
    source = FakeSource()
    source.set("a", group_of(partition("t", 0, EX3, 6, (106,)), name="a"))
    source.set("b", group_of(partition("t", 0, EX1, 5, (105,)), name="b"))
    cache = EvaluationCache()
    cache.refresh(source, T + 600)
    source.set("a", group_of(partition("t", 0, EX2, 20, (30,)), name="a"))
    assert cache.refresh(source, T + 610) == 1
    assert cache.status("a").status is Status.ERR
    assert cache.status("b").status is Status.OK


def test_cache_flips_to_stop_at_the_deadline_without_new_data() -> None:
    source = FakeSource()
    source.set("a", group_of(partition("t", 0, EX3, 6, (104, 106)), name="a"))
    cache = EvaluationCache()
    assert cache.refresh(source, T + 600) == 1
    # Commits span T..T+540: stopped once now*1000 - (T+540)*1000 > 540_000, i.e. from T+1081.
    assert cache.refresh(source, T + 1080.9) == 0
    assert cache.status("a").status is Status.WARN
    assert cache.refresh(source, T + 1081) == 1
    assert cache.status("a").status is Status.ERR
    assert cache.status("a").partitions[0].status is Status.STOP
    assert cache.refresh(source, T + 100_000) == 0


def test_cache_deadline_is_the_earliest_among_the_lagging_partitions() -> None:
    # EX3 spans T..T+540 (STOP from T+1081); the same window 200 s later from T+1481. The caught-up
    # partition and the one at the allowed lag have no deadline and must not hide the others.
    later = window(OFFSETS, (1, 1, 2, 2, 2, 3, 4, 5, 5, 6), start=T + 200)
    source = FakeSource()
    source.set(
        "a",
        group_of(
            partition("t", 0, EX3, 0, (100,)),
            partition("t", 1, EX3, 1, (101,)),
            partition("t", 2, later, 6, (104, 106)),
            partition("t", 3, EX3, 6, (104, 106)),
            name="a",
        ),
    )
    cache = EvaluationCache(allowed_lag=1)
    assert cache.refresh(source, T + 600) == 1
    assert cache.refresh(source, T + 1080) == 0
    assert cache.refresh(source, T + 1081) == 1
    assert [p.status for p in cache.status("a").partitions] == [Status.OK, Status.OK, Status.OK, Status.STOP]
    assert cache.refresh(source, T + 1280) == 0
    assert cache.refresh(source, T + 1281) == 1
    assert cache.status("a").partitions[2].status is Status.STOP
    assert cache.refresh(source, T + 100_000) == 0


def test_cache_sets_no_deadline_where_time_cannot_cause_stop() -> None:
    source = FakeSource()
    source.set("vetoed", group_of(partition("t", 0, EX3, 6, (100, 106)), name="vetoed"))
    source.set("caught-up", group_of(partition("t", 0, EX3, 0, (100,)), name="caught-up"))
    source.set("unknown-lag", group_of(partition("t", 0, EX3, None), name="unknown-lag"))
    source.set("below-minimum", group_of(partition("t", 0, STOPPED_HALF, 10, (60,)), name="below-minimum"))
    cache = EvaluationCache(minimum_complete=0.6)
    assert cache.refresh(source, T + 600) == 4
    assert cache.refresh(source, T + 100_000) == 0
    assert {g: s.status for g, s in cache.statuses().items()} == {
        "below-minimum": Status.OK,
        "caught-up": Status.OK,
        "unknown-lag": Status.OK,
        "vetoed": Status.WARN,
    }


def test_cache_with_allowed_lag_sets_no_deadline_at_or_below_it() -> None:
    source = FakeSource()
    source.set("a", group_of(partition("t", 0, EX3, 2, (102,)), name="a"))
    cache = EvaluationCache(allowed_lag=2)
    cache.refresh(source, T + 600)
    assert cache.refresh(source, T + 100_000) == 0
    assert cache.status("a").status is Status.OK


def test_cache_drops_removed_groups_and_reports_them_notfound() -> None:
    source = FakeSource()
    source.set("a", group_of(partition("t", 0, EX3, 6, (106,)), name="a"))
    source.set("b", group_of(partition("t", 0, EX1, 5, (105,)), name="b"))
    cache = EvaluationCache(cluster="local")
    cache.refresh(source, T + 600)
    before = cache.statuses()
    del source.data["a"]
    assert cache.refresh(source, T + 610) == 0
    assert list(cache.statuses()) == ["b"]
    assert list(before) == ["a", "b"]
    assert cache.status("a") == evaluate_group(None, T, cluster="local", group="a")


def test_cache_keeps_a_listed_group_without_snapshot_as_notfound() -> None:
    source = FakeSource()
    source.set("expired", None)
    cache = EvaluationCache(cluster="local")
    assert cache.refresh(source, T) == 1
    assert cache.status("expired").status is Status.NOTFOUND
    assert cache.status("expired").cluster == "local"
    assert cache.refresh(source, T + 100_000) == 0


def test_cache_re_evaluates_when_the_clock_goes_back() -> None:
    source = FakeSource()
    source.set("a", group_of(partition("t", 0, EX3, 6, (104, 106)), name="a"))
    cache = EvaluationCache()
    cache.refresh(source, T + 1200)
    assert cache.status("a").status is Status.ERR
    assert cache.refresh(source, T + 600) == 1
    assert cache.status("a").status is Status.WARN


def test_cache_statuses_is_read_only() -> None:
    cache = EvaluationCache()
    with pytest.raises(TypeError):
        cache.statuses()["a"] = evaluate_group(None, T)  # type: ignore[index]


# ------------------------------------------------------------------------------------------------------------
# Properties.

times = st.floats(min_value=T - 10, max_value=T + 3000, allow_nan=False)
lags = st.integers(min_value=0, max_value=50)
allowed_lags = st.integers(min_value=0, max_value=10)
minimum_completes = st.sampled_from([0.0, 0.3, 0.5, 1.0])
heads = st.lists(st.integers(min_value=0, max_value=300), max_size=10).map(tuple)


@st.composite
def windows(draw: st.DrawFn, *, zero_lag_at_or_below: int | None = None) -> tuple[Commit | None, ...]:
    """Up to ten slots, the leading ones possibly unfilled; timestamps mostly rising from T, sometimes not."""
    least = 0 if zero_lag_at_or_below is None else 1
    size = draw(st.integers(min_value=least, max_value=10))
    filled = draw(st.integers(min_value=least, max_value=size))
    commits: list[Commit] = []
    timestamp_ms = T * 1000
    offset = draw(st.integers(min_value=0, max_value=100))
    for order in range(filled):
        timestamp_ms += draw(st.integers(min_value=-5_000, max_value=150_000))
        offset = max(0, offset + draw(st.integers(min_value=-20, max_value=40)))
        commits.append(Commit(offset, order, timestamp_ms, draw(st.none() | lags)))
    if zero_lag_at_or_below is not None:
        at = draw(st.integers(min_value=0, max_value=filled - 1))
        lag = draw(st.integers(min_value=0, max_value=zero_lag_at_or_below))
        commits[at] = commits[at]._replace(lag=lag)
    return (None,) * (size - filled) + tuple(commits)


@st.composite
def groups(draw: st.DrawFn) -> GroupSnapshot:
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(min_value=0, max_value=3)),
            max_size=6,
            unique=True,
        )
    )
    parts = tuple(partition(t, p, draw(windows()), draw(st.none() | lags), draw(heads)) for t, p in keys)
    return GroupSnapshot(cluster="local", group="g", partitions=parts, last_commit_ms=0)


@given(windows(), heads, lags, allowed_lags, minimum_completes, times)
def test_property_current_lag_within_allowed_lag_is_ok(
    commits: tuple[Commit | None, ...],
    broker_offsets: tuple[int, ...],
    current_lag: int,
    allowed_lag: int,
    minimum_complete: float,
    now: float,
) -> None:
    current_lag = min(current_lag, allowed_lag)
    result = evaluate_partition(commits, broker_offsets, current_lag, now, allowed_lag, minimum_complete)
    assert result.status is Status.OK


@given(st.data(), allowed_lags, heads, lags, times)
def test_property_a_lag_within_allowed_lag_is_never_stall_or_warn(
    data: st.DataObject, allowed_lag: int, broker_offsets: tuple[int, ...], current_lag: int, now: float
) -> None:
    commits = data.draw(windows(zero_lag_at_or_below=allowed_lag))
    status = evaluate_partition(commits, broker_offsets, current_lag, now, allowed_lag).status
    assert status not in (Status.STALL, Status.WARN)


@given(groups(), times, allowed_lags, minimum_completes)
def test_property_group_is_the_roll_up_of_its_partitions(
    snapshot: GroupSnapshot, now: float, allowed_lag: int, minimum_complete: float
) -> None:
    result = evaluate_group(snapshot, now, allowed_lag=allowed_lag, minimum_complete=minimum_complete)
    ordered = sorted(snapshot.partitions, key=lambda p: (p.topic, p.partition))
    verdicts = [
        evaluate_partition(p.window, p.broker_offsets, p.current_lag, now, allowed_lag, minimum_complete)
        for p in ordered
    ]
    assert [(p.topic, p.partition) for p in result.partitions] == [(p.topic, p.partition) for p in ordered]
    assert [(p.status, p.complete, p.start, p.end, p.current_lag) for p in result.partitions] == [
        (v.status, v.complete, v.start, v.end, v.current_lag) for v in verdicts
    ]
    assert result.status is max((min(v.status, Status.ERR) for v in verdicts), default=Status.OK)
    assert result.partition_count == len(ordered)
    assert result.totallag == sum(p.current_lag or 0 for p in ordered)
    full = sum(v.complete == 1.0 for v in verdicts)
    assert result.complete == (full / len(ordered) if ordered else 0.0)
    known = [p.current_lag for p in ordered if p.current_lag is not None]
    if result.maxlag is not None:
        assert result.maxlag.current_lag == (max(known) if known else None)
    assert (result.maxlag is None) == (not ordered)


_SEVERITY = {Status.OK: 0, Status.WARN: 1, Status.STOP: 2, Status.STALL: 2, Status.REWIND: 2}


@given(windows(), heads, st.none() | lags, allowed_lags, minimum_completes, times, st.data())
def test_property_unknown_lags_never_make_a_status_worse(
    commits: tuple[Commit | None, ...],
    broker_offsets: tuple[int, ...],
    current_lag: int | None,
    allowed_lag: int,
    minimum_complete: float,
    now: float,
    data: st.DataObject,
) -> None:
    # A commit whose lag is unknown is evidence of nothing: forgetting any known lags (and the current lag)
    # may take an alarm away, never raise one or raise it to a worse level.
    forget = data.draw(st.sets(st.integers(min_value=0, max_value=max(len(commits) - 1, 0))))
    partial = tuple(
        c if c is None or i not in forget else c._replace(lag=None) for i, c in enumerate(commits)
    )
    partial_lag = None if data.draw(st.booleans()) else current_lag
    known = evaluate_partition(commits, broker_offsets, current_lag, now, allowed_lag, minimum_complete)
    unknown = evaluate_partition(partial, broker_offsets, partial_lag, now, allowed_lag, minimum_complete)
    assert _SEVERITY[unknown.status] <= _SEVERITY[known.status]
    if unknown.status is not Status.OK:
        assert unknown.status is known.status


def test_lags_known() -> None:
    assert lags_known(columns(EX3)[2])
    assert not lags_known(columns(window(OFFSETS, (1, 2, 3, 4, 5, None, 5, 6, 7, 8)))[2])


@given(windows(), heads, st.none() | lags, allowed_lags, times, st.integers(min_value=0, max_value=5000))
def test_property_stop_persists_as_time_passes(
    commits: tuple[Commit | None, ...],
    broker_offsets: tuple[int, ...],
    current_lag: int | None,
    allowed_lag: int,
    now: float,
    later: int,
) -> None:
    # EvaluationCache relies on this: without new data, STOP is the only change time can bring, and it stays.
    before = evaluate_partition(commits, broker_offsets, current_lag, now, allowed_lag).status
    after = evaluate_partition(commits, broker_offsets, current_lag, now + later, allowed_lag).status
    assert after is before or after is Status.STOP


@given(
    st.lists(groups(), min_size=1, max_size=4),
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=400), st.sets(st.integers(min_value=0, max_value=3))),
        max_size=8,
    ),
    allowed_lags,
    minimum_completes,
)
def test_property_cache_matches_a_fresh_evaluation_after_every_refresh(
    snapshots: list[GroupSnapshot],
    steps: list[tuple[int, set[int]]],
    allowed_lag: int,
    minimum_complete: float,
) -> None:
    source = FakeSource()
    for number, snapshot in enumerate(snapshots):
        source.set(f"g{number}", replace(snapshot, group=f"g{number}"))
    cache = EvaluationCache(allowed_lag, minimum_complete, cluster="local")
    now = float(T)
    for advance, touched in [(0, set()), *steps]:
        now += advance
        for number in touched & set(range(len(snapshots))):
            source.set(f"g{number}", source.data[f"g{number}"][1])  # same data, new version
        cache.refresh(source, now)
        fresh = {
            g: evaluate_group(
                source.group_snapshot(g, int(now * 1000)),
                now,
                allowed_lag=allowed_lag,
                minimum_complete=minimum_complete,
            )
            for g in source.groups()
        }
        assert dict(cache.statuses()) == fresh


def _drain(steps: Generator[int, None, int]) -> tuple[list[int], int]:
    yielded = []
    while True:
        try:
            yielded.append(next(steps))
        except StopIteration as done:
            return yielded, done.value


def test_cache_refresh_in_steps_yields_per_batch_and_swaps_at_the_end() -> None:
    source = FakeSource()
    for name in "abcde":
        source.set(name, group_of(partition("t", 0, EX3, 6, (106,)), name=name))
    cache = EvaluationCache()
    steps = cache.refresh_in_steps(source, T + 600, batch=2)
    assert next(steps) == 2
    assert cache.statuses() == {}
    assert next(steps) == 4
    assert cache.statuses() == {}
    assert _drain(steps) == ([], 5)
    assert {g: s.status for g, s in cache.statuses().items()} == dict.fromkeys("abcde", Status.WARN)


def test_cache_drops_a_group_deleted_between_steps() -> None:
    source = FakeSource()
    for name in "abc":
        source.set(name, group_of(partition("t", 0, EX3, 6, (106,)), name=name))
    cache = EvaluationCache()
    steps = cache.refresh_in_steps(source, T + 600, batch=1)
    assert next(steps) == 1
    del source.data["a"]
    assert _drain(steps) == ([2, 3], 3)
    assert sorted(cache.statuses()) == ["b", "c"]


def test_cache_round_keeps_a_group_refreshed_between_its_steps() -> None:
    source = FakeSource()
    for name in "ab":
        source.set(name, group_of(partition("t", 0, EX3, 6, (106,)), name=name))
    cache = EvaluationCache()
    cache.refresh(source, T + 600)
    source.set("a", group_of(partition("t", 0, EX3, 6, (107,)), name="a"))
    source.set("b", group_of(partition("t", 0, EX3, 6, (107,)), name="b"))
    steps = cache.refresh_in_steps(source, T + 610, batch=1)
    assert next(steps) == 1
    source.set("a", group_of(partition("t", 0, EX1, 5, (105,)), name="a"))
    cache.refresh_group(source, "a", T + 610)
    del source.data["b"]
    cache.refresh_group(source, "b", T + 610)
    _drain(steps)
    assert {g: s.status for g, s in cache.statuses().items()} == {"a": Status.OK}
    assert cache.refresh(source, T + 610) == 0


def test_cache_refresh_group_re_evaluates_or_drops_one_group() -> None:
    source = FakeSource()
    source.set("a", group_of(partition("t", 0, EX3, 6, (106,)), name="a"))
    source.set("b", group_of(partition("t", 0, EX1, 5, (105,)), name="b"))
    cache = EvaluationCache()
    cache.refresh(source, T + 600)
    before = cache.statuses()
    source.set("a", group_of(partition("t", 0, EX1, 5, (105,)), name="a"))
    cache.refresh_group(source, "a", T + 600)
    assert cache.status("a").status == Status.OK
    assert before["a"].status == Status.WARN
    del source.data["b"]
    cache.refresh_group(source, "b", T + 600)
    assert sorted(cache.statuses()) == ["a"]
    assert cache.refresh(source, T + 600) == 0


# ------------------------------------------------------------------------------------------------------------
# Reuse of the status before: `previous` changes no value, and only equal parts are shared.


def _parts(status: GroupStatus) -> list[object]:
    """Every object of a status that a status after it may share."""
    columns = status.partitions
    found: list[object] = [status, status.reason, status.maxlag, columns]
    found += [getattr(columns, name) for name in Partitions.__slots__]
    found += columns.reasons
    return [x for x in found if x is not None]


def _assert_shares_only_equal_parts(after: GroupStatus, before: GroupStatus, fresh: GroupStatus) -> None:
    assert after == fresh
    shared = {id(x) for x in _parts(before)}
    # Part by part against the fresh evaluation: a part taken from `before` must be the fresh part's equal.
    assert (after is before) == (id(after) in shared)
    mine, theirs = after.partitions, fresh.partitions
    pairs = [(after.reason, fresh.reason), (after.maxlag, fresh.maxlag), (mine, theirs)]
    pairs += [(getattr(mine, name), getattr(theirs, name)) for name in Partitions.__slots__]
    pairs += zip(mine.reasons, theirs.reasons, strict=True)
    for kept_part, fresh_part in pairs:
        if id(kept_part) in shared:
            assert kept_part == fresh_part


def test_an_unchanged_group_re_evaluated_is_the_status_before() -> None:
    snapshot = group_of(partition("t", 0, EX3, 6, (106,)), partition("t", 1, EX1, 5, (105,)))
    before = evaluate_group(snapshot, T + 600)
    after = evaluate_group(snapshot, T + 610, previous=before, same_windows=True)
    assert after is before


def test_a_changed_lag_gives_a_new_status_sharing_the_window_ends_and_reasons() -> None:
    before = evaluate_group(group_of(partition("t", 0, EX3, 6, (106,)), partition("t", 1, EX1, 5)), T + 600)
    snapshot = group_of(partition("t", 0, EX3, 7, (107,)), partition("t", 1, EX1, 5))
    after = evaluate_group(snapshot, T + 600, previous=before, same_windows=True)
    moved, same = after.partitions
    assert after is not before
    assert (moved.current_lag, after.totallag, after.maxlag) == (7, 12, moved)
    assert after.partitions.lags == array("q", [7, 5])
    assert before.partitions.lags == array("q", [6, 5])
    # The windows, the rules' figures and the names did not move: those columns are the ones before.
    columns, was = after.partitions, before.partitions
    assert [name for name in Partitions.__slots__ if getattr(columns, name) is not getattr(was, name)] == [
        "lags"
    ]
    assert same == before.partitions[1]
    # The maxlag partition is new (its lag moved), its window ends are those before.
    assert after.maxlag is not None
    assert before.maxlag is not None
    assert (after.maxlag.start, after.maxlag.end) == (before.maxlag.start, before.maxlag.end)
    assert after.maxlag.start is before.maxlag.start
    assert after.maxlag.end is before.maxlag.end
    _assert_shares_only_equal_parts(after, before, evaluate_group(snapshot, T + 600))


def test_a_lagging_partition_of_the_same_window_keeps_its_rule_without_running_the_rules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # EX3's lags never decrease (WARN) and EX4's decreased once (OK): rules that read the window alone.
    before = evaluate_group(group_of(partition("t", 0, EX3, 6, (106,)), partition("t", 1, EX4, 55)), T + 600)
    snapshot = group_of(partition("t", 0, EX3, 9, (106, 109)), partition("t", 1, EX4, 58, (158,)))
    fresh = evaluate_group(snapshot, T + 610)
    monkeypatch.setattr(verdicts, "partition_rule", _no_rules)
    monkeypatch.setattr(verdicts, "EXPLAIN", {})
    after = evaluate_group(snapshot, T + 610, previous=before, same_windows=True)
    assert after == fresh
    assert [p.status for p in after.partitions] == [Status.WARN, Status.OK]
    assert [p.reason for p in after.partitions] == [
        Reason(Rule.LAG_NOT_DECREASING, (10, 1, 6)),
        fresh.partitions[1].reason,
    ]
    assert all(a.reason is b.reason for a, b in zip(after.partitions, before.partitions, strict=True))


def _no_rules(*args: object) -> Rule:
    raise AssertionError("the rules ran")


def test_the_same_window_runs_the_rules_again_where_time_or_the_lag_can_change_the_answer() -> None:
    stalled = evaluate_group(group_of(partition("t", 0, EX2, 5, (15,))), T + 600)
    assert stalled.partitions[0].reason == Reason(Rule.STALLED, (10, 10, 5))
    # STALLED names the current lag: a new one is a new reason.
    snapshot = group_of(partition("t", 0, EX2, 9, (19,)))
    after = evaluate_group(snapshot, T + 610, previous=stalled, same_windows=True)
    assert after == evaluate_group(snapshot, T + 610)
    assert after.partitions[0].reason == Reason(Rule.STALLED, (10, 10, 9))
    # A WARN window turns STOP when time passes it: EX3 spans T..T+540.
    warn = evaluate_group(group_of(partition("t", 0, EX3, 6, (104, 106))), T + 600)
    stopped = evaluate_group(
        group_of(partition("t", 0, EX3, 6, (104, 106))), T + 1081, previous=warn, same_windows=True
    )
    assert stopped.partitions[0].status is Status.STOP


def test_a_column_is_shared_only_where_equal() -> None:
    snapshot = group_of(partition("t", 0, EX3, 6, (106,)))
    before = evaluate_group(snapshot, T + 600)
    # A HEAD more and a commit more: the window ends are new, the names and the rule's reason are not.
    more = Commit(offset=80, order=11, timestamp_ms=(T + 600) * 1000, lag=9)
    moved = group_of(partition("t", 0, (*EX3[1:], more), 9, (106, 109)))
    after = evaluate_group(moved, T + 610, previous=before)
    assert after == evaluate_group(moved, T + 610)
    assert after.partitions.ends != before.partitions.ends
    assert after.partitions.ends[5:10] == array("q", [80, 11, (T + 600) * 1000, 0, 9])
    assert after.partitions.topics is before.partitions.topics
    assert after.partitions.numbers is before.partitions.numbers
    # Nor are the columns of another partition at the same place taken, but for those equal to its own.
    other = evaluate_group(group_of(partition("t", 1, EX3, 6, (106,))), T + 600, previous=before)
    assert other.partitions.numbers == (1,)
    assert other.partitions.ends is before.partitions.ends


@st.composite
def changed(draw: st.DrawFn, before: GroupSnapshot, *, windows_move: bool) -> GroupSnapshot:
    """`before` with some partitions changed the ways a round sees them change: a new lag, a new owner, a
    HEAD more, a commit more (if `windows_move`); partitions gone or new."""
    parts: list[PartitionSnapshot] = []
    for part in before.partitions:
        how = draw(st.sampled_from(["same", "lag", "owner", "head", "gone"] + ["commit"] * windows_move))
        window = part.window
        if how == "lag":
            part = part._replace(current_lag=draw(st.none() | lags))
        elif how == "commit" and part.slots:
            last = next((c for c in reversed(window) if c is not None), Commit(0, 0, T * 1000, None))
            more = Commit(
                last.offset + draw(st.integers(0, 20)), last.order + 1, last.timestamp_ms + 60_000, 3
            )
            part = PartitionSnapshot.of(
                part.topic,
                part.partition,
                (*window[1:], more),
                part.broker_offsets,
                part.current_lag,
                part.owner,
                part.client_id,
                part.member_id,
            )
        elif how == "owner":
            part = part._replace(owner="/10.9.9.9")
        elif how == "head":
            part = part._replace(broker_offsets=(*part.broker_offsets, 301)[-10:])
        if how != "gone":
            parts.append(part)
    if draw(st.booleans()):
        parts.append(partition("z", 9, draw(windows()), draw(st.none() | lags), draw(heads)))
    return replace(before, partitions=tuple(parts))


@given(
    st.data(),
    groups(),
    allowed_lags,
    minimum_completes,
    times,
    st.integers(min_value=0, max_value=900),
    st.booleans(),
)
def test_property_the_status_before_changes_no_value_and_shares_only_equal_parts(
    data: st.DataObject,
    first: GroupSnapshot,
    allowed_lag: int,
    minimum_complete: float,
    now: float,
    later: int,
    windows_move: bool,
) -> None:
    second = data.draw(changed(first, windows_move=windows_move))
    rules = {"allowed_lag": allowed_lag, "minimum_complete": minimum_complete}
    before = evaluate_group(first, now, **rules)  # type: ignore[arg-type]
    fresh = evaluate_group(second, now + later, **rules)  # type: ignore[arg-type]
    after = evaluate_group(
        second,
        now + later,
        previous=before,
        same_windows=not windows_move,
        **rules,  # type: ignore[arg-type]
    )
    _assert_shares_only_equal_parts(after, before, fresh)
    if second == first and later == 0 and not windows_move:
        assert after is before


def test_the_cache_re_evaluates_against_the_status_before() -> None:
    source = FakeSource()
    source.set("a", group_of(partition("t", 0, EX3, 6, (106,)), name="a"))
    cache = EvaluationCache()
    cache.refresh(source, T + 600)
    first = cache.status("a")
    # A new version, equal data.
    source.set("a", group_of(partition("t", 0, EX3, 6, (106,)), name="a"), heads_only=True)
    assert cache.refresh(source, T + 610) == 1
    assert cache.status("a") is first
    source.set("a", group_of(partition("t", 0, EX3, 8, (108,)), name="a"), heads_only=True)
    assert cache.refresh(source, T + 620) == 1
    assert cache.status("a").partitions[0].current_lag == 8
    assert cache.status("a").partitions.ends is first.partitions.ends
    assert cache.status("a").partitions.lags is not first.partitions.lags


def test_the_cache_over_the_storage_shares_window_ends_until_a_commit_moves_them() -> None:
    storage = Storage("c", intervals=3)
    storage.set_topics({"t": 2}, T * 1000)
    for order, offset in enumerate((10, 20, 30), 1):
        storage.add_head_offset("t", 0, offset + 5, (T + order) * 1000)
        storage.apply(OffsetCommit("g", "t", 0, offset, (T + order) * 1000), order, (T + order) * 1000)
        storage.apply(OffsetCommit("g", "t", 1, offset, (T + order) * 1000), 10 + order, (T + order) * 1000)
    cache = EvaluationCache()
    cache.refresh(storage, T + 10)
    first = cache.status("g")
    storage.add_head_offset("t", 0, 50, (T + 10) * 1000)
    assert cache.refresh(storage, T + 11) == 1
    second = cache.status("g")
    assert second.partitions[0].current_lag == 20
    assert second.partitions.ends is first.partitions.ends
    assert second.partitions[1] == first.partitions[1]
    storage.apply(OffsetCommit("g", "t", 1, 40, (T + 11) * 1000), 20, (T + 11) * 1000)
    assert cache.refresh(storage, T + 12) == 1
    third = cache.status("g")
    assert (third.partitions[1].start.offset, third.partitions[1].end.offset) == (20, 40)  # type: ignore[union-attr]
    assert third.partitions[0] == second.partitions[0]._replace(reason=third.partitions[0].reason)
    assert third.partitions.ends is not second.partitions.ends
    assert third.partitions.topics is first.partitions.topics


def test_a_group_s_window_ends_are_the_storage_s_integers_in_one_array() -> None:
    storage = Storage("c", intervals=2)
    storage.set_topics({"t": 3}, T * 1000)
    for order, at in ((1, T * 1000 + 123_456), (4, T * 1000 + 654_321)):
        storage.apply_batch(
            [("g", "t", p, 10 * order + p, at, -1, "") for p in range(2)],
            [order + p for p in range(2)],
            at + 7,
        )
    status = evaluate_group(storage.group_snapshot("g", (T + 700) * 1000), T + 700)
    first, last = T * 1000 + 123_456, T * 1000 + 654_321
    # Start then end of each partition: offset, order, timestamp, observed time, lag (-1: unknown); a
    # partition without commits has zeros.
    assert status.partitions.ends == array(
        "q",
        [10, 1, first, first + 7, -1, 40, 4, last, last + 7, -1]
        + [11, 2, first, first + 7, -1, 41, 5, last, last + 7, -1]
        + [0] * 10,
    )
    assert status.partitions.present == bytes([3, 3, 0])
    assert [(p.start, p.end) for p in status.partitions][2] == (None, None)


@given(st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=10))
def test_property_first_rewind_index_is_the_first_offset_below_the_one_before(offsets: list[int]) -> None:
    expected = next((i for i in range(1, len(offsets)) if offsets[i] < offsets[i - 1]), -1)
    assert first_rewind_index(offsets) == expected


@given(st.lists(st.integers(min_value=-1, max_value=12), min_size=1, max_size=10), allowed_lags)
def test_property_a_zero_lag_in_window_names_the_newest_commit_within_allowed_lag(
    window_lags: list[int], allowed_lag: int
) -> None:
    # The rules' columns: -1 is an unknown lag, which is never within allowed_lag, wherever it is.
    window_lags[0] = allowed_lag
    timestamps = [(T + 60 * i) * 1000 for i in range(len(window_lags))]
    offsets = [10 * i for i in range(len(window_lags))]
    rule = Rule.LAG_ZERO_IN_WINDOW
    reason = EXPLAIN[rule](rule, offsets, timestamps, window_lags, (), 99, allowed_lag, 1.0, 0.0)
    newest = max(i for i, lag in enumerate(window_lags) if 0 <= lag <= allowed_lag)
    assert reason.figures == (window_lags[newest], allowed_lag, timestamps[newest])


def test_a_window_of_one_commit_has_one_commit_for_both_ends() -> None:
    status = evaluate_group(group_of(partition("t", 0, SINGLE, 5), partition("t", 1, EX1, 5)), T + 600)
    single, full = status.partitions
    assert single.start == single.end == SINGLE[0]
    assert (full.start, full.end) == (EX1[0], EX1[-1])
