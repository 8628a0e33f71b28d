"""One group's page (`/group/<cluster>/<group>`): its reason and figures, each partition with its reason and
a chart of its window; and the page of a group lagwatch does not know."""

from __future__ import annotations

from exporter.core.model import GroupSnapshot, GroupStatus
from exporter.core.reasons import detail
from exporter.core.retention import Headroom
from exporter.exposition.statuspage.chart import window_chart
from exporter.exposition.statuspage.cluster_state import ClusterState
from exporter.exposition.statuspage.markup import (
    DASH,
    badge,
    count,
    document,
    escape,
    group_reason,
    max_lag,
    max_seconds,
    seconds_text,
)
from exporter.exposition.table import duration, percent

__all__ = ["group_page", "not_found_page"]


def group_page(
    cluster: ClusterState,
    status: GroupStatus,
    snapshot: GroupSnapshot | None,
    now_ms: int,
    version: str,
    fragment: bool = False,
) -> str:
    """One group: its reason and figures, and each partition with its reason and a chart of its window."""
    seconds = cluster.lag_seconds.get(status.group)
    headroom = cluster.headroom.get(status.group)
    windows = {}
    if snapshot is not None:
        windows = {
            (p.topic, p.partition): [c for c in p.window if c is not None] for p in snapshot.partitions
        }
    rows = []
    for i, p in enumerate(status.partitions):
        lag_s = seconds[i] if seconds is not None and i < len(seconds) else None
        room = headroom[i] if headroom is not None and i < len(headroom) else None
        rows.append(
            f'<tr class="r-{p.status.name.lower()}">'
            f'<th scope="row">{escape(p.topic)}</th>'
            f'<td class="num">{p.partition}</td>'
            f"<td>{badge(p.status)}</td>"
            f'<td class="reason">{DASH if p.reason is None else escape(detail(p.reason))}</td>'
            f'<td class="num">{_optional(p.current_lag)}</td>'
            f'<td class="num">{seconds_text(None if lag_s is None else lag_s.seconds)}</td>'
            f'<td class="num">{DASH if p.end is None else count(p.end.offset)}</td>'
            f'<td class="num">{_retention(room)}</td>'
            f"<td>{escape(p.owner) or DASH}</td>"
            f"<td>{escape(p.client_id) or DASH}</td>"
            f"<td>{window_chart(windows.get((p.topic, p.partition), []), i)}</td>"
            "</tr>"
        )
    main = "\n".join(
        [
            f'<h2 class="group-title">{badge(status.status)} '
            f'<span class="name">{escape(status.group)}</span> '
            f'<span class="note">in cluster {escape(status.cluster)}</span></h2>',
            f'<p class="group-reason">{group_reason(status)}</p>',
            '<dl class="figures">'
            f"<div><dt>Total lag</dt><dd>{count(status.totallag)}</dd></div>"
            f"<div><dt>Max lag</dt><dd>{max_lag(status.maxlag)}</dd></div>"
            f"<div><dt>Lag (s)</dt><dd>{seconds_text(max_seconds(seconds))}</dd></div>"
            f"<div><dt>Partitions</dt><dd>{count(status.partition_count)}</dd></div>"
            f"<div><dt>Complete</dt><dd>{percent(status.complete)}</dd></div>"
            "</dl>",
            '<p class="legend" aria-hidden="true"><svg width="28" height="10"><line class="offset" x1="0" '
            'y1="5" x2="28" y2="5"/></svg> committed offset <svg width="28" height="10"><line class="lag" '
            'x1="0" y1="5" x2="28" y2="5"/></svg> lag at each commit of the window</p>',
            '<div class="scroll"><table class="partitions"><caption class="visually-hidden">Partitions of '
            f"{escape(status.group)}</caption><thead><tr>"
            '<th scope="col">Topic</th><th scope="col" class="num">Partition</th><th scope="col">Status</th>'
            '<th scope="col">Reason</th><th scope="col" class="num">Lag</th>'
            '<th scope="col" class="num">Lag (s)</th><th scope="col" class="num">Committed offset</th>'
            '<th scope="col" class="num" title="Messages lost to retention, or the headroom left before '
            'retention deletes the oldest unread message">Retention</th>'
            '<th scope="col">Owner</th><th scope="col">Client id</th><th scope="col">Window</th>'
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>",
        ]
    )
    if fragment:
        return main
    return document(
        f"lagwatch: {status.group}",
        root="../../",
        version=version,
        now_ms=now_ms,
        before_main='<p><a href="../../">All consumer groups</a></p>',
        main=main,
    )


def not_found_page(cluster: str, group: str, version: str, now_ms: int) -> str:
    main = (
        f"<h2>No consumer group {escape(group)} in cluster {escape(cluster)}</h2>"
        "<p>lagwatch does not know it: it never committed, it expired, or it was deleted.</p>"
    )
    return document(
        "lagwatch: group not found",
        root="../../",
        version=version,
        now_ms=now_ms,
        before_main='<p><a href="../../">All consumer groups</a></p>',
        main=main,
        refresh=False,
    )


def _optional(value: int | None) -> str:
    return DASH if value is None else count(value)


def _retention(h: Headroom | None) -> str:
    """Lost messages (as a failure, in words), else the headroom in time and the margin in messages."""
    if h is None:
        return DASH
    if h.lost:
        return f'<span class="lost">{count(h.lost)} lost</span>'
    margin = f"{count(h.margin)} msgs"
    return margin if h.seconds is None else f"{duration(h.seconds)}, {margin}"
