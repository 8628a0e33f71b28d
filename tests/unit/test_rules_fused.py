"""`rules.partition_rule` runs Burrow's rules fused (each column sorted once). These property tests hold it,
and a lagging partition's whole verdict, to the rule-by-rule implementation it replaced, kept here as the
reference: the same rule, status and reason on random windows with unknown lags, rewinds, equal offsets,
incomplete windows, out-of-order timestamps and HEAD histories on either side of the last commit."""

from __future__ import annotations

import math
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.core.model import Commit, Reason, Rule, Status
from exporter.core.reasons import EXPLAIN, RULE_STATUS
from exporter.core.rules import (
    first_rewind_index,
    lag_always_nonzero,
    lag_never_decreases,
    lags_known,
    offsets_all_equal,
    partition_rule,
    rewind_recovered,
    stopped,
)
from exporter.core.verdicts import completeness, evaluate_partition

T_MS = 1_700_000_000_000


def reference_rule(
    offsets: Sequence[int],
    timestamps: Sequence[int],
    lags: Sequence[int],
    broker_offsets: Sequence[int],
    current_lag: int,
    now_s: int,
    allowed_lag: int,
) -> Rule:
    """`partition_rule` as it was before the rules were fused: one predicate after the other, in Burrow's
    order."""
    if current_lag <= allowed_lag:
        return Rule.CAUGHT_UP
    if stopped(timestamps, now_s, offsets[-1], broker_offsets):
        return Rule.STOPPED
    index = first_rewind_index(offsets)
    if index > 0 and not rewind_recovered(offsets, index):
        return Rule.REWOUND
    if not lag_always_nonzero(lags, allowed_lag):
        return Rule.LAG_ZERO_IN_WINDOW
    if not lags_known(lags):
        return Rule.LAGS_UNKNOWN_IN_WINDOW
    if offsets_all_equal(offsets):
        return Rule.STALLED
    if lag_never_decreases(lags):
        return Rule.LAG_NOT_DECREASING
    return Rule.LAG_DECREASED


# Small ranges, so that equal offsets, rewinds (recovered or not), zero and equal lags come often; -1 is an
# unknown lag, as the rules' columns hold it.
offset_steps = st.one_of(
    st.integers(min_value=-3, max_value=4),  # rewinds, mostly recovered
    st.integers(min_value=0, max_value=3),  # never back
    st.just(0),  # one offset throughout
)
allowed_lags = st.integers(min_value=-2, max_value=3)


def _with_one_unknown(lags: list[int]) -> st.SearchStrategy[list[int]]:
    return st.integers(0, len(lags) - 1).map(lambda i: [*lags[:i], -1, *lags[i + 1 :]])


@st.composite
def windows(draw: st.DrawFn) -> tuple[list[int], list[int], list[int]]:
    """A window's columns: offsets, timestamps (ms, in order or not), lags (-1 where unknown)."""
    count = draw(st.integers(min_value=1, max_value=10))
    offsets: list[int] = []
    offset = draw(st.integers(min_value=0, max_value=20))
    for step in draw(st.lists(offset_steps, min_size=count, max_size=count)):
        offset = max(offset + step, 0)
        offsets.append(offset)
    in_order = draw(st.booleans())
    timestamps = [
        T_MS + (60_000 * i if in_order else draw(st.integers(min_value=0, max_value=600)) * 1000)
        for i in range(count)
    ]
    some = st.lists(st.integers(min_value=0, max_value=12), min_size=count, max_size=count)
    lags = draw(
        st.one_of(
            st.lists(st.integers(min_value=-1, max_value=6), min_size=count, max_size=count),
            # Every lag above allowed_lag: the STALL, WARN and OK-by-a-decrease side of the rules.
            st.lists(st.integers(min_value=4, max_value=12), min_size=count, max_size=count),
            some.map(sorted),
            some.map(sorted).flatmap(_with_one_unknown),
        )
    )
    return offsets, timestamps, lags


@st.composite
def heads(draw: st.DrawFn, last_offset: int) -> tuple[int, ...]:
    """A HEAD history: none, or offsets around the last commit's (at or below it vetoes STOP)."""
    return tuple(draw(st.lists(st.integers(last_offset - 2, last_offset + 6), max_size=4)))


