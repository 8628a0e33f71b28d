"""Lag in seconds: HEAD history, interpolation, the exact-read decision and the cache.

Times are seconds since the epoch around T, which is exact in binary floating point; brackets of 3 records
over 8 s put the estimates on whole seconds (T + 2, T + 4, T + 6), so the figures are compared exactly.
"""

from __future__ import annotations

import math
from bisect import bisect_right

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.core.exact_answers import (
    Appended,
    BelowLogStart,
    ExactCache,
    NothingBefore,
    PartitionOffset,
    Untimed,
)
from exporter.core.head_history import HeadHistory, Policy, interpolate
from exporter.core.timelag import METHODS, REASONS, SOURCE_CODES, LagSeconds, TimeLag, lag_seconds

T = 1_700_000_000.0
POLICY = Policy()


def _history(*points: tuple[int, float], policy: Policy = POLICY) -> HeadHistory:
    history = HeadHistory(policy)
    for offset, time_s in points:
        history.append(offset, time_s)
    return history


# ------------------------------------------------------------------------------------------------------------
# Vocabulary and policy


def test_every_source_has_a_distinct_code_and_figures_are_below_10() -> None:
    assert set(SOURCE_CODES) == set(METHODS) | set(REASONS)
    assert len(set(SOURCE_CODES.values())) == len(SOURCE_CODES)
    assert [SOURCE_CODES[m] for m in METHODS] == [1, 2, 3]
    assert all(SOURCE_CODES[r] >= 10 for r in REASONS)


def test_policy_defaults_are_those_for_a_10_s_refresh() -> None:
    assert Policy() == Policy.for_refresh(10.0)
    assert Policy.for_refresh(10.0) == Policy(
        span_s=3600.0, max_points=363, max_bracket_s=30.0, verify_after_s=60.0
    )
    assert Policy.for_refresh(45.0, span_s=7200.0) == Policy(
        span_s=7200.0, max_points=163, max_bracket_s=135.0, verify_after_s=90.0
    )


