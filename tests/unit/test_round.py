"""One evaluation round as a pure function: statuses, lag in seconds, retention headroom and the exact reads
wanted, from the real storage, evaluation cache and TimeLag, returned as one frozen result."""

from __future__ import annotations

import dataclasses
import gc
import itertools

import pytest

from exporter.core.evaluator import EvaluationCache
from exporter.core.exact_answers import PartitionOffset
from exporter.core.head_history import Policy
from exporter.core.model import OffsetCommit, Status
from exporter.core.retention import Headroom, TopicRetention, headroom
from exporter.core.round import GroupFigures, Round, evaluation_round, group_figures
from exporter.core.storage import Storage
from exporter.core.timelag import LagSeconds, TimeLag

T = 1_700_000_000.0
MS = int(T * 1000)
WEEK = TopicRetention(delete=True, compact=False, retention_ms=604_800_000, retention_bytes=None)


def _storage(groups: int = 3) -> Storage:
    storage = Storage("c", intervals=2)
    storage.set_topics({"t": 2}, MS)
    storage.set_start_offset("t", 0, 10)
    storage.set_topic_retention({"t": WEEK})
    storage.add_head_offset("t", 0, 100, MS)
    order = itertools.count(1)
    for index in range(groups):
        storage.apply(OffsetCommit(f"g{index}", "t", 0, 40 + index, MS), next(order), MS)
    return storage


def _timelag() -> TimeLag:
    timelag = TimeLag(Policy())
    timelag.observe("t", 0, 0, T - 20)
    timelag.observe("t", 0, 100, T - 10)
    return timelag


def _run(steps: object) -> tuple[int, Round]:
    yields = 0
    while True:
        try:
            next(steps)  # type: ignore[call-overload]
        except StopIteration as done:
            return yields, done.value
        yields += 1


def test_a_round_returns_statuses_and_the_figures_of_exactly_those_statuses() -> None:
    storage, timelag, cache = _storage(), _timelag(), EvaluationCache(cluster="c")
    ticks = iter([5.0, 5.25])
    yields, result = _run(
        evaluation_round(cache, storage, timelag, T, T + 1, timer=lambda: next(ticks), batch=2)
    )
    # Three groups in batches of two: one yield in the statuses pass, one in the figures pass.
    assert yields == 2
    assert (result.cluster, result.as_of, result.clock, result.evaluated, result.seconds) == (
        "c",
        T,
        T + 1,
        3,
        0.25,
    )
    assert dict(result.statuses) == dict(cache.statuses())
    g1 = result.lag_seconds["g1"]
    # Offset 41 of 100 appended in (T - 20, T - 10]: the 42nd of 100 records, at 42/101 of the bracket.
    assert g1 == (LagSeconds(pytest.approx(21 - 10 * 42 / 101), "interpolated"), None)
    assert result.headroom["g1"] == (Headroom(0, 31, pytest.approx(604_800 - g1[0].seconds)), None)  # type: ignore[union-attr]
    assert result.reads == ()
    # Nothing was queued: the round reads TimeLag, the shell hands it the reads.
    assert timelag.pending_reads == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.statuses = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        result.statuses["x"] = result.statuses["g0"]  # type: ignore[index]


def test_the_reads_wanted_are_handed_back_in_the_order_wanted() -> None:
    storage, cache = _storage(), EvaluationCache(cluster="c")
    timelag = TimeLag(Policy())  # no history: every lagging partition needs an exact read
    _, result = _run(evaluation_round(cache, storage, timelag, T, T, timer=lambda: 0.0))
    assert result.reads == tuple(PartitionOffset("t", 0, 40 + index) for index in range(3))
    assert result.lag_seconds["g0"][0] == LagSeconds(None, "pending_exact_read", 40)
    assert timelag.pending_reads == 0
    timelag.want(result.reads)
    assert timelag.take_reads(1) == [PartitionOffset("t", 0, 42)]


def test_without_lag_in_seconds_there_are_no_lag_figures_but_headroom() -> None:
    _, result = _run(
        evaluation_round(EvaluationCache(cluster="c"), _storage(), None, T, T, timer=lambda: 0.0)
    )
    assert dict(result.lag_seconds) == {}
    assert result.headroom["g0"] == (Headroom(0, 30, None), None)


