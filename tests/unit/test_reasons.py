"""Reasons beyond the rule table (test_evaluator.RULE_REASONS): the OK answers that no rule gives, the figures
by name, and the group's reason naming its worst partitions."""

from __future__ import annotations

from exporter.core.model import Reason, Rule, Status
from exporter.core.reasons import FIGURES, RULE_STATUS, figure_map, group_text, text
from exporter.core.verdicts import evaluate_group, evaluate_partition
from tests.unit.test_evaluator import EX2, EX3, EX4, OFFSETS, T, group_of, partition, window


def test_every_rule_has_a_status_and_named_figures() -> None:
    assert set(RULE_STATUS) == set(Rule) == set(FIGURES)


def test_placeholder_partition_has_no_commits() -> None:
    result = evaluate_partition((), (), None, T)
    assert result.reason == Reason(Rule.NO_COMMITS)
    assert text(result.reason) == "OK: no commit stored for this partition yet"


def test_window_of_empty_slots_has_no_commits() -> None:
    assert evaluate_partition((None,) * 10, (5,), 0, T).reason == Reason(Rule.NO_COMMITS)


def test_unknown_current_lag() -> None:
    result = evaluate_partition(EX3, (), None, T + 600)
    assert text(result.reason) == "OK: lag unknown until lagwatch reads the partition's HEAD offset"


def test_incomplete_window_below_minimum_complete() -> None:
    half = (None,) * 5 + window(OFFSETS[:5], (5,) * 5)
    result = evaluate_partition(half, (105,), 5, T + 300, minimum_complete=0.8)
    assert result.reason == Reason(Rule.INCOMPLETE, (50, 80))
    assert (
        text(result.reason) == "OK: window only 50% full, below minimum_complete 80%, so no rule is applied"
    )


def test_figures_by_name() -> None:
    stop = evaluate_partition(EX4, (150, 155), 55, T + 1200).reason
    assert figure_map(stop) == {"last_commit_ms": (T + 540) * 1000, "span_s": 540, "offset": 100, "head": 155}
    stall = evaluate_partition(EX2, (20, 30), 20, T + 600).reason
    assert figure_map(stall) == {"offset": 10, "commits": 10, "lag": 20}
    rewind = evaluate_partition(
        window((10, 20, 30, 40, 50, 25, 30, 35, 40, 45), (5,) * 10), (60,), 16, T + 600
    ).reason
    assert figure_map(rewind) == {"from_offset": 50, "to_offset": 25, "at_ms": (T + 300) * 1000}


def test_a_cached_stop_reason_stays_true_as_time_passes() -> None:
    early = evaluate_partition(EX4, (150, 155), 55, T + 1081).reason
    assert evaluate_partition(EX4, (150, 155), 55, T + 9999).reason == early


def test_ok_group_says_every_partition_is_ok() -> None:
    result = evaluate_group(group_of(partition("t", 0, EX3, 0), partition("t", 1, EX3, 0)), T + 600)
    assert result.reason is not None
    assert group_text(result.reason) == "OK: all 2 partitions OK"


def test_group_reason_names_its_worst_partitions_and_the_first_ones_reason() -> None:
    stopped = partition("orders", 5, EX4, 55, (150, 155))
    warn = partition("orders", 1, EX3, 6, (100, 106))  # the HEAD history vetoes STOP
    ok = partition("audit", 0, EX3, 0)
    also_stopped = partition("orders", 7, EX4, 55, (150, 155))
    result = evaluate_group(group_of(stopped, warn, ok, also_stopped), T + 1200)
    assert result.status is Status.ERR
    assert result.reason is not None
    assert result.reason.worst == (("orders", 5), ("orders", 7))
    assert group_text(result.reason) == (
        "ERR: 2 of 4 partitions STOP (orders/5, orders/7); orders/5: no commit since 22:22:20 UTC, longer "
        "than the window's span of 540 s, and the partition's HEAD moved past the last commit (offset 100, "
        "HEAD 155)"
    )


def test_group_reason_names_three_and_counts_the_rest() -> None:
    parts = [partition("t", n, EX3, 6, (104, 106)) for n in range(5)]
    result = evaluate_group(group_of(*parts), T + 600)
    assert result.reason is not None
    assert group_text(result.reason) == (
        "WARN: 5 of 5 partitions WARN (t/0, t/1, t/2 and 2 more); t/0: lag never fell over the last 10 "
        "commits (1 -> 6)"
    )


def test_the_worst_partition_status_wins_over_an_earlier_lesser_one() -> None:
    stall = partition("z", 0, EX2, 20, (20, 30))
    result = evaluate_group(group_of(partition("a", 0, EX3, 6, (104, 106)), stall), T + 600)
    assert result.reason is not None
    assert group_text(result.reason) == (
        "ERR: 1 of 2 partitions STALL (z/0); z/0: offset 10 committed 10 times while 20 messages wait"
    )


def test_group_without_partitions_and_unknown_group() -> None:
    empty = evaluate_group(group_of(), T).reason
    missing = evaluate_group(None, T, cluster="c", group="g").reason
    assert empty is not None
    assert missing is not None
    assert group_text(empty) == "OK: no partitions"
    assert group_text(missing) == "NOTFOUND: lagwatch knows no such group"