@pytest.mark.parametrize(
    "kwargs",
    [{"span_s": 0.0}, {"max_bracket_s": 0.0}, {"verify_after_s": -1.0}, {"max_points": 1}],
)
def test_policy_rejects_bounds_that_cannot_work(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        Policy(**kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------------------
# HEAD history


def test_distinct_offsets_are_kept_in_order() -> None:
    history = _history((100, T), (103, T + 8), (110, T + 16))
    assert history.points() == ((100, T), (103, T + 8), (110, T + 16))
    assert (len(history), history.head, history.reached_head_at) == (3, 110, T + 16)


def test_a_flat_run_keeps_its_first_and_last_times() -> None:
    history = _history((90, T - 10), (100, T), (100, T + 10), (100, T + 20), (100, T + 30))
    assert history.points() == ((90, T - 10), (100, T), (100, T + 30))
    assert history.reached_head_at == T

    history.append(104, T + 40)
    assert history.points() == ((90, T - 10), (100, T), (100, T + 30), (104, T + 40))
    assert history.reached_head_at == T + 40


def test_empty_history() -> None:
    history = HeadHistory(POLICY)
    assert (len(history), history.head, history.reached_head_at, history.points()) == (0, None, None, ())
    assert interpolate(history, 0) is None


def test_offset_going_back_restarts_the_history() -> None:
    history = _history((100, T), (110, T + 10))
    assert history.append(5, T + 20) is True
    assert history.points() == ((5, T + 20),)
    assert history.append(8, T + 30) is False


def test_small_clock_step_back_is_taken_as_the_newest_time() -> None:
    history = _history((100, T), (110, T + 10))
    assert history.append(120, T + 9.5) is False
    assert history.points() == ((100, T), (110, T + 10), (120, T + 10))


def test_large_clock_step_back_restarts_the_history_without_voiding_exact_answers() -> None:
    history = _history((100, T), (110, T + 10))
    assert history.append(120, T + 5) is False
    assert history.points() == ((120, T + 5),)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_observation_time_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        HeadHistory(POLICY).append(1, bad)


def test_span_keeps_the_newest_point_at_or_before_the_cutoff() -> None:
    policy = Policy(span_s=100.0, max_points=1000)
    history = _history(*((10 * i, T + 10 * i) for i in range(21)), policy=policy)
    assert history.points() == tuple((10 * i, T + 10 * i) for i in range(10, 21))


def test_span_keeps_the_start_of_an_idle_run() -> None:
    history = _history((0, T), (100, T + 10), (100, T + 20), (100, T + 7200))
    # The log reached 100 at T + 10: that still bounds when the record at 99 was appended.
    assert history.points() == ((100, T + 10), (100, T + 7200))


def test_max_points_keeps_the_newest() -> None:
    policy = Policy(span_s=1e9, max_points=5)
    history = _history(*((i, T + i) for i in range(12)), policy=policy)
    assert history.points() == tuple((i, T + i) for i in range(7, 12))


# ------------------------------------------------------------------------------------------------------------
# Interpolation


def test_interpolation_inside_a_bracket() -> None:
    history = _history((100, T), (103, T + 8))
    assert [interpolate(history, c) for c in (100, 101, 102)] == [T + 2, T + 4, T + 6]


def test_a_single_record_bracket_gives_its_midpoint() -> None:
    assert interpolate(_history((100, T), (101, T + 10)), 100) == T + 5


@pytest.mark.parametrize("offset", [0, 99, 103, 500])
def test_offsets_outside_the_history_are_not_extrapolated(offset: int) -> None:
    assert interpolate(_history((100, T), (103, T + 8)), offset) is None


def test_interpolation_across_a_flat_run_uses_its_last_time_below_and_first_time_above() -> None:
    history = _history((97, T - 8), (100, T), (100, T + 50), (103, T + 58))
    assert interpolate(history, 99) == T - 2  # in (T - 8, T]: the log reached 100 at T
    assert [interpolate(history, c) for c in (100, 101, 102)] == [T + 52, T + 54, T + 56]


def test_traffic_starting_inside_a_bracket_is_packed_against_its_end() -> None:
    # Idle until T + 8, then 12 records in (T + 16, T + 24]: the 3 records of (T + 8, T + 16] came at that
    # rate, 1.5 per second, so in the last 2 s.
    history = _history((100, T), (100, T + 8), (103, T + 16), (115, T + 24))
    assert [interpolate(history, c) for c in (100, 101, 102)] == [T + 14.5, T + 15, T + 15.5]


def test_traffic_stopping_inside_a_bracket_is_packed_against_its_start() -> None:
    history = _history((88, T), (100, T + 8), (103, T + 16), (103, T + 24))
    assert [interpolate(history, c) for c in (100, 101, 102)] == [T + 8.5, T + 9, T + 9.5]


@pytest.mark.parametrize(
    "points",
    [
        [(88, T), (100, T + 8), (103, T + 16), (115, T + 24)],  # a dip: both neighbours busier
        [(100, T), (100, T + 8), (103, T + 16), (103, T + 24)],  # a spike: both neighbours quieter
        [(97, T), (100, T + 8), (103, T + 16), (106, T + 24)],  # steady
        [(97, T), (100, T + 8), (103, T + 16), (115, T + 24)],  # steady, then busier
    ],
)
def test_without_a_start_or_stop_the_records_are_spread_over_the_bracket(
    points: list[tuple[int, float]],
) -> None:
    history = _history(*points)
    assert [interpolate(history, c) for c in (100, 101, 102)] == [T + 10, T + 12, T + 14]


def test_a_missing_neighbour_does_not_prevent_packing() -> None:
    assert interpolate(_history((100, T + 8), (103, T + 16), (115, T + 24)), 100) == T + 14.5
    assert interpolate(_history((88, T), (100, T + 8), (103, T + 16)), 102) == T + 9.5


def test_brackets_wider_than_max_bracket_are_not_interpolated() -> None:
    policy = Policy(max_bracket_s=8.0)
    assert interpolate(_history((100, T), (103, T + 8), policy=policy), 100) == T + 2
    assert interpolate(_history((100, T), (103, T + 8.5), policy=policy), 100) is None


def test_a_bracket_of_zero_width_gives_its_time() -> None:
    assert interpolate(_history((100, T), (110, T)), 105) == T


# ------------------------------------------------------------------------------------------------------------
# The decision


def test_unknown_head() -> None:
    assert lag_seconds(5, None, _history((10, T)), T) == LagSeconds(None, "head_unknown")


@pytest.mark.parametrize("committed", [120, 121])
def test_caught_up_is_exactly_zero(committed: int) -> None:
    assert lag_seconds(committed, 120, None, T) == LagSeconds(0.0, "caught_up")


def test_interpolated_lag() -> None:
    history = _history((100, T), (103, T + 8))
    assert lag_seconds(101, 103, history, T + 30) == LagSeconds(26.0, "interpolated")


def test_a_clock_behind_the_history_gives_zero_not_a_negative_lag() -> None:
    history = _history((100, T), (103, T + 8))
    assert lag_seconds(102, 103, history, T) == LagSeconds(0.0, "interpolated")


@pytest.mark.parametrize(
    ("history", "committed"),
    [
        (None, 5),
        (_history((100, T), (103, T + 8)), 99),  # older than the history
        (_history((100, T), (103, T + 31)), 101),  # in a gap wider than max_bracket_s
    ],
)
def test_what_interpolation_cannot_answer_asks_for_an_exact_read(
    history: HeadHistory | None, committed: int
) -> None:
    assert lag_seconds(committed, 103, history, T + 40) == LagSeconds(None, "pending_exact_read", committed)
    assert lag_seconds(committed, 103, history, T + 40, exact_reads=False) == LagSeconds(None, "no_history")


def test_exact_answer_beats_interpolation() -> None:
    history = _history((100, T), (103, T + 8))
    assert lag_seconds(101, 103, history, T + 30, Appended(T + 7)) == LagSeconds(23.0, "exact")


def test_exact_timestamp_is_clamped_into_what_the_history_proves() -> None:
    history = _history((100, T), (103, T + 8))
    # A create time after the log had passed the offset, or before the previous observation.
    assert lag_seconds(101, 103, history, T + 30, Appended(T + 20)) == LagSeconds(22.0, "exact")
    assert lag_seconds(101, 103, history, T + 30, Appended(T - 100)) == LagSeconds(30.0, "exact")
    # Older than the history: only the upper bound T applies.
    assert lag_seconds(50, 103, history, T + 30, Appended(T - 100)) == LagSeconds(130.0, "exact")
    assert lag_seconds(50, 103, history, T + 30, Appended(T + 5)) == LagSeconds(30.0, "exact")
    assert lag_seconds(50, 103, None, T + 30, Appended(T + 5)) == LagSeconds(25.0, "exact")


def test_exact_timestamp_must_be_finite() -> None:
    with pytest.raises(ValueError, match="finite"):
        Appended(-math.inf)


def test_nothing_left_to_read_is_zero() -> None:
    # A read_committed consumer resting on the commit marker of the last transaction (Burrow #570).
    history = _history((100, T), (103, T + 8), (103, T + 3600))
    assert lag_seconds(102, 103, history, T + 3600, NothingBefore(103)) == LagSeconds(0.0, "exact")


def test_records_after_a_nothing_before_answer_are_interpolated_from_its_end() -> None:
    history = _history((100, T), (103, T + 8), (106, T + 16))
    # [101, 103) held no data record; the consumer's next one is at 103 or later, appended at about T + 10.
    assert lag_seconds(101, 106, history, T + 30, NothingBefore(103)) == LagSeconds(20.0, "interpolated")


def test_deleted_and_untimed_records_have_no_figure() -> None:
    history = _history((100, T), (103, T + 8))
    assert lag_seconds(101, 103, history, T + 30, BelowLogStart(102)) == LagSeconds(None, "below_log_start")
    assert lag_seconds(101, 103, history, T + 30, Untimed()) == LagSeconds(None, "no_timestamp")


def test_a_lag_on_a_log_that_stopped_growing_is_confirmed_by_a_read() -> None:
    history = _history((100, T), (103, T + 8), (103, T + 67))
    assert lag_seconds(101, 103, history, T + 67) == LagSeconds(63.0, "interpolated")
    history.append(103, T + 68)
    assert lag_seconds(101, 103, history, T + 68) == LagSeconds(64.0, "interpolated", 101)
    assert lag_seconds(101, 103, history, T + 68, exact_reads=False) == LagSeconds(64.0, "interpolated")


# ------------------------------------------------------------------------------------------------------------
# Exact cache


def test_cache_drops_the_least_recently_used() -> None:
    cache = ExactCache(max_size=2)
    cache.put(("a", 0, 1), Appended(T))
    cache.put(("a", 0, 2), Untimed())
    assert cache.get(("a", 0, 1)) == Appended(T)
    cache.put(("a", 0, 3), BelowLogStart(10))
    assert (len(cache), cache.get(("a", 0, 2)), cache.get(("a", 0, 1))) == (2, None, Appended(T))


def test_cache_discards_a_partition_or_a_topic() -> None:
    cache = ExactCache()
    for key in [("a", 0, 1), ("a", 1, 1), ("b", 0, 1)]:
        cache.put(key, Untimed())
    cache.discard("a", 1)
    assert [cache.get(k) is not None for k in [("a", 0, 1), ("a", 1, 1), ("b", 0, 1)]] == [True, False, True]
    cache.discard("a")
    assert [cache.get(k) is not None for k in [("a", 0, 1), ("b", 0, 1)]] == [False, True]


def test_cache_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ExactCache(0)


# ------------------------------------------------------------------------------------------------------------
# TimeLag: one cluster's histories, answers and reads


def _cluster(**kwargs: int) -> TimeLag:
    lag = TimeLag(POLICY, **kwargs)  # type: ignore[arg-type]
    lag.observe("t", 0, 100, T)
    lag.observe("t", 0, 103, T + 8)
    return lag


def test_a_read_is_asked_once_and_its_answer_is_used() -> None:
    lag = _cluster()
    assert lag.lag("t", 0, 50, 103, T + 30) == LagSeconds(None, "pending_exact_read", 50)
    assert lag.lag("t", 0, 50, 103, T + 31).read == 50
    assert lag.take_reads(10) == [PartitionOffset("t", 0, 50)]
    assert lag.lag("t", 0, 50, 103, T + 32).source == "pending_exact_read"
    assert (lag.pending_reads, lag.take_reads(10)) == (0, [])  # in flight: not asked again

    lag.answer(PartitionOffset("t", 0, 50), Appended(T - 60))
    assert lag.lag("t", 0, 50, 103, T + 40) == LagSeconds(100.0, "exact")
    assert lag.pending_reads == 0


def test_a_failed_read_is_asked_again() -> None:
    lag = _cluster()
    lag.lag("t", 0, 50, 103, T + 30)
    (read,) = lag.take_reads(1)
    lag.answer(read, None)
    assert len(lag.cache) == 0
    lag.lag("t", 0, 50, 103, T + 31)
    assert lag.take_reads(1) == [read]


def test_interpolated_and_caught_up_partitions_ask_for_nothing() -> None:
    lag = _cluster()
    assert lag.lag("t", 0, 101, 103, T + 30) == LagSeconds(26.0, "interpolated")
    assert lag.lag("t", 0, 103, 103, T + 30) == LagSeconds(0.0, "caught_up")
    assert lag.lag("u", 0, 1, None, T + 30) == LagSeconds(None, "head_unknown")
    assert lag.pending_reads == 0


def test_reads_are_taken_most_recently_wanted_first_and_bounded() -> None:
    lag = _cluster(max_pending=2)
    for committed in (10, 20, 30):
        lag.lag("t", 0, committed, 103, T + 30)
    assert lag.take_reads(5) == [PartitionOffset("t", 0, 30), PartitionOffset("t", 0, 20)]


@given(
    st.lists(st.integers(0, 12), max_size=60),
    st.lists(st.integers(0, 12), max_size=8),
    st.lists(st.integers(0, 12), max_size=5),
    st.integers(1, 6),
)
def test_wanting_a_round_of_reads_ends_as_wanting_each_in_turn(
    wanted: list[int], queued: list[int], in_flight: list[int], max_pending: int
) -> None:
    """`want` queues only the newest `max_pending` distinct reads (a round at 1M group-partitions asks for a
    million); the queue it leaves is the one queueing every read in turn leaves."""
    bulk, one_by_one = TimeLag(POLICY, max_pending=max_pending), TimeLag(POLICY, max_pending=max_pending)
    for lag in (bulk, one_by_one):
        lag.want([PartitionOffset("t", 0, offset) for offset in in_flight])
        lag.take_reads(len(in_flight))
        lag.want([PartitionOffset("t", 0, offset) for offset in queued])
    reads = [PartitionOffset("t", offset % 2, offset) for offset in wanted]
    bulk.want(reads)
    for read in reads:
        one_by_one.want([read])
    assert bulk.take_reads(100) == one_by_one.take_reads(100)


def test_wanting_stops_at_the_newest_max_pending_distinct_reads() -> None:
    lag = TimeLag(POLICY, max_pending=2)
    lag.want([PartitionOffset("t", 0, 1), PartitionOffset("t", 0, 2), PartitionOffset("t", 0, 3)])
    lag.want([PartitionOffset("t", 0, 4), PartitionOffset("t", 0, 5), PartitionOffset("t", 0, 5)])
    assert lag.take_reads(5) == [PartitionOffset("t", 0, 5), PartitionOffset("t", 0, 4)]


def test_a_topic_reset_voids_answers_and_reads_in_flight() -> None:
    lag = _cluster()
    lag.cache.put(("t", 0, 101), Appended(T))
    lag.lag("t", 0, 50, 103, T + 30)
    (read,) = lag.take_reads(1)
    lag.observe("t", 0, 3, T + 40)  # re-created
    lag.answer(read, Appended(T - 60))  # from the old log: ignored
    assert len(lag.cache) == 0
    assert lag.histories[("t", 0)].points() == ((3, T + 40),)


def test_exact_reads_off() -> None:
    lag = _cluster(exact_reads=False)
    assert lag.lag("t", 0, 50, 103, T + 30) == LagSeconds(None, "no_history")
    assert lag.pending_reads == 0


def test_forget_topic() -> None:
    lag = _cluster()
    lag.observe("u", 0, 7, T)
    lag.cache.put(("t", 0, 1), Untimed())
    lag.lag("t", 0, 50, 103, T + 30)
    lag.forget_topic("t")
    assert (list(lag.histories), len(lag.cache), lag.pending_reads) == ([("u", 0)], 0, 0)


def test_restored_histories_answer_at_once() -> None:
    history = _history((100, T), (103, T + 8))
    lag = TimeLag(POLICY, histories={("t", 0): history})
    assert lag.lag("t", 0, 101, 103, T + 30) == LagSeconds(26.0, "interpolated")


# ------------------------------------------------------------------------------------------------------------
# Properties

POLICIES = st.sampled_from(
    [
        Policy(span_s=1e6, max_points=10_000, max_bracket_s=1e6),
        Policy(span_s=50.0, max_points=6, max_bracket_s=8.0, verify_after_s=5.0),
    ]
)


@st.composite
def observed_logs(draw: st.DrawFn) -> tuple[list[float], HeadHistory]:
    """True append times of a log, and the HEAD history of observations of it."""
    appends = sorted(draw(st.lists(st.floats(0, 100), max_size=40)))
    samples = sorted(draw(st.lists(st.floats(0, 100), min_size=1, max_size=30)))
    history = HeadHistory(draw(POLICIES))
    for sample in samples:
        history.append(bisect_right(appends, sample), T + sample)
    return [T + a for a in appends], history


@given(observed_logs())
def test_an_interpolated_time_is_within_its_bracket_of_the_truth(
    log: tuple[list[float], HeadHistory],
) -> None:
    appends, history = log
    times = [t for _, t in history.points()]
    for offset, truth in enumerate(appends):
        estimate = interpolate(history, offset)
        if estimate is not None:
            after = bisect_right([o for o, _ in history.points()], offset)
            low, high = times[after - 1], times[after]
            assert low <= estimate <= high
            assert low <= truth <= high
            assert abs(estimate - truth) <= min(high - low, history.policy.max_bracket_s)


observations = st.lists(
    st.tuples(st.integers(0, 60), st.floats(-20, 200, allow_nan=False)), min_size=1, max_size=40
)


@given(observations, st.integers(-5, 70), st.floats(-50, 500), POLICIES)
def test_lag_is_finite_non_negative_monotonic_and_bounded_by_the_history(
    points: list[tuple[int, float]], head: int, now: float, policy: Policy
) -> None:
    history = HeadHistory(policy)
    for offset, time_s in points:
        history.append(offset, T + time_s)
    oldest = history.points()[0][1]
    previous = math.inf
    for committed in range(-2, head + 3):
        result = lag_seconds(committed, head, history, T + now)
        assert (result.seconds is None) == (result.source in REASONS)
        if committed >= head:
            assert result == LagSeconds(0.0, "caught_up")
        if result.seconds is not None:
            assert math.isfinite(result.seconds)
            assert 0.0 <= result.seconds <= previous
            previous = result.seconds
        if result.source == "interpolated":
            assert result.seconds is not None
            assert result.seconds <= max(0.0, T + now - oldest)
        elif result.source == "pending_exact_read":
            assert result.read == committed


@given(observations, st.integers(0, 70), st.floats(-1e12, 1e12), st.floats(-50, 500))
def test_an_exact_answer_is_never_negative_or_infinite(
    points: list[tuple[int, float]], committed: int, timestamp: float, now: float
) -> None:
    history = HeadHistory(POLICY)
    for offset, time_s in points:
        history.append(offset, T + time_s)
    result = lag_seconds(committed, committed + 1, history, T + now, Appended(timestamp))
    assert result.source == "exact"
    assert result.seconds is not None
    assert math.isfinite(result.seconds)
    assert result.seconds >= 0.0


@given(st.integers(-5, 250), st.none() | st.integers(-5, 250), st.booleans(), st.booleans())
def test_figure_is_lag_seconds_with_the_cluster_s_history_and_cache(
    committed: int, head: int | None, answered: bool, exact_reads: bool
) -> None:
    # `figure` answers a caught-up partition without looking anything up: the same as lag_seconds would.
    timelag = TimeLag(Policy.for_refresh(10.0), exact_reads=exact_reads)
    for i in range(10):
        timelag.observe("t", 0, 20 * i, T + 10 * i)
    if answered:
        timelag.cache.put(("t", 0, committed), Appended(T + 5))
    history = timelag.histories[("t", 0)]
    answer = timelag.cache.get(("t", 0, committed))
    expected = lag_seconds(committed, head, history, T + 100, answer, exact_reads=exact_reads)
    assert timelag.figure("t", 0, committed, head, T + 100) == expected
