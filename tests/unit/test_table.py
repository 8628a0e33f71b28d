"""The `lagwatch status` tables: exact text, worst-first order, colour that never shifts a column."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from exporter.core.model import (
    NO_PARTITIONS,
    Commit,
    GroupStatus,
    Partitions,
    PartitionStatus,
    Reason,
    Rule,
    Status,
)
from exporter.core.reasons import group_reason
from exporter.core.retention import Headroom
from exporter.exposition.table import duration, groups_table, partitions_table, worst_first

_ANSI = re.compile(r"\033\[[0-9;]*m")


def partition(
    topic: str, number: int, status: Status, lag: int | None, end: int | None = None, owner: str = ""
) -> PartitionStatus:
    return PartitionStatus(
        topic=topic,
        partition=number,
        owner=owner,
        client_id="consumer-1" if owner else "",
        status=status,
        start=None,
        end=None if end is None else Commit(offset=end, order=1, timestamp_ms=0, lag=0),
        current_lag=lag,
        complete=1.0,
    )


def group(
    name: str, status: Status, totallag: int, parts: tuple[PartitionStatus, ...] = (), complete: float = 1.0
) -> GroupStatus:
    maxlag = max(parts, key=lambda p: p.current_lag or 0) if parts else None
    return GroupStatus("c1", name, status, complete, Partitions.of(parts), len(parts), maxlag, totallag)


PAYMENTS = group(
    "payments",
    Status.ERR,
    2921,
    (
        partition("orders", 1, Status.OK, 0, 77),
        partition("orders", 0, Status.STOP, 2921, 1400, owner="/10.0.0.5"),
    ),
    complete=0.5,
)
GROUPS = [
    group("audit", Status.OK, 12, (partition("events", 0, Status.OK, 12, 5),)),
    group(
        "search", Status.WARN, 1_234_567, (partition("docs", 3, Status.WARN, 1_234_567, 9),), complete=0.999
    ),
    PAYMENTS,
    group("idle", Status.OK, 0),
]


def test_groups_table_is_worst_first_and_aligned() -> None:
    assert groups_table(GROUPS) == (
        "CLUSTER  GROUP     STATUS  WORST-PARTITION  TOTAL-LAG  MAX-LAG-PARTITION   COMPLETE\n"
        "c1       payments  ERR     STOP orders/0        2,921  orders/0 (2,921)         50%\n"
        "c1       search    WARN    WARN docs/3      1,234,567  docs/3 (1,234,567)       99%\n"
        "c1       audit     OK      -                       12  events/0 (12)           100%\n"
        "c1       idle      OK      -                        0  -                       100%\n"
    )


def test_worst_partition_is_the_most_severe_then_the_most_lagged_and_counts_the_others() -> None:
    parts = (
        partition("a", 0, Status.WARN, 900),
        partition("b", 1, Status.STALL, 10),
        partition("b", 2, Status.STALL, 40),
        partition("c", 3, Status.STOP, 5000),
        partition("d", 4, Status.OK, 7000),
    )
    header, row = groups_table([group("g", Status.ERR, 12950, parts)]).splitlines()
    start, end = header.index("WORST-PARTITION"), header.index("TOTAL-LAG")
    assert row[start:end].strip() == "STALL b/2 (+3)"


def test_partitions_table_lists_one_group() -> None:
    assert partitions_table(PAYMENTS) == (
        "c1/payments: ERR, total lag 2,921, 2 partitions, 50% complete\n"
        "TOPIC   PARTITION  STATUS    LAG  COMMITTED-OFFSET  OWNER      CLIENT-ID   REASON\n"
        "orders          0  STOP    2,921              1400  /10.0.0.5  consumer-1  -\n"
        "orders          1  OK          0                77  -          -           -\n"
    )


def test_partitions_table_shows_the_reasons_of_the_group_and_its_partitions() -> None:
    stall = partition("orders", 0, Status.STALL, 340, 5120)._replace(
        reason=Reason(Rule.STALLED, (5120, 10, 340))
    )
    ok = partition("orders", 1, Status.OK, 0, 77)._replace(reason=Reason(Rule.CAUGHT_UP, (0, 0)))
    payments = replace(PAYMENTS, partitions=Partitions.of((stall, ok)))
    payments = replace(payments, reason=group_reason(Status.ERR, payments.partitions))
    assert partitions_table(payments) == (
        "c1/payments: ERR, total lag 2,921, 2 partitions, 50% complete\n"
        "ERR: 1 of 2 partitions STALL (orders/0); orders/0: offset 5,120 committed 10 times while 340 "
        "messages wait\n"
        "TOPIC   PARTITION  STATUS  LAG  COMMITTED-OFFSET  OWNER  CLIENT-ID  REASON\n"
        "orders          0  STALL   340              5120  -      -          offset 5,120 committed 10 times "
        "while 340 messages wait\n"
        "orders          1  OK        0                77  -      -          lag is 0\n"
    )


def test_unknown_lag_and_offset_show_a_dash() -> None:
    text = partitions_table(group("new", Status.OK, 0, (partition("t", 0, Status.OK, None),)))
    assert text == (
        "c1/new: OK, total lag 0, 1 partition, 100% complete\n"
        "TOPIC  PARTITION  STATUS  LAG  COMMITTED-OFFSET  OWNER  CLIENT-ID  REASON\n"
        "t              0  OK        -                 -  -      -          -\n"
    )


def test_colour_wraps_only_the_status() -> None:
    coloured = groups_table(GROUPS, color=True)
    assert "\033[31mERR   \033[0m" in coloured
    assert "\033[33mWARN  \033[0m" in coloured
    assert "\033[32mOK    \033[0m" in coloured
    assert _ANSI.sub("", coloured) == groups_table(GROUPS)
    assert partitions_table(PAYMENTS, color=True).startswith("c1/payments: \033[31mERR\033[0m, total lag")


def test_percent_never_rounds_to_a_false_0_or_100() -> None:
    lines = groups_table(
        [group("a", Status.OK, 0, complete=0.001), group("b", Status.OK, 0, complete=0.9951)]
    )
    assert [line.split()[-1] for line in lines.splitlines()[1:]] == ["1%", "99%"]


_STATUSES = st.sampled_from([Status.NOTFOUND, Status.OK, Status.WARN, Status.ERR])
_GROUPS = st.lists(
    st.builds(
        GroupStatus,
        cluster=st.sampled_from(["c1", "prod-eu"]),
        group=st.text(st.characters(codec="ascii", categories=["L", "N", "P"]), min_size=1, max_size=30),
        status=_STATUSES,
        complete=st.floats(0, 1),
        partitions=st.just(NO_PARTITIONS),
        partition_count=st.integers(0, 100),
        maxlag=st.none(),
        totallag=st.integers(0, 10**12),
    ),
    max_size=25,
)
_RANK = {Status.ERR: 0, Status.WARN: 1, Status.OK: 2, Status.NOTFOUND: 3}


@given(_GROUPS)
def test_worst_first_orders_by_status_then_lag(groups: list[GroupStatus]) -> None:
    ordered = worst_first(groups)
    assert sorted(ordered, key=id) == sorted(groups, key=id)
    for before, after in itertools.pairwise(ordered):
        assert _RANK[before.status] <= _RANK[after.status]
        if before.status == after.status:
            assert before.totallag >= after.totallag


@given(_GROUPS)
def test_every_column_starts_at_the_same_place_with_or_without_colour(groups: list[GroupStatus]) -> None:
    plain = groups_table(groups)
    assert _ANSI.sub("", groups_table(groups, color=True)) == plain
    lines = plain.splitlines()
    assert len(lines) == len(groups) + 1
    header = lines[0]
    # Left-aligned columns start where their header starts, after the two-space gap.
    for name in ("GROUP", "STATUS"):
        start = header.index(name)
        for line in lines[1:]:
            assert line[start - 2 : start] == "  "
            assert line[start] != " "


def test_retention_columns_only_when_some_partition_has_a_headroom() -> None:
    g = group(
        "g",
        Status.OK,
        5,
        (
            partition("t", 0, Status.OK, 5, 100),
            partition("t", 1, Status.OK, 0, 200),
            partition("u", 0, Status.OK, None),
        ),
    )
    assert "HEADROOM" not in partitions_table(g)
    assert "HEADROOM" not in partitions_table(g, headroom={})
    table = partitions_table(
        g, headroom={("t", 0): Headroom(0, 1_500, 90_061.0), ("t", 1): Headroom(3, 0, None)}
    ).splitlines()
    assert table[1].split()[5:8] == ["LOST", "MARGIN", "HEADROOM"]
    assert table[2].split()[5:8] == ["0", "1,500", "1d1h"]
    assert table[3].split()[5:8] == ["3", "0", "-"]
    assert table[4].split()[4:7] == ["-", "-", "-"]


def test_durations_are_two_units_at_most() -> None:
    assert [duration(s) for s in (0, 59.9, 60, 3599, 3600, 3660, 86_400, 90_000, 604_799)] == [
        "0s",
        "59s",
        "1m",
        "59m",
        "1h",
        "1h1m",
        "1d",
        "1d1h",
        "6d23h",
    ]
