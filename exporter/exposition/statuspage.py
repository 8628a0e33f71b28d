"""The status page: HTML of the operator's overview (`/`) and of one group (`/group/<cluster>/<group>`). Pure.

Everything is rendered here, on the server, from the evaluator's statuses and the storage's snapshots,
and every name (cluster, group, topic, owner, client id: user input all) goes through `html.escape`. The
page's script (static/page.js) only swaps in fragments this module rendered, so it never builds markup from
data. Nothing is fetched from anywhere but lagwatch itself: no fonts, no libraries, no CDN; the charts are
inline SVG.

The overview is filtered, sorted worst first and cut into pages of `PAGE_SIZE` groups before anything is
rendered, so its cost grows with the number of groups only through the filter and the sort
(bench/bench_statuspage.py).
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from exporter.core.model import Commit, GroupSnapshot, GroupStatus, PartitionStatus, Status
from exporter.core.reasons import detail, group_text
from exporter.core.retention import Headroom
from exporter.core.timelag import LagSeconds
from exporter.exposition.table import duration, percent, worst_first

__all__ = [
    "GROUP_STATUSES",
    "PAGE_SIZE",
    "ClusterState",
    "OverviewQuery",
    "group_page",
    "not_found_page",
    "overview_page",
]

PAGE_SIZE = 100
"""Groups per page of the overview."""
GROUP_STATUSES = (Status.ERR, Status.WARN, Status.OK, Status.NOTFOUND)
"""The statuses a group can have, worst first: the overview's status filters."""
REFRESH_S = 5
"""How often the page's script fetches a fresh copy of what is shown."""

# Status is never told by colour alone: every badge has its symbol and its name.
_SYMBOL = {
    Status.NOTFOUND: "?",
    Status.OK: "\u2714",  # heavy check mark
    Status.WARN: "\u25b2",  # triangle
    Status.ERR: "\u2716",  # heavy multiplication x
    Status.STOP: "\u25a0",  # square
    Status.STALL: "\u2016",  # double vertical line
    Status.REWIND: "\u21ba",  # anticlockwise arrow
}
_DASH = "\u2013"


@dataclass(frozen=True, slots=True)
class ClusterState:
    """One Kafka cluster as the page shows it."""

    name: str
    groups: Sequence[GroupStatus]
    up: bool = True
    since_ms: int | None = None
    """When `up` last changed; None before the first HEAD round ended."""
    last_error: str = ""
    head_refresh_ms: int | None = None
    caught_up: bool = True
    lag_seconds: Mapping[str, Sequence[LagSeconds | None]] = field(default_factory=dict)
    """Per group, aligned with its status's partitions; a group missing here has no lag in seconds."""
    headroom: Mapping[str, Sequence[Headroom | None]] = field(default_factory=dict)
    """Retention headroom per group, aligned like `lag_seconds`."""


@dataclass(frozen=True, slots=True)
class OverviewQuery:
    """The overview's filter box, status filters and page number (the page's URL query)."""

    text: str = ""
    statuses: frozenset[Status] = frozenset(GROUP_STATUSES)
    page: int = 1

    @classmethod
    def parse(cls, query: Mapping[str, str] | Iterable[tuple[str, str]]) -> OverviewQuery:
        """From the URL query; unknown statuses and bad page numbers are ignored, never an error."""
        items = list(query.items()) if isinstance(query, Mapping) else list(query)
        text = next((v for k, v in items if k == "q"), "").strip()
        names = {v.upper() for k, v in items if k == "status"}
        statuses = frozenset(s for s in GROUP_STATUSES if s.name in names) or frozenset(GROUP_STATUSES)
        page_text = next((v for k, v in items if k == "page"), "1")
        page = int(page_text) if page_text.isdigit() and int(page_text) > 0 else 1
        return cls(text, statuses, page)

    def url(self, page: int) -> str:
        """The query string of this filter at `page` (`?` included)."""
        params: list[tuple[str, str]] = []
        if self.text:
            params.append(("q", self.text))
        if self.statuses != frozenset(GROUP_STATUSES):
            params += [("status", s.name) for s in GROUP_STATUSES if s in self.statuses]
        if page > 1:
            params.append(("page", str(page)))
        return "?" + urlencode(params) if params else "?"

    def matches(self, cluster: str, group: GroupStatus) -> bool:
        if group.status not in self.statuses:
            return False
        needle = self.text.casefold()
        return not needle or needle in group.group.casefold() or needle in cluster.casefold()