def test_the_empty_round_answers_notfound_and_publishes_nothing() -> None:
    empty = Round("c")
    assert (dict(empty.statuses), empty.as_of, empty.clock, empty.seconds) == ({}, None, None, None)
    found = empty.status("g")
    assert (found.cluster, found.group, found.status) == ("c", "g", Status.NOTFOUND)


def test_with_group_replaces_or_removes_one_group_and_leaves_the_round_alone() -> None:
    storage, timelag, cache = _storage(), _timelag(), EvaluationCache(cluster="c")
    _, result = _run(evaluation_round(cache, storage, timelag, T, T, timer=lambda: 0.0))
    storage.delete_group("g1")
    storage.apply(OffsetCommit("g2", "t", 1, 3, MS), 99, MS)
    status = cache.refresh_group(storage, "g2", T)
    assert status is not None
    figures = group_figures(status, storage, timelag, T)
    # Partition 1 has no HEAD and no log start yet.
    first_lag, first_room = result.lag_seconds["g2"][0], result.headroom["g2"][0]
    assert figures == GroupFigures((first_lag, LagSeconds(None, "head_unknown")), (first_room, None), ())
    replaced = result.with_group("g2", status, figures).with_group("g1", None, None)
    assert sorted(replaced.statuses) == ["g0", "g2"]
    assert replaced.statuses["g2"] is status
    assert replaced.lag_seconds["g2"] == figures.lag_seconds
    assert sorted(replaced.headroom) == ["g0", "g2"]
    assert sorted(result.statuses) == ["g0", "g1", "g2"]
    assert result.statuses["g2"] is not status


def _figures(result: Round) -> tuple[object, ...]:
    return dict(result.statuses), dict(result.lag_seconds), dict(result.headroom), result.reads


def test_a_round_shares_with_the_round_before_only_the_figures_that_did_not_move() -> None:
    storage, timelag, cache = _storage(), _timelag(), EvaluationCache(cluster="c")
    storage.apply(OffsetCommit("g0", "t", 0, 100, MS), 50, MS)  # g0 is caught up, g1 and g2 lag
    _, first = _run(evaluation_round(cache, storage, timelag, T, T, timer=lambda: 0.0))
    _, second = _run(evaluation_round(cache, storage, timelag, T, T + 10, timer=lambda: 0.0, previous=first))
    _, fresh = _run(
        evaluation_round(EvaluationCache(cluster="c"), storage, timelag, T, T + 10, timer=lambda: 0.0)
    )
    assert _figures(second) == _figures(fresh)
    # Caught up: lag in seconds is the shared constant, the headroom did not move, nor did the tuples.
    assert second.lag_seconds["g0"] is first.lag_seconds["g0"]
    assert second.headroom["g0"] is first.headroom["g0"]
    assert second.headroom["g0"] == (Headroom(0, 90, 604_800.0), None)
    # Lagging: ten seconds later the lag is ten seconds more and the headroom ten seconds less, new objects.
    was_lag, was_room = first.lag_seconds["g1"][0], first.headroom["g1"][0]
    lag, room = second.lag_seconds["g1"][0], second.headroom["g1"][0]
    assert was_lag is not None
    assert lag is not None
    assert was_room is not None
    assert room is not None
    assert lag.seconds == pytest.approx(was_lag.seconds + 10)  # type: ignore[operator]
    assert room.seconds == pytest.approx(was_room.seconds - 10)  # type: ignore[operator]
    assert room is not was_room


def test_a_headroom_that_moved_while_its_lag_did_not_is_a_new_one() -> None:
    storage, timelag, cache = _storage(), _timelag(), EvaluationCache(cluster="c")
    storage.apply(OffsetCommit("g0", "t", 0, 100, MS), 50, MS)
    _, first = _run(evaluation_round(cache, storage, timelag, T, T, timer=lambda: 0.0))
    storage.set_start_offset("t", 0, 25)  # retention deleted records: the margin shrinks, the lag stays 0
    _, second = _run(evaluation_round(cache, storage, timelag, T, T, timer=lambda: 0.0, previous=first))
    assert second.lag_seconds["g0"] is first.lag_seconds["g0"]
    assert second.headroom["g0"] == (Headroom(0, 75, 604_800.0), None)
    assert first.headroom["g0"] == (Headroom(0, 90, 604_800.0), None)


