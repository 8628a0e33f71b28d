"""A group's figures as columns (`core.figures`): the same values as the per-partition objects they replace,
read back one partition at a time."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from exporter.core.figures import GroupHeadroom, GroupLagSeconds
from exporter.core.retention import Headroom
from exporter.core.timelag import METHODS, REASONS, LagSeconds

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
    assert columns.seconds == tuple(None if f is None else f.seconds for f in figures)
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
    assert columns.seconds == tuple(None if h is None else h.seconds for h in rooms)
    assert columns == tuple(rooms) == columns
    assert GroupHeadroom.of(columns) is columns


def test_columns_differ_where_one_partition_does() -> None:
    lags = [LagSeconds(0.0, "caught_up"), LagSeconds(12.5, "interpolated", 40)]
    assert GroupLagSeconds.of(lags) != GroupLagSeconds.of([lags[0], LagSeconds(12.5, "interpolated")])
    assert GroupLagSeconds.of(lags) != GroupLagSeconds.of([lags[0], LagSeconds(12.5, "exact", 40)])
    assert GroupLagSeconds.of(lags) != GroupLagSeconds.of([lags[0], None])
    assert GroupLagSeconds.of(lags) != [lags[0]]
    rooms = [Headroom(0, 10, 5.0), None]
    assert GroupHeadroom.of(rooms) != GroupHeadroom.of([Headroom(0, 10, None), None])
    assert GroupHeadroom.of(rooms) != GroupHeadroom.of([Headroom(1, 10, 5.0), None])
    assert GroupHeadroom.of(rooms) != GroupHeadroom.of([Headroom(0, 11, 5.0), None])
    assert GroupHeadroom.of(rooms) != "not figures"
