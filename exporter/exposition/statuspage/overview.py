"""The status page's overview (`/`): the clusters, the groups by status, the filter and a page of groups.

The overview is filtered, sorted worst first and cut into pages of `PAGE_SIZE` groups before anything is
rendered, so its cost grows with the number of groups only through the filter and the sort
(bench/bench_statuspage.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from exporter.core.model import GroupStatus, Partitions, Status
from exporter.exposition.statuspage.cluster_state import ClusterState
from exporter.exposition.statuspage.markup import (
    SYMBOL,
    badge,
    count,
    document,
    escape,
    group_reason,
    max_lag,
    max_seconds,
    seconds_text,
    when,
)
from exporter.exposition.table import worst_first

__all__ = ["GROUP_STATUSES", "PAGE_SIZE", "OverviewQuery", "overview_page"]

PAGE_SIZE = 100
"""Groups per page of the overview."""
GROUP_STATUSES = (Status.ERR, Status.WARN, Status.OK, Status.NOTFOUND)
"""The statuses a group can have, worst first: the overview's status filters."""


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


def overview_page(
    clusters: Sequence[ClusterState], query: OverviewQuery, now_ms: int, version: str, fragment: bool = False
) -> str:
    """The whole overview, or with `fragment` only the part the script swaps in (the contents of `<main>`)."""
    body = _overview_main(clusters, query, now_ms)
    if fragment:
        return body
    return document(
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
        return f"{count(every)} group{'' if every == 1 else 's'}, worst first."
    return f"{count(shown)} of {count(every)} groups match the filter, worst first."


def _filter_form(query: OverviewQuery) -> str:
    boxes = "".join(
        f'<label class="check"><input type="checkbox" name="status" value="{s.name}"'
        f"{' checked' if s in query.statuses else ''}> {badge(s)}</label>"
        for s in GROUP_STATUSES
    )
    return (
        '<form id="filters" class="filters" role="search" method="get" action="">'
        '<label for="q">Filter groups</label> '
        f'<input id="q" name="q" type="search" value="{escape(query.text)}" autocomplete="off" '
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
            connection = f"reachable since {when(c.since_ms, now_ms)}"
        else:
            connection = f"unreachable since {when(c.since_ms, now_ms)}"
            if c.last_error:
                connection += f": {escape(c.last_error)}"
        state = Status.OK if c.up else Status.ERR
        reading = "" if c.caught_up else '<br><span class="note">still reading the committed offsets</span>'
        rows.append(
            "<tr>"
            f'<th scope="row">{escape(c.name)}</th>'
            f'<td><span class="badge s-{state.name.lower()}">'
            f'<span aria-hidden="true">{SYMBOL[state]}</span> {"up" if c.up else "down"}</span> '
            f"{connection}{reading}</td>"
            f"<td>{when(c.head_refresh_ms, now_ms) if c.head_refresh_ms is not None else 'never'}</td>"
            f'<td class="num">{count(len(c.groups))}</td>'
            + "".join(f'<td class="num">{count(counts[s])}</td>' for s in GROUP_STATUSES[:3])
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
        f'<li class="count">{badge(s)} <strong>{count(counts[s])}</strong></li>' for s in GROUP_STATUSES
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
            f"<td>{badge(g.status)}</td>"
            f'<th scope="row"><a href="{escape(href)}">{escape(g.group)}</a></th>'
            f"<td>{escape(g.cluster)}</td>"
            f'<td class="reason">{group_reason(g)}</td>'
            f'<td class="num">{count(g.totallag)}</td>'
            f'<td class="num">{max_lag(g.maxlag)}</td>'
            f'<td class="num">{seconds_text(max_seconds(seconds))}</td>'
            f'<td class="num">{count(g.partition_count)}</td>'
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
        links.append(f'<a href="{escape(query.url(page - 1))}" rel="prev">Previous page</a>')
    links.append(f"<span>Page {page:,} of {pages:,}</span>")
    if page < pages:
        links.append(f'<a href="{escape(query.url(page + 1))}" rel="next">Next page</a>')
    return f'<nav class="pager" aria-label="Pages">{" ".join(links)}</nav>'


def _owners(partitions: Partitions) -> str:
    owners = sorted(set(partitions.owners) - {""})
    if not owners:
        return '<span class="note">none</span>'
    shown = ", ".join(escape(o) for o in owners[:2])
    more = len(owners) - 2
    return shown + (f" and {more:,} more" if more > 0 else "")