@settings(max_examples=1500)
@given(st.data(), windows(), allowed_lags)
def test_property_fused_rules_settle_every_window_as_the_rules_one_by_one(
    data: st.DataObject, window: tuple[list[int], list[int], list[int]], allowed_lag: int
) -> None:
    offsets, timestamps, lags = window
    current_lag = data.draw(st.integers(min_value=allowed_lag - 1, max_value=allowed_lag + 9))
    broker_offsets = data.draw(heads(offsets[-1]))
    # From before the newest commit to well past twice the window's span: stopped and not, and the boundary.
    span_s = (timestamps[-1] - timestamps[0]) // 1000
    after = data.draw(st.integers(min_value=-60, max_value=2 * abs(span_s) + 120))
    now_s = timestamps[-1] // 1000 + after
    expected = reference_rule(offsets, timestamps, lags, broker_offsets, current_lag, now_s, allowed_lag)
    assert (
        partition_rule(offsets, timestamps, lags, broker_offsets, current_lag, now_s, allowed_lag) is expected
    )


@settings(max_examples=1000)
@given(
    st.data(),
    windows(),
    st.integers(min_value=0, max_value=3),
    st.integers(min_value=0, max_value=4),
    st.sampled_from([0.0, 0.5, 1.0]),
)
def test_property_a_lagging_partition_has_the_status_and_reason_of_the_rules_one_by_one(
    data: st.DataObject,
    window: tuple[list[int], list[int], list[int]],
    allowed_lag: int,
    empty_slots: int,
    minimum_complete: float,
) -> None:
    # Through the evaluator, from the storage's layout to the reason: the columns `verdicts._lagging` makes
    # must be what the reference reads.
    offsets, timestamps, lags = window
    commits = tuple(
        Commit(offset=o, order=i, timestamp_ms=ts, lag=None if lag < 0 else lag)
        for i, (o, ts, lag) in enumerate(zip(offsets, timestamps, lags, strict=True))
    )
    broker_offsets = data.draw(heads(offsets[-1]))
    current_lag = data.draw(st.integers(min_value=allowed_lag + 1, max_value=allowed_lag + 9))
    now = timestamps[-1] / 1000 + data.draw(st.floats(min_value=-30, max_value=1300))
    complete = completeness(len(commits) + empty_slots, len(commits))

    got = evaluate_partition(
        (None,) * empty_slots + commits, broker_offsets, current_lag, now, allowed_lag, minimum_complete
    )

    if complete < minimum_complete:
        # Not judged: OK, and the reason names both percentages.
        percents = (int(complete * 100), int(minimum_complete * 100))
        assert (got.status, got.reason) == (Status.OK, Reason(Rule.INCOMPLETE, percents))
        return
    rule = reference_rule(
        offsets, timestamps, lags, broker_offsets, current_lag, math.floor(now), allowed_lag
    )
    figures = EXPLAIN[rule](
        rule, offsets, timestamps, lags, broker_offsets, current_lag, allowed_lag, 1.0, 0.0
    )
    assert (got.status, got.reason) == (RULE_STATUS[rule], figures)


def test_the_generated_windows_reach_every_rule_of_a_lagging_partition() -> None:
    """A fixed example of each rule, through both implementations: the reference still gives each one, and the
    fused rules' rare paths (a rewind recovered or not, an unknown lag beside a zero) are each taken."""
    t = [T_MS + 60_000 * i for i in range(4)]
    now_s = t[-1] // 1000 + 10
    cases: list[tuple[list[int], list[int], tuple[int, ...], Rule]] = [
        ([1, 2, 3, 4], [1, 2, 3, 4], (), Rule.LAG_NOT_DECREASING),
        ([1, 2, 3, 4], [1, 3, 2, 4], (), Rule.LAG_DECREASED),
        ([5, 5, 5, 5], [1, 1, 1, 1], (), Rule.STALLED),
        ([5, 6, 2, 3], [1, 1, 1, 1], (), Rule.REWOUND),
        ([5, 6, 2, 7], [1, 1, 1, 1], (), Rule.LAG_NOT_DECREASING),
        ([1, 2, 3, 4], [1, 0, 2, 3], (), Rule.LAG_ZERO_IN_WINDOW),
        ([1, 2, 3, 4], [1, -1, 2, 3], (), Rule.LAGS_UNKNOWN_IN_WINDOW),
        ([1, 2, 3, 4], [-1, 0, 2, 3], (), Rule.LAG_ZERO_IN_WINDOW),
    ]
    for offsets, lags, broker_offsets, rule in cases:
        for implementation in (reference_rule, partition_rule):
            assert implementation(offsets, t, lags, broker_offsets, 9, now_s, 0) is rule, (offsets, lags)
    stopped_at = t[-1] // 1000 + 181
    assert partition_rule([1, 2, 3, 4], t, [1, 2, 3, 4], (5,), 9, stopped_at, 0) is Rule.STOPPED
    assert partition_rule([1, 2, 3, 4], t, [1, 2, 3, 4], (4,), 9, stopped_at, 0) is Rule.LAG_NOT_DECREASING
    assert partition_rule([1, 2, 3, 4], t, [1, 2, 3, 4], (), 4, stopped_at, 4) is Rule.CAUGHT_UP
