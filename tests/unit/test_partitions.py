"""A group's partition statuses as columns (`model.Partitions`): a sequence of the `PartitionStatus`es it was
built from, read back exactly, and the columns the renderer and the round read."""

from __future__ import annotations

from array import array

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.core.model import (
    NO_PARTITIONS,
    Commit,
    Partitions,
    PartitionStatus,
    Reason,
    Rule,
    Status,
)

T_MS = 1_700_000_000_000

commits = st.builds(
    Commit,
    offset=st.integers(0, 2**62),
    order=st.integers(0, 2**40),
    timestamp_ms=st.integers(0, T_MS),
    lag=st.none() | st.integers(0, 2**40),
    observed_ms=st.integers(0, T_MS),
)
statuses = st.builds(
    PartitionStatus,
    topic=st.sampled_from(["orders", "payments", "ñ"]),
    partition=st.integers(0, 1000),
    owner=st.sampled_from(["", "/10.0.0.1"]),
    client_id=st.sampled_from(["", "consumer-1"]),
    status=st.sampled_from([Status.OK, Status.WARN, Status.STOP, Status.STALL, Status.REWIND]),
    start=st.none() | commits,
    end=st.none() | commits,
    current_lag=st.none() | st.integers(0, 2**40),
    complete=st.sampled_from([0.0, 0.1, 1.0]),
    member_id=st.sampled_from(["", "member-1"]),
    reason=st.none() | st.just(Reason(Rule.CAUGHT_UP, (0, 0))) | st.just(Reason(Rule.STALLED, (5, 10, None))),
)


@given(st.lists(statuses, max_size=12))
def test_property_the_columns_read_back_the_statuses_they_were_built_from(
    parts: list[PartitionStatus],
) -> None:
    columns = Partitions.of(parts)
    assert list(columns) == parts
    assert len(columns) == len(parts)
    assert [columns[i] for i in range(-len(parts), 0)] == parts
    assert columns[1:3] == tuple(parts[1:3])
    assert columns == Partitions.of(parts)
    assert columns.current_lags() == [p.current_lag for p in parts]
    assert columns.committed() == [None if p.end is None else p.end.offset for p in parts]
    assert columns.commit_times_ms() == [None if p.end is None else p.end.timestamp_ms for p in parts]


def test_the_columns_hold_numbers_in_arrays_and_bytes() -> None:
    start = Commit(offset=10, order=1, timestamp_ms=T_MS, lag=None, observed_ms=T_MS + 7)
    end = Commit(offset=20, order=2, timestamp_ms=T_MS + 60_000, lag=4, observed_ms=T_MS + 60_007)
    committed = PartitionStatus("t", 3, "", "", Status.WARN, start, end, 4, 1.0)
    placeholder = PartitionStatus("t", 4, "", "", Status.OK, None, None, None, 0.0)
    columns = Partitions.of([committed, placeholder])
    assert columns.statuses == bytes([Status.WARN, Status.OK])
    assert columns.present == bytes([3, 0])
    assert columns.lags == array("q", [4, -1])
    assert columns.ends == array(
        "q", [10, 1, T_MS, T_MS + 7, -1, 20, 2, T_MS + 60_000, T_MS + 60_007, 4] + [0] * 10
    )
    assert columns.numbers == (3, 4)


def test_no_partitions_is_empty_and_unhashable() -> None:
    assert list(NO_PARTITIONS) == []
    assert Partitions.of(()) == NO_PARTITIONS
    assert NO_PARTITIONS != ()
    with pytest.raises(TypeError):
        hash(NO_PARTITIONS)
