"""A group's figures as columns (`core.figures`): the same values as the per-partition objects they replace,
read back one partition at a time."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from exporter.core.figures import NO_SECONDS, GroupHeadroom, GroupLagSeconds
from exporter.core.model import Status
from exporter.core.retention import Headroom
from exporter.core.timelag import METHODS, REASONS, LagSeconds
from exporter.exposition.rows import GroupRows, PartitionRows
from tests.unit.test_metrics import _group, _partition

_SECONDS = st.none() | st.floats(min_value=0.0, max_value=1e9, allow_nan=False)
_LAGS = st.lists(
    st.none()
    | st.builds(
        LagSeconds, _SECONDS, st.sampled_from((*METHODS, *REASONS)), st.none() | st.integers(0, 2**40)
    ),
    max_size=12,
)
_ROOMS = st.lists(
    st.none() | st.builds(Headroom, st.integers(0, 2**40), st.integers(0, 2**40), _SECONDS), max_size=12
)


@given(_LAGS)
def test_lag_columns_read_back_as_the_figures_they_were_made_of(figures: list[LagSeconds | None]) -> None:
    columns = GroupLagSeconds.of(figures)
    assert list(columns) == figures
    assert [columns[i] for i in range(len(figures))] == figures
    assert list(columns[1:-1]) == figures[1:-1]
    assert len(columns) == len(figures)
    assert columns.seconds.tolist() == [
        NO_SECONDS if f is None or f.seconds is None else f.seconds for f in figures
    ]
    assert columns.sources == tuple(None if f is None else f.source for f in figures)
    assert columns.reads == tuple(None if f is None else f.read for f in figures)
    assert columns == tuple(figures) == columns
    assert columns == GroupLagSeconds.of(columns)
    assert GroupLagSeconds.of(columns) is columns


@given(_ROOMS)
def test_headroom_columns_read_back_as_the_headroom_they_were_made_of(rooms: list[Headroom | None]) -> None:
    columns = GroupHeadroom.of(rooms)
    assert list(columns) == rooms
    assert [columns[i] for i in range(len(rooms))] == rooms
    assert list(columns[::2]) == rooms[::2]
    assert len(columns) == len(rooms)
    assert columns.lost == tuple(None if h is None else h.lost for h in rooms)
    assert columns.margin == tuple(None if h is None else h.margin for h in rooms)
    assert columns.seconds.tolist() == [
        NO_SECONDS if h is None or h.seconds is None else h.seconds for h in rooms
    ]
    assert columns == tuple(rooms) == columns
    assert GroupHeadroom.of(columns) is columns


def test_columns_differ_where_one_partition_does() -> None:
    lags = [LagSeconds(0.0, "caught_up"), LagSeconds(12.5, "interpolated", 40)]
    assert GroupLagSeconds.of(lags) != GroupLagSeconds.of([lags[0], LagSeconds(12.5, "interpolated")])
    assert GroupLagSeconds.of(lags) != GroupLagSeconds.of([lags[0], LagSeconds(12.5, "exact", 40)])
    assert GroupLagSeconds.of(lags) != GroupLagSeconds.of([lags[0], LagSeconds(13.5, "interpolated", 40)])
    assert GroupLagSeconds.of(lags) == GroupLagSeconds.of([lags[0], LagSeconds(12.5, "interpolated", 40)])
    assert GroupLagSeconds.of(lags) != GroupLagSeconds.of([lags[0], None])
    assert GroupLagSeconds.of(lags) != [lags[0]]
    rooms = [Headroom(0, 10, 5.0), None]
    assert GroupHeadroom.of(rooms) != GroupHeadroom.of([Headroom(0, 10, None), None])
    assert GroupHeadroom.of(rooms) != GroupHeadroom.of([Headroom(1, 10, 5.0), None])
    assert GroupHeadroom.of(rooms) != GroupHeadroom.of([Headroom(0, 11, 5.0), None])
    assert GroupHeadroom.of(rooms) != "not figures"


def test_seconds_are_doubles_shared_with_the_round_before_where_the_same() -> None:
    lags = [(12.5, "interpolated", None), (None, "no_history", None), (0.0, "caught_up", None)]
    before = GroupLagSeconds.shared(lags, None)
    assert before.seconds.typecode == "d"
    assert before.seconds.tolist() == [12.5, NO_SECONDS, 0.0]
    # Equal doubles are the array before, though built anew; all columns equal are the figures before.
    assert GroupLagSeconds.shared([(12.5, "interpolated", None), *lags[1:]], before) is before
    moved = GroupLagSeconds.shared([(22.5, "interpolated", None), *lags[1:]], before)
    assert moved.seconds.tolist() == [22.5, NO_SECONDS, 0.0]
    assert moved.sources is before.sources
    confirmed = GroupLagSeconds.shared([(12.5, "interpolated", 40), *lags[1:]], before)
    assert confirmed.seconds is before.seconds
    assert confirmed.reads == (40, None, None)
    rooms = [(0, 10, None), (0, 10, 3600.0), (None, None, None)]
    rooms_before = GroupHeadroom.shared(rooms, None)
    assert rooms_before.seconds.tolist() == [NO_SECONDS, 3600.0, NO_SECONDS]
    assert GroupHeadroom.shared([(5, 0, 0.0), *rooms[1:]], rooms_before).seconds.tolist() == [
        0.0,
        3600.0,
        NO_SECONDS,
    ]
    assert GroupHeadroom.shared([(5, 0, None), *rooms[1:]], rooms_before).seconds is rooms_before.seconds
    # Columns without any figure (lag in seconds off, no time-based retention) are one array.
    unknown = GroupHeadroom.shared([(0, 10, None), (None, None, None)], None)
    assert unknown.seconds.tolist() == [NO_SECONDS, NO_SECONDS]
    assert GroupHeadroom.shared([(None, None, None), (4, 0, None)], None).seconds is unknown.seconds
    assert list(GroupHeadroom.shared(rooms, rooms_before)) == [
        Headroom(0, 10, None),
        Headroom(0, 10, 3600.0),
        None,
    ]


def test_the_renderer_reads_no_figure_where_the_seconds_say_none() -> None:
    group = _group("c", "g", Status.OK, [_partition("t", p) for p in range(4)])
    rows = GroupRows(kafka=False)
    lags = [
        LagSeconds(None, "no_history"),
        LagSeconds(7.5, "interpolated"),
        LagSeconds(0.0, "caught_up"),
        None,
    ]
    rooms = [Headroom(0, 10, None), Headroom(0, 10, 90.5), Headroom(3, 0, 0.0), None]
    rows.add("c", group, GroupLagSeconds.of(lags), GroupHeadroom.of(rooms))
    nothing = [LagSeconds(None, "head_unknown"), None, None, None]
    rows.add(
        "c", group, GroupLagSeconds.of(nothing), GroupHeadroom.of([Headroom(0, 1, None), None, None, None])
    )
    rows.add("c", group, None, None)
    assert rows.mx == [7.5, None, None]
    # The least headroom is 0.0 (records lost), not the column's mark of "no figure".
    assert rows.mh == [0.0, None, None]
    partitions = PartitionRows.of(rows, None)
    assert partitions.ls == [None, 7.5, 0.0, None, None, None, None, None, None, None, None, None]
    assert partitions.hs == [None, 90.5, 0.0, None, None, None, None, None, None, None, None, None]


def test_partition_rows_take_the_kept_seconds_only_where_the_figures_are_the_same() -> None:
    statuses = [_group("c", "g", Status.OK, [_partition("t", p) for p in range(2)])]
    lags = GroupLagSeconds.of([LagSeconds(7.5, "interpolated"), LagSeconds(None, "no_history")])
    rooms = GroupHeadroom.of([Headroom(0, 10, 90.5), None])

    def rows(figures: GroupLagSeconds) -> GroupRows:
        group_rows = GroupRows(kafka=False)
        for status in statuses:
            group_rows.add("c", status, figures, rooms)
        return group_rows

    kept_rows = rows(lags)
    kept = PartitionRows.of(kept_rows, None)
    # Only a status replaced: the figures are the very same objects, and so are the seconds' rows.
    same = PartitionRows.of(rows(lags), None, (kept_rows, kept))
    assert same.ls is kept.ls
    assert same.hs is kept.hs
    moved = PartitionRows.of(
        rows(GroupLagSeconds.of([LagSeconds(8.5, "interpolated"), LagSeconds(None, "no_history")])),
        None,
        (kept_rows, kept),
    )
    assert moved.ls == [8.5, None]
    assert moved.hs is kept.hs