# ------------------------------------------------------------------------------------------------------------
# The overview


def overview_page(
    clusters: Sequence[ClusterState], query: OverviewQuery, now_ms: int, version: str, fragment: bool = False
) -> str:
    """The whole overview, or with `fragment` only the part the script swaps in (the contents of `<main>`)."""
    body = _overview_main(clusters, query, now_ms)
    if fragment:
        return body
    return _document(
        "lagwatch: consumer groups",
        root="",
        version=version,
        now_ms=now_ms,
        before_main=_filter_form(query),
        main=body,
    )


def _overview_main(clusters: Sequence[ClusterState], query: OverviewQuery, now_ms: int) -> str:
    by_name = {c.name: c for c in clusters}
    matching = [(c.name, g) for c in clusters for g in c.groups]
    every = len(matching)
    shown = worst_first(g for name, g in matching if query.matches(name, g))
    pages = max(1, -(-len(shown) // PAGE_SIZE))
    page = min(query.page, pages)
    rows = shown[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    parts = [
        _clusters_table(clusters, now_ms),
        '<section aria-labelledby="groups-title">',
        '<h2 id="groups-title">Consumer groups</h2>',
        _counts([g for _, g in matching]),
        f'<p class="summary" role="status">{_matches(len(shown), every, query)}</p>',
    ]
    if rows:
        parts.append(_groups_table(rows, by_name, now_ms))
        parts.append(_pager(query, page, pages))
    parts.append("</section>")
    return "\n".join(parts)


def _matches(shown: int, every: int, query: OverviewQuery) -> str:
    if shown == every:
        return f"{_count(every)} group{'' if every == 1 else 's'}, worst first."
    return f"{_count(shown)} of {_count(every)} groups match the filter, worst first."


def _filter_form(query: OverviewQuery) -> str:
    boxes = "".join(
        f'<label class="check"><input type="checkbox" name="status" value="{s.name}"'
        f"{' checked' if s in query.statuses else ''}> {_badge(s)}</label>"
        for s in GROUP_STATUSES
    )
    return (
        '<form id="filters" class="filters" role="search" method="get" action="">'
        '<label for="q">Filter groups</label> '
        f'<input id="q" name="q" type="search" value="{_e(query.text)}" autocomplete="off" '
        'placeholder="group or cluster name" aria-describedby="q-help">'
        '<span id="q-help" class="help">Part of a group or cluster name, any case.</span>'
        f"<fieldset><legend>Show statuses</legend>{boxes}</fieldset>"
        '<button type="submit">Apply</button>'
        "</form>"
    )


def _clusters_table(clusters: Sequence[ClusterState], now_ms: int) -> str:
    rows = []
    for c in clusters:
        counts = _status_counts(c.groups)
        if c.since_ms is None:
            connection = "reachable" if c.up else "not reached yet"
        elif c.up:
            connection = f"reachable since {_when(c.since_ms, now_ms)}"
        else:
            connection = f"unreachable since {_when(c.since_ms, now_ms)}"
            if c.last_error:
                connection += f": {_e(c.last_error)}"
        state = Status.OK if c.up else Status.ERR
        reading = "" if c.caught_up else '<br><span class="note">still reading the committed offsets</span>'
        rows.append(
            "<tr>"
            f'<th scope="row">{_e(c.name)}</th>'
            f'<td><span class="badge s-{state.name.lower()}">'
            f'<span aria-hidden="true">{_SYMBOL[state]}</span> {"up" if c.up else "down"}</span> '
            f"{connection}{reading}</td>"
            f"<td>{_when(c.head_refresh_ms, now_ms) if c.head_refresh_ms is not None else 'never'}</td>"
            f'<td class="num">{_count(len(c.groups))}</td>'
            + "".join(f'<td class="num">{_count(counts[s])}</td>' for s in GROUP_STATUSES[:3])
            + "</tr>"
        )
    head = "".join(f'<th scope="col" class="num">{s.name}</th>' for s in GROUP_STATUSES[:3])
    return (
        '<section aria-labelledby="clusters-title"><h2 id="clusters-title">Kafka clusters</h2>'
        '<table class="clusters"><thead><tr><th scope="col">Cluster</th><th scope="col">Connection</th>'
        '<th scope="col">Last HEAD refresh</th><th scope="col" class="num">Groups</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _status_counts(groups: Iterable[GroupStatus]) -> dict[Status, int]:
    counts = dict.fromkeys(GROUP_STATUSES, 0)
    for g in groups:
        counts[g.status] += 1
    return counts


def _counts(groups: Iterable[GroupStatus]) -> str:
    counts = _status_counts(groups)
    items = "".join(
        f'<li class="count">{_badge(s)} <strong>{_count(counts[s])}</strong></li>' for s in GROUP_STATUSES
    )
    return f'<ul class="counts" aria-label="Groups by status">{items}</ul>'


def _groups_table(rows: Sequence[GroupStatus], clusters: Mapping[str, ClusterState], now_ms: int) -> str:
    body = []
    for g in rows:
        cluster = clusters.get(g.cluster)
        seconds = None if cluster is None else cluster.lag_seconds.get(g.group)
        href = f"group/{quote(g.cluster, safe='')}/{quote(g.group, safe='')}"
        body.append(
            f'<tr class="r-{g.status.name.lower()}">'
            f"<td>{_badge(g.status)}</td>"
            f'<th scope="row"><a href="{_e(href)}">{_e(g.group)}</a></th>'
            f"<td>{_e(g.cluster)}</td>"
            f'<td class="reason">{_group_reason(g)}</td>'
            f'<td class="num">{_count(g.totallag)}</td>'
            f'<td class="num">{_max_lag(g.maxlag)}</td>'
            f'<td class="num">{_seconds(_max_seconds(seconds))}</td>'
            f'<td class="num">{_count(g.partition_count)}</td>'
            f"<td>{_owners(g.partitions)}</td>"
            "</tr>"
        )
    return (
        '<div class="scroll"><table class="groups"><caption class="visually-hidden">Consumer groups, worst '
        "first</caption><thead><tr>"
        '<th scope="col">Status</th><th scope="col">Group</th><th scope="col">Cluster</th>'
        '<th scope="col">Reason</th><th scope="col" class="num">Total lag</th>'
        '<th scope="col" class="num">Max lag (partition)</th><th scope="col" class="num">Lag (s)</th>'
        '<th scope="col" class="num">Partitions</th><th scope="col">Owners</th>'
        f"</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _pager(query: OverviewQuery, page: int, pages: int) -> str:
    if pages == 1:
        return ""
    links = []
    if page > 1:
        links.append(f'<a href="{_e(query.url(page - 1))}" rel="prev">Previous page</a>')
    links.append(f"<span>Page {page:,} of {pages:,}</span>")
    if page < pages:
        links.append(f'<a href="{_e(query.url(page + 1))}" rel="next">Next page</a>')
    return f'<nav class="pager" aria-label="Pages">{" ".join(links)}</nav>'


def _group_reason(g: GroupStatus) -> str:
    return _DASH if g.reason is None else _e(group_text(g.reason))


def _max_lag(p: PartitionStatus | None) -> str:
    if p is None or p.current_lag is None:
        return _DASH
    return f'{_count(p.current_lag)} <span class="where">({_e(p.topic)}/{p.partition})</span>'


def _max_seconds(lags: Sequence[LagSeconds | None] | None) -> float | None:
    if not lags:
        return None
    known = [lag.seconds for lag in lags if lag is not None and lag.seconds is not None]
    return max(known) if known else None


def _owners(partitions: Sequence[PartitionStatus]) -> str:
    owners = sorted({p.owner for p in partitions if p.owner})
    if not owners:
        return '<span class="note">none</span>'
    shown = ", ".join(_e(o) for o in owners[:2])
    more = len(owners) - 2
    return shown + (f" and {more:,} more" if more > 0 else "")


# ------------------------------------------------------------------------------------------------------------
# One group


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
            f'<th scope="row">{_e(p.topic)}</th>'
            f'<td class="num">{p.partition}</td>'
            f"<td>{_badge(p.status)}</td>"
            f'<td class="reason">{_DASH if p.reason is None else _e(detail(p.reason))}</td>'
            f'<td class="num">{_optional(p.current_lag)}</td>'
            f'<td class="num">{_seconds(None if lag_s is None else lag_s.seconds)}</td>'
            f'<td class="num">{_DASH if p.end is None else _count(p.end.offset)}</td>'
            f'<td class="num">{_retention(room)}</td>'
            f"<td>{_e(p.owner) or _DASH}</td>"
            f"<td>{_e(p.client_id) or _DASH}</td>"
            f"<td>{_chart(windows.get((p.topic, p.partition), []), i)}</td>"
            "</tr>"
        )
    main = "\n".join(
        [
            f'<h2 class="group-title">{_badge(status.status)} <span class="name">{_e(status.group)}</span> '
            f'<span class="note">in cluster {_e(status.cluster)}</span></h2>',
            f'<p class="group-reason">{_group_reason(status)}</p>',
            '<dl class="figures">'
            f"<div><dt>Total lag</dt><dd>{_count(status.totallag)}</dd></div>"
            f"<div><dt>Max lag</dt><dd>{_max_lag(status.maxlag)}</dd></div>"
            f"<div><dt>Lag (s)</dt><dd>{_seconds(_max_seconds(seconds))}</dd></div>"
            f"<div><dt>Partitions</dt><dd>{_count(status.partition_count)}</dd></div>"
            f"<div><dt>Complete</dt><dd>{percent(status.complete)}</dd></div>"
            "</dl>",
            '<p class="legend" aria-hidden="true"><svg width="28" height="10"><line class="offset" x1="0" '
            'y1="5" x2="28" y2="5"/></svg> committed offset <svg width="28" height="10"><line class="lag" '
            'x1="0" y1="5" x2="28" y2="5"/></svg> lag at each commit of the window</p>',
            '<div class="scroll"><table class="partitions"><caption class="visually-hidden">Partitions of '
            f"{_e(status.group)}</caption><thead><tr>"
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
    return _document(
        f"lagwatch: {status.group}",
        root="../../",
        version=version,
        now_ms=now_ms,
        before_main='<p><a href="../../">All consumer groups</a></p>',
        main=main,
    )


def not_found_page(cluster: str, group: str, version: str, now_ms: int) -> str:
    main = (
        f"<h2>No consumer group {_e(group)} in cluster {_e(cluster)}</h2>"
        "<p>lagwatch does not know it: it never committed, it expired, or it was deleted.</p>"
    )
    return _document(
        "lagwatch: group not found",
        root="../../",
        version=version,
        now_ms=now_ms,
        before_main='<p><a href="../../">All consumer groups</a></p>',
        main=main,
        refresh=False,
    )


_CHART_W = 240
_CHART_H = 56
_PAD = 4


def _chart(window: Sequence[Commit], index: int) -> str:
    """The window as two lines over commit time: the committed offset (solid, circles; scaled between its
    lowest and highest) and the lag at each commit (dashed, squares; scaled from 0), so that a STALL is a flat
    offset under a lag and a WARN a rising lag; the title says the same in words."""
    if not window:
        return '<span class="note">no commits</span>'
    first_ts = window[0].timestamp_ms
    span = max(c.timestamp_ms for c in window) - min(c.timestamp_ms for c in window)

    def x(i: int, commit: Commit) -> float:
        if span <= 0 or len(window) == 1:
            return _PAD + (_CHART_W - 2 * _PAD) * (i / max(1, len(window) - 1))
        return _PAD + (_CHART_W - 2 * _PAD) * (commit.timestamp_ms - first_ts) / span

    def scaled(values: Sequence[int], low: int | None = None) -> list[float]:
        low = min(values) if low is None else low
        high = max(values)
        if high == low:
            return [_CHART_H / 2 for _ in values]
        return [_PAD + (_CHART_H - 2 * _PAD) * (1 - (v - low) / (high - low)) for v in values]

    offsets = scaled([c.offset for c in window])
    xs = [x(i, c) for i, c in enumerate(window)]
    known = [(xs[i], c.lag) for i, c in enumerate(window) if c.lag is not None]
    # Lag from 0, so that its height means something; offsets between their own extremes.
    lag_ys = scaled([lag for _, lag in known], low=0) if known else []
    offset_line = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, offsets, strict=True))
    lag_line = " ".join(f"{a:.1f},{b:.1f}" for (a, _), b in zip(known, lag_ys, strict=True))
    marks = "".join(
        f'<circle class="offset" cx="{a:.1f}" cy="{b:.1f}" r="2"/>' for a, b in zip(xs, offsets, strict=True)
    )
    marks += "".join(
        f'<rect class="lag" x="{a - 2:.1f}" y="{b - 2:.1f}" width="4" height="4"/>'
        for (a, _), b in zip(known, lag_ys, strict=True)
    )
    title = _chart_title(window)
    label_id = f"chart-{index}"
    return (
        f'<svg class="chart" width="{_CHART_W}" height="{_CHART_H}" viewBox="0 0 {_CHART_W} {_CHART_H}" '
        f'role="img" aria-labelledby="{label_id}"><title id="{label_id}">{_e(title)}</title>'
        f'<polyline class="offset" points="{offset_line}"/>'
        + (f'<polyline class="lag" points="{lag_line}"/>' if lag_line else "")
        + marks
        + "</svg>"
    )


def _chart_title(window: Sequence[Commit]) -> str:
    first, last = window[0], window[-1]
    lags = [c.lag for c in window if c.lag is not None]
    lag_words = (
        f"lag {_count(lags[0])} to {_count(lags[-1])} (highest {_count(max(lags))})"
        if lags
        else "lag unknown"
    )
    return (
        f"{len(window)} commits from {_clock(first.timestamp_ms)} to {_clock(last.timestamp_ms)}: committed "
        f"offset {_count(first.offset)} to {_count(last.offset)}, {lag_words}"
    )


# ------------------------------------------------------------------------------------------------------------
# The document around either page


def _document(
    title: str,
    *,
    root: str,
    version: str,
    now_ms: int,
    before_main: str,
    main: str,
    refresh: bool = True,
) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="color-scheme" content="light dark">',
            f"<title>{_e(title)}</title>",
            f'<link rel="stylesheet" href="{root}static/page.css">',
            f'<script src="{root}static/page.js" defer></script>',
            "</head>",
            f'<body data-refresh="{REFRESH_S if refresh else 0}">',
            '<a class="skip" href="#content">Skip to the content</a>',
            '<header class="top"><h1><a href="' + (root or "./") + '">lagwatch</a></h1>'
            '<nav aria-label="lagwatch"><ul>'
            f'<li><a href="{root}metrics">Metrics</a></li>'
            f'<li><a href="{root}v3/kafka">Burrow API</a></li>'
            f'<li><a href="{root}runbooks">Runbooks</a></li>'
            f'<li><a href="{root}-/ready">Readiness</a></li>'
            "</ul></nav></header>",
            before_main,
            f'<main id="content" tabindex="-1">{main}</main>',
            f'<footer>lagwatch {_e(version)} · shown <time id="updated" datetime="{_iso(now_ms)}">'
            f"{_clock(now_ms)}</time>"
            + (
                f' · updates every {REFRESH_S} s <span id="refresh-state" role="status"></span>'
                if refresh
                else ""
            )
            + "</footer>",
            "</body>",
            "</html>",
            "",
        ]
    )


# ------------------------------------------------------------------------------------------------------------
# Small words


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _badge(status: Status) -> str:
    return (
        f'<span class="badge s-{status.name.lower()}"><span aria-hidden="true">{_SYMBOL[status]}</span> '
        f"{status.name}</span>"
    )


def _count(value: int) -> str:
    return f"{value:,}"


def _optional(value: int | None) -> str:
    return _DASH if value is None else _count(value)


def _retention(h: Headroom | None) -> str:
    """Lost messages (as a failure, in words), else the headroom in time and the margin in messages."""
    if h is None:
        return _DASH
    if h.lost:
        return f'<span class="lost">{_count(h.lost)} lost</span>'
    margin = f"{_count(h.margin)} msgs"
    return margin if h.seconds is None else f"{duration(h.seconds)}, {margin}"


def _seconds(value: float | None) -> str:
    if value is None:
        return _DASH
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def _clock(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms // 1000))


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def _when(ms: int | None, now_ms: int) -> str:
    if ms is None:
        return "never"
    ago = max(0, (now_ms - ms) // 1000)
    return f'<time datetime="{_iso(ms)}">{_clock(ms)}</time> ({_ago(ago)})'


def _ago(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"