def test_a_figure_without_seconds_is_shared_until_it_changes() -> None:
    storage, cache = _storage(), EvaluationCache(cluster="c")
    timelag = TimeLag(Policy())  # no history: every lagging partition waits for an exact read
    _, first = _run(evaluation_round(cache, storage, timelag, T, T, timer=lambda: 0.0))
    _, second = _run(evaluation_round(cache, storage, timelag, T, T + 10, timer=lambda: 0.0, previous=first))
    assert second.lag_seconds["g1"] is first.lag_seconds["g1"]
    assert second.headroom["g1"] is first.headroom["g1"]
    assert second.lag_seconds["g1"][0] == LagSeconds(None, "pending_exact_read", 41)
    storage.apply(OffsetCommit("g1", "t", 0, 45, MS + 1), 60, MS + 1)  # the group moved on: another read
    _, third = _run(evaluation_round(cache, storage, timelag, T, T + 20, timer=lambda: 0.0, previous=second))
    assert third.lag_seconds["g1"][0] == LagSeconds(None, "pending_exact_read", 45)
    assert third.headroom["g1"][0] == Headroom(0, 35, None)
    assert second.headroom["g1"][0] == Headroom(0, 31, None)
    assert third.lag_seconds["g0"] is first.lag_seconds["g0"]


def test_a_rounds_figures_are_each_partitions_figures_as_columns() -> None:
    storage, timelag, cache = _storage(), _timelag(), EvaluationCache(cluster="c")
    storage.apply(OffsetCommit("g0", "t", 0, 100, MS), 50, MS)
    storage.set_start_offset("t", 0, 41)  # g0 is caught up, g1 is at the log start, g2 past it
    _, result = _run(evaluation_round(cache, storage, timelag, T, T + 5, timer=lambda: 0.0))
    for group, status in result.statuses.items():
        lags = [
            None
            if p.end is None
            else timelag.figure(
                p.topic, p.partition, p.end.offset, p.end.offset + (p.current_lag or 0), T + 5
            )
            for p in status.partitions
        ]
        rooms = [
            None
            if p.end is None
            else headroom(p.end.offset, 41 if p.partition == 0 else None, WEEK, lag.seconds if lag else None)
            for p, lag in zip(status.partitions, lags, strict=True)
        ]
        assert list(result.lag_seconds[group]) == lags
        assert list(result.headroom[group]) == rooms
    assert [h[:2] for h in result.headroom["g1"] if h] == [(0, 0)]
    assert result.headroom["g0"][0] == Headroom(0, 59, 604_800.0)


def test_a_round_keeps_columns_of_plain_values_not_an_object_per_partition() -> None:
    storage, timelag, cache = _storage(groups=2), _timelag(), EvaluationCache(cluster="c")
    _, result = _run(evaluation_round(cache, storage, timelag, T, T, timer=lambda: 0.0))
    held = [
        item
        for figures in (*result.lag_seconds.values(), *result.headroom.values())
        for column in gc.get_referents(figures)
        if type(column) is tuple
        for item in column
    ]
    assert held
    assert all(type(item) in (float, int, str, type(None)) for item in held)


def test_a_round_shares_each_column_that_did_not_move() -> None:
    storage, timelag, cache = _storage(), _timelag(), EvaluationCache(cluster="c")
    _, first = _run(evaluation_round(cache, storage, timelag, T, T, timer=lambda: 0.0))
    _, second = _run(evaluation_round(cache, storage, timelag, T, T + 10, timer=lambda: 0.0, previous=first))
    lags, lags_before = second.lag_seconds["g1"], first.lag_seconds["g1"]
    rooms, rooms_before = second.headroom["g1"], first.headroom["g1"]
    # Ten seconds later the lag in seconds and the headroom in seconds moved; their sources, the reads, the
    # lost messages and the margins did not.
    assert lags is not lags_before
    assert lags.seconds != lags_before.seconds
    assert (lags.sources, lags.reads) == (("interpolated", None), (None, None))
    assert lags.sources is lags_before.sources
    assert lags.reads is lags_before.reads
    assert rooms is not rooms_before
    assert rooms.seconds != rooms_before.seconds
    assert rooms.lost is rooms_before.lost
    assert rooms.margin is rooms_before.margin
