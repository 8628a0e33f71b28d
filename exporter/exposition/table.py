"""Plain-text tables of evaluated groups for `lagwatch status`: read at a glance, worst first. Pure.

Columns are padded before colouring, so the ANSI escapes of a coloured status never shift the alignment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from exporter.core.model import GroupStatus, PartitionStatus, Status
from exporter.core.reasons import detail, group_text
from exporter.core.retention import Headroom

__all__ = [
    "GROUP_COLUMNS",
    "PARTITION_COLUMNS",
    "groups_table",
    "partitions_table",
    "percent",
    "worst_first",
]

GROUP_COLUMNS = (
    "CLUSTER",
    "GROUP",
    "STATUS",
    "WORST-PARTITION",
    "TOTAL-LAG",
    "MAX-LAG-PARTITION",
    "COMPLETE",
)
PARTITION_COLUMNS = (
    "TOPIC",
    "PARTITION",
    "STATUS",
    "LAG",
    "COMMITTED-OFFSET",
    "OWNER",
    "CLIENT-ID",
    "REASON",
)
RETENTION_COLUMNS = ("LOST", "MARGIN", "HEADROOM")
"""Inserted before OWNER when some partition has a retention headroom (lagwatch's Burrow API has one)."""

_RED, _YELLOW, _GREEN, _DIM, _RESET = "\033[31m", "\033[33m", "\033[32m", "\033[2m", "\033[0m"
_COLOURS = {
    Status.NOTFOUND: _DIM,
    Status.OK: _GREEN,
    Status.WARN: _YELLOW,
    Status.ERR: _RED,
    Status.STOP: _RED,
    Status.STALL: _RED,
    Status.REWIND: _RED,
}
# Group severity for sorting: ERR, then WARN, then OK, and groups lagwatch could not find last.
_SEVERITY = {Status.ERR: 0, Status.WARN: 1, Status.OK: 2, Status.NOTFOUND: 3}
_RIGHT = frozenset(
    {"TOTAL-LAG", "PARTITION", "LAG", "COMMITTED-OFFSET", "COMPLETE", "LOST", "MARGIN", "HEADROOM"}
)
_GAP = "  "
_NONE = "-"


def worst_first(groups: Iterable[GroupStatus]) -> list[GroupStatus]:
    """ERR, WARN, OK, NOTFOUND; within a status the greatest total lag first, then by cluster and group."""
    return sorted(groups, key=lambda g: (_SEVERITY.get(g.status, 0), -g.totallag, g.cluster, g.group))


def groups_table(groups: Iterable[GroupStatus], *, color: bool = False) -> str:
    """One line per group, worst first, under a header line; every line ends with a newline."""
    rows = [
        (
            (
                g.cluster,
                g.group,
                g.status.name,
                _worst_partition(g.partitions),
                _count(g.totallag),
                _max_lag(g.maxlag),
                percent(g.complete),
            ),
            g.status,
        )
        for g in worst_first(groups)
    ]
    return _render(GROUP_COLUMNS, rows, color)


def partitions_table(
    group: GroupStatus,
    *,
    color: bool = False,
    headroom: Mapping[tuple[str, int], Headroom] | None = None,
) -> str:
    """A summary line for the group, its reason when known, then one line per partition in topic, partition
    order with the partition's reason (without the status, which has its own column). With `headroom` (by
    topic and partition), three more columns: messages lost to retention, the margin left in messages, and
    the headroom in time."""
    status = _paint(group.status.name, group.status, color)
    summary = (
        f"{group.cluster}/{group.group}: {status}, total lag {_count(group.totallag)}, "
        f"{group.partition_count} partition{'' if group.partition_count == 1 else 's'}, "
        f"{percent(group.complete)} complete\n"
    )
    if group.reason is not None:
        summary += f"{group_text(group.reason)}\n"
    rows = [
        (
            (
                p.topic,
                str(p.partition),
                p.status.name,
                _optional(p.current_lag),
                _NONE if p.end is None else str(p.end.offset),
                p.owner or _NONE,
                p.client_id or _NONE,
                _NONE if p.reason is None else detail(p.reason),
            ),
            p.status,
        )
        for p in sorted(group.partitions, key=lambda p: (p.topic, p.partition))
    ]
    if not headroom:
        return summary + _render(PARTITION_COLUMNS, rows, color)
    at = PARTITION_COLUMNS.index("OWNER")
    columns = (*PARTITION_COLUMNS[:at], *RETENTION_COLUMNS, *PARTITION_COLUMNS[at:])
    widened = [
        ((*cells[:at], *_retention_cells(headroom.get((cells[0], int(cells[1])))), *cells[at:]), status)
        for cells, status in rows
    ]
    return summary + _render(columns, widened, color)


def _retention_cells(h: Headroom | None) -> tuple[str, str, str]:
    if h is None:
        return _NONE, _NONE, _NONE
    return _count(h.lost), _count(h.margin), _NONE if h.seconds is None else duration(h.seconds)


def duration(seconds: float) -> str:
    """A duration to the minute at most two units wide: `45s`, `12m`, `3h20m`, `6d23h`."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, hours, days = whole // 60 % 60, whole // 3600 % 24, whole // 86400
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m"


def _render(columns: Sequence[str], rows: Sequence[tuple[Sequence[str], Status]], color: bool) -> str:
    widths = [max([len(name), *(len(cells[i]) for cells, _ in rows)]) for i, name in enumerate(columns)]
    status_column = columns.index("STATUS")
    lines = [_line(columns, columns, widths)]
    lines += [
        _line(columns, cells, widths, (status_column, status) if color else None) for cells, status in rows
    ]
    return "".join(line.rstrip() + "\n" for line in lines)


def _line(
    columns: Sequence[str],
    cells: Sequence[str],
    widths: Sequence[int],
    paint: tuple[int, Status] | None = None,
) -> str:
    parts = []
    for i, (name, cell, width) in enumerate(zip(columns, cells, widths, strict=True)):
        text = cell.rjust(width) if name in _RIGHT else cell.ljust(width)
        if paint is not None and i == paint[0]:
            text = _paint(text, paint[1], True)
        parts.append(text)
    return _GAP.join(parts)


def _paint(text: str, status: Status, color: bool) -> str:
    return f"{_COLOURS[status]}{text}{_RESET}" if color else text


def _worst_partition(partitions: Iterable[PartitionStatus]) -> str:
    """What is wrong, without `--group`: the most severe partition (Burrow's order, REWIND > STALL > STOP >
    WARN; the greater lag between equals) and how many others are not OK."""
    bad = [p for p in partitions if p.status > Status.OK]
    if not bad:
        return _NONE
    worst = max(bad, key=lambda p: (p.status, p.current_lag or 0, -p.partition))
    others = f" (+{len(bad) - 1})" if len(bad) > 1 else ""
    return f"{worst.status.name} {worst.topic}/{worst.partition}{others}"


def _max_lag(p: PartitionStatus | None) -> str:
    if p is None:
        return _NONE
    return f"{p.topic}/{p.partition} ({_optional(p.current_lag)})"


def _optional(lag: int | None) -> str:
    return _NONE if lag is None else _count(lag)


def _count(value: int) -> str:
    return f"{value:,}"


def percent(ratio: float) -> str:
    """Whole percents, never rounding a partial value up to 100% or down to 0%."""
    whole = round(ratio * 100)
    if whole == 100 and ratio < 1:
        whole = 99
    elif whole == 0 and ratio > 0:
        whole = 1
    return f"{whole}%"
